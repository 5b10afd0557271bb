//! Upstream providers and which model names each serves.

use std::sync::Arc;

/// The wire family a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI-compatible (`/chat/completions`, `/responses`, `/embeddings`).
    OpenAi,
    /// Anthropic-compatible (`/v1/messages`).
    Anthropic,
}

impl ProviderKind {
    /// The event's `provider` for calls this kind serves when the configuration name is not
    /// a known provider name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }
}

/// One upstream provider.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Name in the configuration, recorded as the event's `provider`.
    pub name: String,
    /// Wire family.
    pub kind: ProviderKind,
    /// Base URL without a trailing slash (OpenAI-style ends in `/v1`; Anthropic has none).
    pub base_url: String,
    /// The provider's API key, from the environment; never logged, never sent to clients.
    pub api_key: Option<String>,
    /// Model names (exact) and patterns (`gpt-*`) it serves.
    pub models: Vec<String>,
}

/// The providers in configuration order.
#[derive(Debug, Default)]
pub struct Providers {
    providers: Vec<Arc<Provider>>,
}

impl Providers {
    /// Wraps the configured providers.
    pub fn new(providers: Vec<Provider>) -> Providers {
        Providers {
            providers: providers.into_iter().map(Arc::new).collect(),
        }
    }

    /// The provider of `kind` serving `model`: an exact name first, then the longest matching
    /// prefix pattern (`gpt-4.1-*` beats `gpt-*`), ties to the first configured.
    pub fn route(&self, kind: ProviderKind, model: &str) -> Option<&Arc<Provider>> {
        let candidates = || self.providers.iter().filter(|p| p.kind == kind);
        if let Some(exact) = candidates().find(|p| p.models.iter().any(|m| m == model)) {
            return Some(exact);
        }
        let mut best: Option<(&Arc<Provider>, usize)> = None;
        for provider in candidates() {
            for pattern in &provider.models {
                let Some(prefix) = pattern.strip_suffix('*') else {
                    continue;
                };
                if model.starts_with(prefix) && best.is_none_or(|(_, len)| prefix.len() > len) {
                    best = Some((provider, prefix.len()));
                }
            }
        }
        best.map(|(provider, _)| provider)
    }

    /// All providers.
    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.providers.iter().map(|provider| provider.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str, kind: ProviderKind, models: &[&str]) -> Provider {
        Provider {
            name: name.into(),
            kind,
            base_url: "http://127.0.0.1:1".into(),
            api_key: None,
            models: models.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn exact_names_beat_patterns_and_longer_patterns_beat_shorter() {
        let providers = Providers::new(vec![
            provider("openai", ProviderKind::OpenAi, &["gpt-*", "o*"]),
            provider("azure", ProviderKind::OpenAi, &["gpt-4.1-*", "gpt-4o"]),
            provider("anthropic", ProviderKind::Anthropic, &["claude-*"]),
        ]);
        let route = |kind, model| providers.route(kind, model).map(|p| p.name.as_str());
        assert_eq!(route(ProviderKind::OpenAi, "gpt-4o"), Some("azure"));
        assert_eq!(route(ProviderKind::OpenAi, "gpt-4.1-mini"), Some("azure"));
        assert_eq!(route(ProviderKind::OpenAi, "gpt-5"), Some("openai"));
        assert_eq!(route(ProviderKind::OpenAi, "o3-mini"), Some("openai"));
        assert_eq!(
            route(ProviderKind::Anthropic, "claude-sonnet-4-5"),
            Some("anthropic")
        );
        assert_eq!(route(ProviderKind::Anthropic, "gpt-5"), None);
        assert_eq!(route(ProviderKind::OpenAi, "llama-3"), None);
    }
}
