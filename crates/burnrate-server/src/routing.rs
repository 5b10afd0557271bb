//! Upstream providers and which model names each serves.

use std::sync::Arc;

use burnrate_wire::Api;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use reqwest::Url;

use crate::upstream::{Lane, LaneLoad, Lanes};

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

/// Which HTTP the gateway speaks to a provider (`http` in its `[[providers]]` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// HTTP/2 where the provider offers it in the TLS handshake (ALPN), as the hosted APIs
    /// do; HTTP/1.1 otherwise, and always for an `http://` base URL.
    #[default]
    Auto,
    /// HTTP/1.1 only: a connection per call in flight.
    Http1,
    /// HTTP/2 without negotiating it (prior knowledge; over `http://` this is h2c), for
    /// servers known to speak it.
    Http2,
}

impl HttpVersion {
    /// Reads the configuration's spelling: `auto`, `1.1` or `2`.
    pub fn parse(text: &str) -> Option<HttpVersion> {
        match text {
            "auto" => Some(HttpVersion::Auto),
            "1.1" => Some(HttpVersion::Http1),
            "2" => Some(HttpVersion::Http2),
            _ => None,
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
    /// Model names (exact) and patterns (`gpt-*`) it serves.
    pub models: Vec<String>,
    /// Which HTTP the gateway speaks to it.
    pub http: HttpVersion,
    /// Where each route's calls go, parsed once rather than on every call.
    urls: RouteUrls,
    /// The header carrying the provider's key, built once and marked sensitive; the key
    /// never reaches a client or a log.
    auth: Option<(HeaderName, HeaderValue)>,
    /// Connections to it (a reloaded configuration opens new ones; calls under way keep
    /// theirs).
    lanes: Arc<Lanes>,
}

/// The upstream URL of each route: the base URL and the route's path.
#[derive(Debug, Clone)]
struct RouteUrls {
    chat: Url,
    responses: Url,
    embeddings: Url,
    messages: Url,
}

impl Provider {
    /// A provider at `base_url` (a trailing slash is dropped) with its API key, if any.
    /// Fails with the configuration key at fault and the reason: a base URL that is not an
    /// http(s) URL, or a key that cannot be sent in an HTTP header.
    pub fn new(
        name: String,
        kind: ProviderKind,
        base_url: &str,
        api_key: Option<&str>,
        models: Vec<String>,
    ) -> Result<Provider, String> {
        let base_url = base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(format!(
                "base_url: `{base_url}` must start with http:// or https://"
            ));
        }
        let url = |api: Api| {
            Url::parse(&format!("{base_url}{}", api.upstream_path()))
                .map_err(|error| format!("base_url: `{base_url}` is not a URL ({error})"))
        };
        let urls = RouteUrls {
            chat: url(Api::ChatCompletions)?,
            responses: url(Api::Responses)?,
            embeddings: url(Api::Embeddings)?,
            messages: url(Api::Messages)?,
        };
        let auth = api_key
            .map(|key| {
                let (name, value) = match kind {
                    ProviderKind::OpenAi => (AUTHORIZATION, format!("Bearer {key}")),
                    ProviderKind::Anthropic => (HeaderName::from_static("x-api-key"), key.into()),
                };
                let mut value = HeaderValue::from_str(&value).map_err(|_| {
                    "api_key_env: the key holds characters an HTTP header cannot carry (a \
                     line break or a control character?)"
                        .to_string()
                })?;
                value.set_sensitive(true);
                Ok::<_, String>((name, value))
            })
            .transpose()?;
        Ok(Provider {
            name,
            kind,
            base_url,
            models,
            http: HttpVersion::Auto,
            urls,
            auth,
            lanes: Arc::default(),
        })
    }

    /// Where calls of `api` go.
    pub fn url(&self, api: Api) -> &Url {
        match api {
            Api::ChatCompletions => &self.urls.chat,
            Api::Responses => &self.urls.responses,
            Api::Embeddings => &self.urls.embeddings,
            Api::Messages => &self.urls.messages,
        }
    }

    /// A place for one call on a connection to the provider, held until the call's answer
    /// has been read.
    pub fn lane(&self) -> Result<Lane, reqwest::Error> {
        self.lanes.take(self.http)
    }

    /// How many lanes to it are open and how many calls are on them.
    pub fn load(&self) -> LaneLoad {
        self.lanes.load()
    }

    /// The header that authenticates calls to the provider, when it has a key.
    pub fn auth(&self) -> Option<(&HeaderName, &HeaderValue)> {
        self.auth.as_ref().map(|(name, value)| (name, value))
    }
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
        let models = models.iter().map(|m| m.to_string()).collect();
        Provider::new(name.into(), kind, "http://127.0.0.1:1", None, models).unwrap()
    }

    #[test]
    fn each_route_has_its_url_and_the_key_its_header() {
        let openai = Provider::new(
            "openai".into(),
            ProviderKind::OpenAi,
            "https://api.openai.com/v1/",
            Some("sk-1"),
            vec![],
        )
        .unwrap();
        assert_eq!(
            openai.url(Api::ChatCompletions).as_str(),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            openai.url(Api::Embeddings).as_str(),
            "https://api.openai.com/v1/embeddings"
        );
        let (name, value) = openai.auth().unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("authorization", "Bearer sk-1")
        );
        assert!(
            value.is_sensitive(),
            "never printed by a Debug of the headers"
        );
        let anthropic = Provider::new(
            "anthropic".into(),
            ProviderKind::Anthropic,
            "https://api.anthropic.com",
            Some("sk-ant"),
            vec![],
        )
        .unwrap();
        assert_eq!(
            anthropic.url(Api::Messages).as_str(),
            "https://api.anthropic.com/v1/messages"
        );
        let (name, value) = anthropic.auth().unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("x-api-key", "sk-ant")
        );

        let bad_url = Provider::new(
            "x".into(),
            ProviderKind::OpenAi,
            "http://exa mple",
            None,
            vec![],
        );
        assert!(
            bad_url
                .unwrap_err()
                .starts_with("base_url: `http://exa mple` is not a URL")
        );
        let bad_key = Provider::new(
            "x".into(),
            ProviderKind::OpenAi,
            "http://127.0.0.1:1",
            Some("sk-1\n"),
            vec![],
        );
        assert!(bad_key.unwrap_err().starts_with("api_key_env: "));
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
