//! The ladder's answer cache: exact-match answers to repeated identical requests, per
//! tenant, kept for a while and bounded in memory (`moka`, with a byte weigher).
//!
//! A request is normalised before hashing: its JSON is parsed and re-written with every
//! object's keys sorted, so key order and white space do not make two requests differ.
//! The tenant and the endpoint are part of the key: one tenant never sees another's answer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use moka::sync::Cache;

/// A cached answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedAnswer {
    /// The model that answered.
    pub model: String,
    /// The response body as the upstream sent it.
    pub body: Bytes,
}

/// The cache of answers.
pub struct AnswerCache {
    cache: Option<Cache<u128, Arc<CachedAnswer>>>,
}

/// Largest answer kept.
const MAX_ANSWER_BYTES: usize = 1 << 20;

impl AnswerCache {
    /// A cache holding answers for `ttl` within `max_bytes`; `ttl` zero turns it off.
    pub fn new(ttl: Duration, max_bytes: u64) -> AnswerCache {
        let cache = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .time_to_live(ttl)
                .max_capacity(max_bytes)
                .weigher(|_, answer: &Arc<CachedAnswer>| {
                    u32::try_from(answer.body.len() + answer.model.len() + 64).unwrap_or(u32::MAX)
                })
                .build()
        });
        AnswerCache { cache }
    }

    /// Whether answers are kept at all.
    pub fn enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// The answer stored for `key`, if any.
    pub fn get(&self, key: u128) -> Option<Arc<CachedAnswer>> {
        self.cache.as_ref()?.get(&key)
    }

    /// Keeps an answer (answers above 1 MiB are not kept).
    pub fn put(&self, key: u128, answer: CachedAnswer) {
        if let Some(cache) = &self.cache
            && answer.body.len() <= MAX_ANSWER_BYTES
        {
            cache.insert(key, Arc::new(answer));
        }
    }
}

/// The cache key of a request body for `tenant` on `route`; `None` when the body is not JSON.
pub fn request_key(tenant: &str, route: &str, body: &[u8]) -> Option<u128> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.sort_all_objects();
    let normalised = serde_json::to_vec(&value).ok()?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for part in [tenant.as_bytes(), route.as_bytes()] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.update(&normalised);
    Some(hasher.digest128())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn normalised_requests_share_a_key_and_tenants_do_not() {
        let a = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
        let b = br#"{ "messages": [ {"content": "hi", "role": "user"} ], "model": "gpt-4o" }"#;
        let key = request_key("acme", "chat", a).unwrap();
        assert_eq!(Some(key), request_key("acme", "chat", b));
        assert_ne!(Some(key), request_key("globex", "chat", a));
        assert_ne!(Some(key), request_key("acme", "responses", a));
        let other = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"ho"}]}"#;
        assert_ne!(Some(key), request_key("acme", "chat", other));
        assert_eq!(request_key("acme", "chat", b"not json"), None);
    }

    #[test]
    fn answers_come_back_until_turned_off() {
        let cache = AnswerCache::new(Duration::from_secs(60), 1 << 20);
        let answer = CachedAnswer {
            model: "gpt-4o".into(),
            body: Bytes::from_static(b"{}"),
        };
        cache.put(7, answer.clone());
        assert_eq!(cache.get(7).as_deref(), Some(&answer));
        assert_eq!(cache.get(8), None);
        let off = AnswerCache::new(Duration::ZERO, 1 << 20);
        off.put(7, answer);
        assert!(!off.enabled());
        assert_eq!(off.get(7), None);
    }
}
