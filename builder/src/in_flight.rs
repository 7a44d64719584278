//! Steps being worked on in this process, by cache key. The graphs of a
//! multi-platform build are solved at once, and a stage that does not
//! depend on the platform has the same keys in each: whoever claims a key
//! first runs the step, the others wait and then find it in the cache.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

use rbuild_oci::digest::Digest;

struct Claims {
    keys: Mutex<HashSet<Digest>>,
    released: Condvar,
}

fn claims() -> &'static Claims {
    static CLAIMS: OnceLock<Claims> = OnceLock::new();
    CLAIMS.get_or_init(|| Claims { keys: Mutex::new(HashSet::new()), released: Condvar::new() })
}

fn locked(c: &Claims) -> MutexGuard<'_, HashSet<Digest>> {
    c.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Holds a key until dropped.
pub struct Claim {
    key: Digest,
}

/// Claims `key`, waiting while another thread holds it.
pub fn claim(key: Digest) -> Claim {
    let c = claims();
    let mut keys = locked(c);
    while keys.contains(&key) {
        keys = c.released.wait(keys).unwrap_or_else(|poisoned| poisoned.into_inner());
    }
    keys.insert(key);
    Claim { key }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let c = claims();
        locked(c).remove(&self.key);
        c.released.notify_all();
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
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (inside, most) = (inside.clone(), most.clone());
                s.spawn(move || {
                    let _c = claim(key);
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    inside.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1);
        let _other = claim(Digest::of(b"another key"));
        drop(claim(key));
    }
}
