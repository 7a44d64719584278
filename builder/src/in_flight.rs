//! Steps being worked on in one build, by cache key. The graphs of a
//! multi-platform build are solved at once, and a stage that does not
//! depend on the platform has the same keys in each: whoever claims a key
//! first runs the step, the others wait and then find it in the cache —
//! even under `--no-cache`, which asks to run each step, not to run it once
//! per platform (a claim says whether the key already ran in this build).

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard};

use rbuild_oci::digest::Digest;

#[derive(Default)]
struct State {
    /// Keys someone holds now.
    held: HashSet<Digest>,
    /// Keys whose step ran (and was committed) in this build.
    ran: HashSet<Digest>,
}

/// The claims of one build, shared by the solvers of its platforms.
#[derive(Default)]
pub struct InFlight {
    state: Mutex<State>,
    released: Condvar,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InFlight")
    }
}

/// Holds a key until dropped.
pub struct Claim<'a> {
    owner: &'a InFlight,
    key: Digest,
    /// The step ran under an earlier claim of this build.
    pub ran_before: bool,
}

impl InFlight {
    fn locked(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Claims `key`, waiting while another thread holds it.
    pub fn claim(&self, key: Digest) -> Claim<'_> {
        let mut state = self.locked();
        while state.held.contains(&key) {
            state = self.released.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.held.insert(key);
        Claim { owner: self, key, ran_before: state.ran.contains(&key) }
    }
}

impl Claim<'_> {
    /// The step ran and its result is in the cache.
    pub fn ran(&self) {
        self.owner.locked().ran.insert(self.key);
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.owner.locked().held.remove(&self.key);
        self.owner.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn a_claimed_key_is_worked_on_by_one_thread_at_a_time() {
        let key = Digest::of(b"in-flight test key");
        let flight = InFlight::default();
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (inside, most, flight) = (inside.clone(), most.clone(), &flight);
                s.spawn(move || {
                    let _c = flight.claim(key);
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    inside.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1);
        let _other = flight.claim(Digest::of(b"another key"));
        let first = flight.claim(key);
        assert!(!first.ran_before);
        first.ran();
        drop(first);
        assert!(flight.claim(key).ran_before, "a later claim learns the step ran");
        assert!(!InFlight::default().claim(key).ran_before, "another build knows nothing of it");
    }
}
