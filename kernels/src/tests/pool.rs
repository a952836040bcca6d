//! The thread pool: every chunk exactly once, panics reported after all
//! chunks finish, nested and concurrent `run`s, drop.

use crate::pool::ThreadPool;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn every_chunk_once() {
    for threads in [0, 1, 2, 4] {
        let pool = ThreadPool::new(threads);
        // Platforms without threads (wasm32-wasip1) run everything inline.
        let expected = if cfg!(target_family = "wasm") { 1 } else { threads.max(1) };
        assert_eq!(pool.threads(), expected);
        for n in [0, 1, 2, 3, 17, 1000] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            for _ in 0..20 {
                pool.run(n, &|c| {
                    hits[c].fetch_add(1, Ordering::Relaxed);
                });
            }
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 20), "threads {threads} n {n}");
        }
    }
}

#[test]
#[cfg(panic = "unwind")]
fn panics_after_all_chunks() {
    let pool = ThreadPool::new(2);
    let done = AtomicUsize::new(0);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.run(64, &|c| {
            if c == 5 {
                panic!("chunk 5");
            }
            done.fetch_add(1, Ordering::Relaxed);
        })
    }));
    assert!(r.is_err());
    assert_eq!(done.load(Ordering::Relaxed), 63);
    // The pool still works.
    let n = AtomicUsize::new(0);
    pool.run(10, &|_| {
        n.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(n.load(Ordering::Relaxed), 10);
}

#[test]
#[cfg(not(target_family = "wasm"))] // spawns threads
fn nested_and_concurrent_runs() {
    use std::sync::Arc;
    let pool = Arc::new(ThreadPool::new(2));
    let total = Arc::new(AtomicUsize::new(0));
    // Nested: runs inline instead of deadlocking.
    pool.run(4, &|_| {
        pool.run(3, &|_| {
            total.fetch_add(1, Ordering::Relaxed);
        });
    });
    assert_eq!(total.load(Ordering::Relaxed), 12);
    // Concurrent callers share the pool.
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (pool, total) = (Arc::clone(&pool), Arc::clone(&total));
            std::thread::spawn(move || {
                for _ in 0..50 {
                    pool.run(8, &|_| {
                        total.fetch_add(1, Ordering::Relaxed);
                    });
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(total.load(Ordering::Relaxed), 12 + 3 * 50 * 8);
}

/// Workers that are slow to start (here: blocked behind a long chunk) do
/// not hold up the caller's share, and results are complete.
#[test]
fn uneven_chunks() {
    let pool = ThreadPool::new(3);
    let sum = AtomicUsize::new(0);
    pool.run(200, &|c| {
        if c == 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        sum.fetch_add(c, Ordering::Relaxed);
    });
    assert_eq!(sum.load(Ordering::Relaxed), 199 * 200 / 2);
}

/// The back-off policy: eight misses (the workers took less than half their
/// share, or the caller stalled waiting for them) among the last sixteen
/// jobs send the next 256 jobs to the caller alone.
#[test]
fn backs_off_when_workers_do_not_help() {
    let pool = ThreadPool::new(2);
    if pool.threads() < 2 {
        return; // no threads on this platform
    }
    // 2 threads, 1 worker: fair share of 100 chunks is 50; half of it 25.
    // Misses are counted over the last 16 jobs; 8 of them start a back-off.
    for _ in 0..4 {
        pool.record(10, 100, false); // too few chunks: a miss
        pool.record(30, 100, false); // helped
    }
    for _ in 0..4 {
        pool.record(30, 100, false);
        pool.record(40, 100, true); // helped, but the caller stalled: a miss
    }
    // 16 jobs, 8 of them misses: the last one started the back-off.
    let skipped = (0..300).filter(|_| pool.backing_off()).count();
    assert_eq!(skipped, 256);
    // Hits push misses out of the window: 7 misses, then many hits, then 7
    // misses do not add up.
    for _ in 0..7 {
        pool.record(0, 100, false);
    }
    for _ in 0..16 {
        pool.record(50, 100, false);
    }
    for _ in 0..7 {
        pool.record(24, 100, false);
    }
    assert!(!pool.backing_off());
    pool.record(24, 100, false); // the eighth miss among the last 16
    let skipped = (0..300).filter(|_| pool.backing_off()).count();
    assert_eq!(skipped, 256);
    // Jobs still complete while backing off.
    pool.record(0, 1, false);
    let n = AtomicUsize::new(0);
    for _ in 0..10 {
        pool.run(16, &|_| {
            n.fetch_add(1, Ordering::Relaxed);
        });
    }
    assert_eq!(n.load(Ordering::Relaxed), 160);
}

/// The time rule: waiting for workers that costs more than a quarter of the
/// caller's working time, over the recent jobs, starts a back-off; a single
/// stall among many jobs does not.
#[test]
fn backs_off_when_waiting_costs_more_than_it_gains() {
    use std::time::Duration;
    let pool = ThreadPool::new(2);
    if pool.threads() < 2 {
        return; // no threads on this platform
    }
    let ms = Duration::from_millis;
    for _ in 0..100 {
        pool.record_times(ms(1), Duration::ZERO);
    }
    // About 82 ms of work in the window: one 3 ms stall is tolerated.
    pool.record_times(ms(1), ms(3));
    assert!(!pool.backing_off());
    // Repeated stalls are not.
    let stalls = (0..20).take_while(|_| {
        pool.record_times(ms(1), ms(3));
        !pool.backing_off()
    });
    assert!(stalls.count() < 20);
    let skipped = 1 + (0..300).filter(|_| pool.backing_off()).count();
    assert_eq!(skipped, 256);
}
