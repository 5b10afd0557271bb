//! Gateway virtual keys: clients authenticate with a burnrate key, the configuration holds
//! only its SHA-256, and the key fixes the tenant (and optionally the allowed users, features
//! and models) of every call made with it.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderMap;
use sha2::{Digest, Sha256};

/// What a virtual key is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBinding {
    /// The key's name in the configuration (never the key itself).
    pub id: String,
    /// Tenant every call with this key is billed to.
    pub tenant_id: String,
    /// Users allowed to call with it (empty: any).
    pub users: Vec<String>,
    /// Features allowed (empty: any).
    pub features: Vec<String>,
    /// Models allowed (empty: any).
    pub models: Vec<String>,
}

impl KeyBinding {
    /// Why this key may not make a call for `user`, `feature` and `model`, if it may not.
    pub fn refusal(
        &self,
        user: Option<&str>,
        feature: Option<&str>,
        model: &str,
    ) -> Option<String> {
        let allowed = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|value| list.iter().any(|item| item == value))
        };
        if !allowed(&self.users, user) {
            return Some(format!(
                "key {} may not be used for user {}",
                self.id,
                user.unwrap_or("(none)")
            ));
        }
        if !allowed(&self.features, feature) {
            return Some(format!(
                "key {} may not be used for feature {}",
                self.id,
                feature.unwrap_or("(none)")
            ));
        }
        if !allowed(&self.models, Some(model)) {
            return Some(format!("key {} may not call model {model}", self.id));
        }
        None
    }
}

/// The configured keys, by the SHA-256 of the key.
#[derive(Debug, Default)]
pub struct VirtualKeys {
    by_hash: HashMap<[u8; 32], Arc<KeyBinding>>,
}

impl VirtualKeys {
    /// Adds a key; false when the hash is already present.
    pub fn insert(&mut self, sha256: [u8; 32], binding: KeyBinding) -> bool {
        self.by_hash.insert(sha256, Arc::new(binding)).is_none()
    }

    /// Whether any key is bound to `tenant`: only then can a call be of it.
    pub fn binds_tenant(&self, tenant: &str) -> bool {
        self.by_hash
            .values()
            .any(|binding| binding.tenant_id == tenant)
    }

    /// The binding of the key presented in `Authorization: Bearer` or `x-api-key`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<Arc<KeyBinding>> {
        let key = presented_key(headers)?;
        self.by_hash.get(&hash_key(key)).cloned()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// Whether `headers` present `secret` (as a bearer token or `x-api-key`). Compared by hash, so
/// the time taken does not depend on how much of a guess is right.
pub fn presents(headers: &HeaderMap, secret: &str) -> bool {
    presented_key(headers).is_some_and(|presented| same_secret(presented, secret))
}

/// Whether two secrets are equal, compared by hash so the time taken does not depend on
/// how much of a guess is right.
pub fn same_secret(presented: &str, secret: &str) -> bool {
    hash_key(presented) == hash_key(secret)
}

/// SHA-256 of a key, as the configuration stores it.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The key from `Authorization: Bearer KEY` or, failing that, Anthropic's `x-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim);
    bearer
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
        })
        .filter(|key| !key.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> VirtualKeys {
        let mut keys = VirtualKeys::default();
        keys.insert(
            hash_key("br-secret"),
            KeyBinding {
                id: "acme".into(),
                tenant_id: "acme-corp".into(),
                users: vec![],
                features: vec!["triage".into()],
                models: vec![],
            },
        );
        keys
    }

    #[test]
    fn bearer_and_x_api_key_both_authenticate() {
        let keys = keys();
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer br-secret".parse().unwrap());
        assert_eq!(keys.authenticate(&headers).unwrap().tenant_id, "acme-corp");
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "br-secret".parse().unwrap());
        assert_eq!(keys.authenticate(&headers).unwrap().id, "acme");
    }

    #[test]
    fn unknown_missing_and_empty_keys_do_not() {
        let keys = keys();
        let mut headers = HeaderMap::new();
        assert!(keys.authenticate(&headers).is_none());
        headers.insert("authorization", "Bearer br-wrong".parse().unwrap());
        assert!(keys.authenticate(&headers).is_none());
        headers.insert("authorization", "Bearer ".parse().unwrap());
        assert!(keys.authenticate(&headers).is_none());
    }

    #[test]
    fn bindings_restrict_features() {
        let keys = keys();
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "br-secret".parse().unwrap());
        let binding = keys.authenticate(&headers).unwrap();
        assert!(binding.refusal(None, Some("triage"), "gpt-4.1").is_none());
        let refusal = binding.refusal(None, Some("billing"), "gpt-4.1").unwrap();
        assert!(refusal.contains("feature billing"), "{refusal}");
    }
}
