//! The duplicate guard: delivery ids seen per webhook, each remembered for its webhook's
//! window. The ids live in memory (the check is a hash lookup) and in the SQLite store (the
//! table `delivery_seen`, written in the group commit of the call that made them seen), so
//! they survive a restart: at start every unexpired id is loaded back.
//!
//! An id is claimed while its first call is being decided and becomes seen only once that
//! call was accepted: authenticated and queued (async), or authenticated and its code
//! succeeded (sync). A forged call (refused by the authenticator) or a failed one releases
//! its claim, so it cannot burn a real delivery's id, and the sender's next retry runs.
//! A repeat arriving while the first is being decided waits for that decision.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::definitions::delivery::DedupKey;

/// Ids longer than this are remembered by their SHA-256 (a sender's ids are far shorter;
/// a payload field could be anything).
const LONGEST_KEPT_ID: usize = 200;

/// The delivery id of a call, if it carries one where its webhook says: `header` looks a
/// request header up by name (case-insensitive).
pub fn delivery_id<'h>(
    key: DedupKey<'_>,
    header: impl Fn(&str) -> Option<&'h str>,
    payload: &Value,
) -> Option<String> {
    let id = match key {
        DedupKey::Header(name) => header(name).map(|value| value.trim().to_string()),
        DedupKey::Payload(path) => {
            let mut value = payload;
            for part in path.split('.') {
                value = value.get(part.trim())?;
            }
            match value {
                Value::String(text) => Some(text.clone()),
                Value::Number(number) => Some(number.to_string()),
                _ => None,
            }
        }
    }?;
    if id.is_empty() {
        return None;
    }
    if id.len() > LONGEST_KEPT_ID {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(id.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        return Some(format!("sha256:{hex}"));
    }
    Some(id)
}

/// What is known of one (webhook, id).
enum Mark {
    /// Its first call is being decided; the sender side closes when it is.
    Deciding(watch::Receiver<()>),
    /// Seen; remembered until this time (Unix milliseconds).
    Seen(i64),
}

/// What a call finds for its delivery id.
pub enum Claim {
    /// New: this call decides. Dropping the claim without `accept` releases the id.
    Fresh(Pending),
    /// Seen within the window.
    Duplicate,
    /// Its first call is still being decided after `wait`: the caller should come back.
    Busy,
}

/// The ids are spread over this many maps, each with its own lock: a map that grows is
/// rehashed whole under its lock, which for one map of a million ids stalls every call of
/// every guarded webhook for tens of milliseconds.
const SHARDS: usize = 64;

type Shard = Mutex<HashMap<String, Mark>>;

#[derive(Clone)]
pub struct DedupGuard {
    shards: Arc<Vec<Shard>>,
}

impl Default for DedupGuard {
    fn default() -> Self {
        Self {
            shards: Arc::new((0..SHARDS).map(|_| Mutex::default()).collect()),
        }
    }
}

/// The map key: the id within its webhook (a NUL cannot occur in a reference).
fn mark_key(webhook: &str, id: &str) -> String {
    let mut key = String::with_capacity(webhook.len() + 1 + id.len());
    key.push_str(webhook);
    key.push('\0');
    key.push_str(id);
    key
}

impl DedupGuard {
    /// With the ids of earlier runs: (webhook reference, id, expires at Unix ms).
    pub fn with_seen(seen: impl IntoIterator<Item = (String, String, i64)>) -> Self {
        let guard = Self::default();
        for (webhook, id, expires) in seen {
            let key = mark_key(&webhook, &id);
            guard.lock(&key).insert(key, Mark::Seen(expires));
        }
        guard
    }

    /// The map `key` lives in, locked.
    fn lock(&self, key: &str) -> std::sync::MutexGuard<'_, HashMap<String, Mark>> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        self.shards[hash as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Claims `id` of `webhook`, or says it was seen; waits at most `wait` for a call
    /// deciding on it.
    pub async fn claim(&self, webhook: &str, id: &str, now_ms: i64, wait: Duration) -> Claim {
        let key = mark_key(webhook, id);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut deciding = {
                let mut marks = self.lock(&key);
                match marks.get(&key) {
                    Some(Mark::Seen(expires)) if *expires > now_ms => return Claim::Duplicate,
                    Some(Mark::Deciding(receiver)) => receiver.clone(),
                    _ => {
                        let (sender, receiver) = watch::channel(());
                        marks.insert(key.clone(), Mark::Deciding(receiver));
                        return Claim::Fresh(Pending {
                            guard: self.clone(),
                            key,
                            decided: Some(sender),
                        });
                    }
                }
            };
            // Returns (with an error) once the deciding call dropped its sender.
            if tokio::time::timeout_at(deadline, deciding.changed())
                .await
                .is_err()
            {
                return Claim::Busy;
            }
        }
    }

    /// Forgets ids whose window is over.
    pub fn prune(&self, now_ms: i64) {
        for shard in self.shards.iter() {
            shard
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, mark| !matches!(mark, Mark::Seen(expires) if *expires <= now_ms));
        }
    }

    /// Ids remembered (seen or being decided).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A claimed id whose call is being decided.
pub struct Pending {
    guard: DedupGuard,
    key: String,
    decided: Option<watch::Sender<()>>,
}

impl Pending {
    /// The call was accepted: the id is seen until `expires_ms`. The caller makes it
    /// durable (a `Write::Seen` in the call's commit).
    pub fn accept(mut self, expires_ms: i64) {
        let key = std::mem::take(&mut self.key);
        let mut marks = self.guard.lock(&key);
        marks.insert(key, Mark::Seen(expires_ms));
        drop(marks);
        // Waiting repeats wake up and find it seen.
        self.decided.take();
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.decided.is_none() {
            return;
        }
        let mut marks = self.guard.lock(&self.key);
        if matches!(marks.get(&self.key), Some(Mark::Deciding(_))) {
            marks.remove(&self.key);
        }
        drop(marks);
        // Waiting repeats wake up and find it free: the next one decides.
        self.decided.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WAIT: Duration = Duration::from_secs(5);

    #[test]
    fn ids_come_from_a_header_or_a_payload_path() {
        let headers = |name: &str| {
            name.eq_ignore_ascii_case("x-github-delivery")
                .then_some(" d-1 ")
        };
        let payload = json!({"event": {"id": 42, "flag": true}, "id": "evt_1"});
        let id = |key| delivery_id(key, headers, &payload);
        assert_eq!(
            id(DedupKey::Header("X-GitHub-Delivery")).as_deref(),
            Some("d-1")
        );
        assert_eq!(id(DedupKey::Header("Webhook-Id")), None);
        assert_eq!(id(DedupKey::Payload("event.id")).as_deref(), Some("42"));
        assert_eq!(id(DedupKey::Payload("id")).as_deref(), Some("evt_1"));
        assert_eq!(id(DedupKey::Payload("event.flag")), None);
        assert_eq!(id(DedupKey::Payload("event.missing")), None);
        let long = json!({"id": "x".repeat(500)});
        let hashed = delivery_id(DedupKey::Payload("id"), headers, &long).unwrap();
        assert!(
            hashed.starts_with("sha256:") && hashed.len() == 71,
            "{hashed}"
        );
    }

    #[tokio::test]
    async fn an_accepted_id_is_a_duplicate_within_its_window_only() {
        let guard = DedupGuard::default();
        let Claim::Fresh(first) = guard.claim("hook", "a", 1_000, WAIT).await else {
            panic!("new id not fresh");
        };
        first.accept(2_000);
        assert!(matches!(
            guard.claim("hook", "a", 1_500, WAIT).await,
            Claim::Duplicate
        ));
        // Another webhook's id of the same text is its own.
        assert!(matches!(
            guard.claim("other", "a", 1_500, WAIT).await,
            Claim::Fresh(_)
        ));
        assert!(matches!(
            guard.claim("hook", "a", 2_000, WAIT).await,
            Claim::Fresh(_)
        ));
    }

    #[tokio::test]
    async fn a_released_claim_does_not_burn_the_id_and_waiters_follow_the_decision() {
        let guard = DedupGuard::default();
        let Claim::Fresh(forged) = guard.claim("hook", "a", 0, WAIT).await else {
            panic!()
        };
        let waiter = {
            let guard = guard.clone();
            tokio::spawn(async move { guard.claim("hook", "a", 0, WAIT).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "a repeat waits for the first's decision"
        );
        drop(forged);
        let Claim::Fresh(real) = waiter.await.unwrap() else {
            panic!("the id was burnt by a refused call");
        };
        let repeat = {
            let guard = guard.clone();
            tokio::spawn(async move { guard.claim("hook", "a", 0, WAIT).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        real.accept(10_000);
        assert!(matches!(repeat.await.unwrap(), Claim::Duplicate));
        let Claim::Fresh(_slow) = guard.claim("hook", "b", 0, WAIT).await else {
            panic!()
        };
        assert!(matches!(
            guard.claim("hook", "b", 0, Duration::from_millis(10)).await,
            Claim::Busy
        ));
    }

    #[test]
    fn prune_forgets_expired_ids() {
        let guard = DedupGuard::with_seen([
            ("hook".to_string(), "old".to_string(), 100),
            ("hook".to_string(), "new".to_string(), 300),
        ]);
        guard.prune(200);
        assert_eq!(guard.len(), 1);
    }

    /// The budget: a duplicate check adds at most 50 µs to a call. Run with
    /// `cargo test --release --lib dedup_check_cost -- --ignored --nocapture`.
    #[tokio::test]
    #[ignore = "a measurement; prints the figures"]
    async fn dedup_check_cost() {
        let guard = DedupGuard::default();
        let webhook = "github_push";
        // A window's worth of ids already remembered.
        for i in 0..200_000 {
            if let Claim::Fresh(pending) =
                guard.claim(webhook, &format!("{i:08}-old"), 0, WAIT).await
            {
                pending.accept(i64::MAX);
            }
        }
        let headers = |name: &str| {
            name.eq_ignore_ascii_case("X-GitHub-Delivery")
                .then_some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        };
        let payload = json!({});
        let mut fresh = Vec::new();
        let mut repeat = Vec::new();
        for i in 0..100_000 {
            let started = std::time::Instant::now();
            let id = delivery_id(DedupKey::Header("X-GitHub-Delivery"), headers, &payload).unwrap()
                + &i.to_string();
            let Claim::Fresh(pending) = guard.claim(webhook, &id, 0, WAIT).await else {
                panic!()
            };
            pending.accept(i64::MAX);
            fresh.push(started.elapsed());
            let started = std::time::Instant::now();
            let claim = guard.claim(webhook, &id, 0, WAIT).await;
            repeat.push(started.elapsed());
            assert!(matches!(claim, Claim::Duplicate));
        }
        for (name, samples) in [
            ("new id: extract, claim, accept", &mut fresh),
            ("repeat: claim", &mut repeat),
        ] {
            samples.sort();
            let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
            println!(
                "{name}: p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}",
                at(0.5),
                at(0.99),
                at(0.999),
                samples.last().unwrap()
            );
            assert!(
                at(0.99) <= Duration::from_micros(50),
                "{name}: p99 {:?}",
                at(0.99)
            );
        }
    }
}
