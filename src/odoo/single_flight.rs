//! One attempt at a time per key, shared by everybody who asks meanwhile, with its outcome
//! kept: a success until it is forgotten, a failure for a while.
//!
//! Logins to Odoo take a round trip, and while Odoo is down a connection attempt with its
//! retries takes tens of seconds. Holding a lock across such a wait would make every other
//! caller queue behind it, one attempt after another; here the lock is held only to look at
//! or change the state, and concurrent callers await the same attempt.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

type Attempt<T, E> = Shared<BoxFuture<'static, Result<T, E>>>;

enum State<T, E> {
    Done(T),
    Running(Attempt<T, E>),
    Failed(E, Instant),
}

pub(crate) struct SingleFlight<K, T, E> {
    states: Mutex<HashMap<K, State<T, E>>>,
}

impl<K, T, E> Default for SingleFlight<K, T, E> {
    fn default() -> Self {
        Self {
            states: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, T, E> SingleFlight<K, T, E>
where
    K: Eq + Hash + Clone,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// The kept success, the kept failure while `keep_failure(error)` says it is recent,
    /// the attempt already running, or a new attempt made by `start`.
    pub(crate) async fn get<F, Fut>(
        &self,
        key: &K,
        keep_failure: impl Fn(&E) -> Duration,
        start: F,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let attempt = {
            let mut states = self.lock();
            match states.get(key) {
                Some(State::Done(value)) => return Ok(value.clone()),
                Some(State::Failed(error, at)) if at.elapsed() < keep_failure(error) => {
                    return Err(error.clone());
                }
                Some(State::Running(attempt)) => attempt.clone(),
                _ => {
                    let attempt = start().boxed().shared();
                    states.insert(key.clone(), State::Running(attempt.clone()));
                    attempt
                }
            }
        };
        let result = attempt.clone().await;
        let mut states = self.lock();
        // The first waiter to finish records the outcome; a later `forget` or a newer
        // attempt is not overwritten.
        if let Some(State::Running(running)) = states.get(key)
            && running.ptr_eq(&attempt)
        {
            let state = match &result {
                Ok(value) => State::Done(value.clone()),
                Err(error) => State::Failed(error.clone(), Instant::now()),
            };
            states.insert(key.clone(), state);
        }
        result
    }

    /// Drops what is kept for `key`: the next `get` makes a new attempt.
    pub(crate) fn forget(&self, key: &K) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, State<T, E>>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_attempt_and_its_failure_is_kept() {
        let flight: Arc<SingleFlight<(), u32, String>> = Arc::default();
        let attempts = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let callers = (0..8).map(|_| {
            let (flight, attempts) = (Arc::clone(&flight), Arc::clone(&attempts));
            tokio::spawn(async move {
                flight
                    .get(
                        &(),
                        |_| Duration::from_secs(60),
                        || async move {
                            attempts.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            Err::<u32, _>("down".to_string())
                        },
                    )
                    .await
            })
        });
        for caller in futures_util::future::join_all(callers).await {
            assert_eq!(caller.unwrap(), Err("down".to_string()));
        }
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert!(started.elapsed() < Duration::from_millis(900));
        // Kept: no new attempt while the failure is recent.
        let again = flight
            .get(&(), |_| Duration::from_secs(60), || async { Ok(7) })
            .await;
        assert_eq!(again, Err("down".to_string()));
        flight.forget(&());
        let fresh = flight
            .get(&(), |_| Duration::from_secs(60), || async { Ok(7) })
            .await;
        assert_eq!(fresh, Ok(7));
    }
}
