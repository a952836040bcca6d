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
//! - It backs off when the workers cannot help. A job is a *miss* when the
//!   workers took less than half their share of the chunks (their cores are
//!   busy with other work, or the job is too small to be worth a wake-up),
//!   or when the caller, out of chunks, had to wait for a worker's last one
//!   longer than a quarter of its own working time (a worker preempted in
//!   the middle of a chunk: the step then waits for the scheduler to run it
//!   again, milliseconds). When half of the last 16 jobs missed, the next
//!   jobs run on the caller alone without waking anyone; after a while the
//!   pool tries again. With a busy sibling core, two threads then cost
//!   about what one does, instead of paying a wake-up and a possible wait
//!   for a preempted worker on every job.
//!
//! The price is the wake-up latency of a sleeping thread (microseconds),
//! paid once per job: batch products that share an input into one job
//! ([`crate::gemv_parallel_many`]).
//!
//! Platforms without threads (wasm32 without atomics): spawning fails, the
//! pool has no workers, and `run` executes every chunk on the caller.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};
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
    /// Chunks finished by workers (not the caller): the back-off signal.
    by_workers: AtomicUsize,
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
    fn work(&self, is_worker: bool) {
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
            if is_worker {
                self.by_workers.fetch_add(1, Ordering::Relaxed);
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
    /// The last jobs' outcomes, newest in bit 0: 1 = a miss (see
    /// [`ThreadPool::record`]).
    history: AtomicU32,
    /// Time the caller spent waiting for workers after running out of
    /// chunks, in ns, as a decaying sum over about the last
    /// [`TIME_WINDOW`] jobs (see [`ThreadPool::record_times`]).
    waited_ns: AtomicU64,
    /// Time the caller spent working, in ns, decaying likewise.
    worked_ns: AtomicU64,
    /// Jobs still to run on the caller alone before trying the workers again.
    skip: AtomicUsize,
}

/// Jobs remembered for the back-off decision.
const HISTORY: u32 = 16;
/// Misses among the last [`HISTORY`] jobs that start a back-off.
const MISSES_BEFORE_BACKOFF: u32 = 8;
/// A wait for the workers shorter than this is never a stall (a wake-up, a
/// cache miss on the job's counters).
const MIN_STALL: Duration = Duration::from_micros(20);
/// Jobs over which waiting time is weighed against working time: each job
/// the sums lose `1 / TIME_WINDOW` of their value.
const TIME_WINDOW: u64 = 256;
/// Jobs run on the caller alone after backing off (a few decode steps'
/// worth of matrix products) before trying the workers again.
const BACKOFF_JOBS: usize = 256;

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
        ThreadPool {
            shared,
            workers,
            running: Mutex::new(()),
            history: AtomicU32::new(0),
            waited_ns: AtomicU64::new(0),
            worked_ns: AtomicU64::new(0),
            skip: AtomicUsize::new(0),
        }
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
    /// and `run` panics once all have finished (with the original payload
    /// when the job ran on the caller alone; otherwise with a new message,
    /// the panic hook having printed the original).
    pub fn run(&self, n_chunks: usize, f: &(dyn Fn(usize) + Sync)) {
        if n_chunks == 0 {
            return;
        }
        let _guard = match self.running.try_lock() {
            Ok(g) if !self.workers.is_empty() && n_chunks > 1 && !self.backing_off() => g,
            Ok(_) | Err(TryLockError::WouldBlock) | Err(TryLockError::Poisoned(_)) => {
                return run_inline(n_chunks, f);
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
            by_workers: AtomicUsize::new(0),
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
        let start = now();
        job.work(false);
        let mut stalled = false;
        if job.done.load(Ordering::Acquire) < n_chunks {
            let worked = start.map(|s| s.elapsed());
            while job.done.load(Ordering::Acquire) < n_chunks {
                // A chunk is still running on a worker: sleep until the
                // worker that finishes the last one unparks us (spurious
                // wake-ups just loop).
                thread::park();
            }
            if let (Some(start), Some(worked)) = (start, worked) {
                let waited = start.elapsed() - worked;
                stalled = waited > (worked / 4).max(MIN_STALL);
                self.record_times(worked, waited);
            }
        } else if let Some(start) = start {
            self.record_times(start.elapsed(), Duration::ZERO);
        }
        lock(&self.shared.state).job = None;
        self.record(job.by_workers.load(Ordering::Relaxed), n_chunks, stalled);
        if job.panicked.load(Ordering::Relaxed) {
            panic!("a ThreadPool chunk panicked");
        }
    }
}

/// The time, where the platform has a clock std can read (not in
/// wasm32-unknown-unknown, whose `Instant::now` panics; threads there need
/// the browser anyway).
fn now() -> Option<Instant> {
    if cfg!(all(target_arch = "wasm32", target_os = "unknown")) {
        None
    } else {
        Some(Instant::now())
    }
}

/// Runs every chunk on the calling thread, with the same panic contract as
/// the parallel path: all chunks run, then the first panic is resumed.
fn run_inline(n_chunks: usize, f: &(dyn Fn(usize) + Sync)) {
    let mut first_panic = None;
    for c in 0..n_chunks {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(c))) {
            first_panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = first_panic {
        resume_unwind(payload);
    }
}

impl ThreadPool {
    /// Whether to run this job on the caller alone (see the module doc);
    /// counts the job against the back-off period.
    pub(crate) fn backing_off(&self) -> bool {
        self.skip.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| s.checked_sub(1)).is_ok()
    }

    /// Updates the back-off state after a job in which the workers finished
    /// `by_workers` of `n_chunks` chunks, and the caller did (`stalled`) or
    /// did not wait for them much longer than it worked itself. Their fair
    /// share is `n_chunks * workers / threads`; less than half of it, or a
    /// stall, is a miss. [`MISSES_BEFORE_BACKOFF`] misses among the last
    /// [`HISTORY`] jobs start a back-off of [`BACKOFF_JOBS`] jobs.
    pub(crate) fn record(&self, by_workers: usize, n_chunks: usize, stalled: bool) {
        if self.skip.load(Ordering::Relaxed) > 0 {
            return; // already backing off (the time rule fired)
        }
        let helped = 2 * by_workers * self.threads() >= n_chunks * self.workers.len();
        let miss = u32::from(!helped || stalled);
        // Only the thread holding `running` records, so load + store is not
        // a lost update.
        let window = (1u32 << HISTORY) - 1;
        let h = ((self.history.load(Ordering::Relaxed) << 1) | miss) & window;
        if h.count_ones() >= MISSES_BEFORE_BACKOFF {
            self.history.store(0, Ordering::Relaxed);
            self.skip.store(BACKOFF_JOBS, Ordering::Relaxed);
        } else {
            self.history.store(h, Ordering::Relaxed);
        }
    }
}

impl ThreadPool {
    /// Weighs the time the caller waited for workers after a job against
    /// the time it worked, over about the last [`TIME_WINDOW`] jobs: when
    /// waiting exceeds a quarter of working, back off. This catches what
    /// the miss count cannot: rare but long stalls (a worker preempted in
    /// a chunk for a scheduler time slice, milliseconds) that cost more
    /// than the second thread gains, e.g. a few stalls of 3 ms among the
    /// 1 ms products of a prefill.
    pub(crate) fn record_times(&self, worked: Duration, waited: Duration) {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Only the thread holding `running` records: load + store is fine.
        let decay = |v: u64| v - v / TIME_WINDOW;
        let waited = decay(self.waited_ns.load(Ordering::Relaxed)).saturating_add(ns(waited));
        let worked = decay(self.worked_ns.load(Ordering::Relaxed)).saturating_add(ns(worked));
        if waited.saturating_mul(4) > worked {
            self.waited_ns.store(0, Ordering::Relaxed);
            self.history.store(0, Ordering::Relaxed);
            self.skip.store(BACKOFF_JOBS, Ordering::Relaxed);
        } else {
            self.waited_ns.store(waited, Ordering::Relaxed);
        }
        self.worked_ns.store(worked, Ordering::Relaxed);
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
            job.work(true);
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
