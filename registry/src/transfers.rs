//! Running a registry operation over many layers, a bounded number at a
//! time, stopping at the first failure (pull and push both do this).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `job(0)`, …, `job(count - 1)` on up to `workers` threads and returns
/// the results in index order. After the first error no new job starts, and
/// that error is returned once the running ones have finished.
pub(crate) fn try_map_bounded<T: Send, E: Send>(
    count: usize,
    workers: usize,
    job: impl Fn(usize) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..count).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, count.max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= count || failed.load(Ordering::SeqCst) {
                        return;
                    }
                    match job(i) {
                        Ok(done) => results.lock().expect("results lock")[i] = Some(done),
                        Err(e) => {
                            failed.store(true, Ordering::SeqCst);
                            first_error.lock().expect("error lock").get_or_insert(e);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("error lock") {
        return Err(e);
    }
    Ok(results.into_inner().expect("results lock").into_iter().map(|r| r.expect("every job ran")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order() {
        let out: Result<Vec<usize>, ()> = try_map_bounded(20, 3, |i| Ok(i * 2));
        assert_eq!(out.unwrap(), (0..20).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_error_stops_new_jobs() {
        let started = AtomicUsize::new(0);
        let out: Result<Vec<()>, usize> = try_map_bounded(100, 1, |i| {
            started.fetch_add(1, Ordering::SeqCst);
            if i == 3 { Err(i) } else { Ok(()) }
        });
        assert_eq!(out, Err(3));
        assert_eq!(started.load(Ordering::SeqCst), 4, "one worker: jobs 0..=3 ran, no more");
    }
}
