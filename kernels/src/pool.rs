//! A small thread pool whose idle threads sleep, and whose work is split
//! into chunks taken on demand.
//!
//! Why our own, and why it never spins: on a 2-core machine whose other
//! core is busy (a browser, another process, the grammar thread computing
//! the next mask), spin-waiting pools collapse. Measured on this project's
//! build machine (`ANCHORS.md`): llama.cpp's OpenMP build fell from 63 to
//! 0.4–34 tokens/s at 2 threads, candle's rayon pool from 30 to 3.8. A
//! spinning thread burns the time slice the thread it waits for needs; a
//! static split (thread `t` does rows `t*n/T..`) makes every step wait for
//! the slowest, descheduled thread. So:
//!
//! - Idle workers block on a condition variable (a futex: no CPU used).
//!   The caller waiting for the last chunks parks. Nothing spins.
//! - The caller thread works too: [`ThreadPool::run`] with `n` threads uses
//!   the caller plus `n - 1` workers.
//! - Work is a number of small chunks claimed one at a time from an atomic
//!   counter. A worker that wakes late, or never (its core is busy), simply
//!   claims fewer chunks; the caller does the rest. The step waits only for
//!   chunks already *started* by a preempted thread, each a small fraction
//!   of the job.
//!
//! The price is the wake-up latency of a sleeping thread (microseconds),
//! paid once per job: batch products that share an input into one job
//! ([`crate::gemv_parallel_many`]).
//!
//! Platforms without threads (wasm32 without atomics): spawning fails, the
//! pool has no workers, and `run` executes every chunk on the caller.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::{self, JoinHandle, Thread};
use std::vec::Vec;

/// The job, as workers see it: a type- and lifetime-erased pointer to the
/// caller's closure plus the counters of this job. One `Arc<Job>` per `run`,
/// so a worker holding a finished job can never claim a chunk of a later one
/// (its counter stays exhausted).
struct Job {
    /// The caller's `&(dyn Fn(usize) + Sync)`, lifetime erased. Valid while
    /// any chunk is unfinished: `run` returns only after `done == n_chunks`.
    f: *const (dyn Fn(usize) + Sync + 'static),
    n_chunks: usize,
    /// Next chunk index to claim (may grow past `n_chunks`).
    next: AtomicUsize,
    /// Chunks finished.
    done: AtomicUsize,
    panicked: AtomicBool,
    /// Woken when the last chunk finishes.
    caller: Thread,
}

// SAFETY: `f` points to a `Sync` closure, so calling it from several threads
// is allowed; it is only dereferenced under the protocol documented on the
// field. Every other field is Send + Sync.
unsafe impl Send for Job {}
// SAFETY: as above.
unsafe impl Sync for Job {}

impl Job {
    /// Claims and runs chunks until none is left. Returns without touching
    /// `f` when the job is exhausted.
    fn work(&self) {
        loop {
            let c = self.next.fetch_add(1, Ordering::Relaxed);
            if c >= self.n_chunks {
                return;
            }
            // SAFETY: chunk `c` is claimed and not yet counted in `done`, so
            // the caller of `run` is still inside `run` and the closure `f`
            // points to is alive.
            let f = unsafe { &*self.f };
            if catch_unwind(AssertUnwindSafe(|| f(c))).is_err() {
                self.panicked.store(true, Ordering::Relaxed);
            }
            // Release: the chunk's writes happen-before the caller's Acquire
            // load that sees the final count.
            if self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.n_chunks {
                self.caller.unpark();
            }
        }
    }
}

struct State {
    /// Bumped for every job; workers wake when it changes.
    generation: u64,
    job: Option<Arc<Job>>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state is only a few plain fields updated atomically under the lock;
    // a panic elsewhere cannot leave it inconsistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fixed set of worker threads that sleep when idle. See the module
/// documentation.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Serializes `run` calls; a `run` that finds it taken (another thread's
    /// job, or a `run` from inside a chunk) executes inline instead.
    running: Mutex<()>,
}

impl core::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ThreadPool").field("threads", &self.threads()).finish()
    }
}

impl ThreadPool {
    /// A pool running jobs on `threads` threads: the caller of
    /// [`run`](Self::run) plus `threads - 1` workers. `threads <= 1` (or a
    /// platform without threads) gives a pool that runs everything on the
    /// caller.
    pub fn new(threads: usize) -> ThreadPool {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { generation: 0, job: None, shutdown: false }),
            wake: Condvar::new(),
        });
        let mut workers = Vec::new();
        for i in 1..threads.max(1) {
            let s = Arc::clone(&shared);
            let spawned =
                thread::Builder::new().name(std::format!("formwork-kernels-{i}")).spawn(move || worker_loop(&s));
            match spawned {
                Ok(handle) => workers.push(handle),
                // No threads on this platform, or out of resources: run with
                // what we have.
                Err(_) => break,
            }
        }
        ThreadPool { shared, workers, running: Mutex::new(()) }
    }

    /// Threads that run a job, the caller included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Calls `f(c)` once for every `c` in `0..n_chunks`, on the pool's
    /// threads and the caller's, and returns when all calls have returned.
    /// Chunks are claimed in increasing order, in no particular assignment
    /// to threads.
    ///
    /// Must not be relied on for ordering between chunks. A `run` issued
    /// while another is in progress on the same pool (from another thread,
    /// or from inside a chunk) runs its chunks on its own thread.
    ///
    /// # Panics
    ///
    /// If any call panics: the panic is caught, the other chunks still run,
    /// and `run` panics once all have finished (the panic hook has already
    /// printed the original message).
    pub fn run(&self, n_chunks: usize, f: &(dyn Fn(usize) + Sync)) {
        if n_chunks == 0 {
            return;
        }
        let _guard = match self.running.try_lock() {
            Ok(g) if !self.workers.is_empty() && n_chunks > 1 => g,
            Ok(_) | Err(TryLockError::WouldBlock) | Err(TryLockError::Poisoned(_)) => {
                (0..n_chunks).for_each(f);
                return;
            }
        };
        // SAFETY: only the lifetime is erased (same fat-pointer layout). The
        // pointer is dereferenced by `Job::work` only for claimed, unfinished
        // chunks, and this function does not return (or unwind) before every
        // chunk has finished — see the wait below — so `f` outlives every use.
        let f_static: &(dyn Fn(usize) + Sync + 'static) = unsafe { core::mem::transmute(f) };
        let job = Arc::new(Job {
            f: f_static,
            n_chunks,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            caller: thread::current(),
        });
        {
            let mut st = lock(&self.shared.state);
            st.generation = st.generation.wrapping_add(1);
            st.job = Some(Arc::clone(&job));
        }
        self.shared.wake.notify_all();

        // Work alongside the workers. `Job::work` catches panics, so we
        // always reach the wait.
        job.work();
        while job.done.load(Ordering::Acquire) < n_chunks {
            // A chunk is still running on a worker: sleep until the worker
            // that finishes the last one unparks us (spurious wake-ups just
            // loop).
            thread::park();
        }
        lock(&self.shared.state).job = None;
        if job.panicked.load(Ordering::Relaxed) {
            panic!("a ThreadPool chunk panicked");
        }
    }
}

fn worker_loop(shared: &Shared) {
    let mut seen = 0u64;
    loop {
        let job = {
            let mut st = lock(&shared.state);
            while !st.shutdown && st.generation == seen {
                st = shared.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            if st.shutdown {
                return;
            }
            seen = st.generation;
            st.job.clone()
        };
        if let Some(job) = job {
            job.work();
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        lock(&self.shared.state).shutdown = true;
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            // A worker only panics if the pool itself has a bug; nothing to
            // add to that here.
            let _ = w.join();
        }
    }
}
