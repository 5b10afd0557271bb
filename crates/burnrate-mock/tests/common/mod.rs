//! Helpers shared by the integration tests: a mock on a random port and an SSE splitter.

#![allow(dead_code, reason = "each test crate uses a different subset")]

use burnrate_mock::{MockConfig, MockServer};
use serde_json::Value;

/// A running mock and a client for it.
pub struct Harness {
    pub server: MockServer,
    pub client: reqwest::Client,
}

pub async fn start() -> Harness {
    start_with(MockConfig::default()).await
}

pub async fn start_with(config: MockConfig) -> Harness {
    let server = MockServer::start(config).await.unwrap();
    Harness {
        server,
        client: reqwest::Client::new(),
    }
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    /// An OpenAI-style request (Bearer auth) with extra headers.
    pub fn openai(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(self.url(path))
            .header("authorization", "Bearer sk-test-openai")
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    }

    /// An Anthropic-style request (`x-api-key`, `anthropic-version`) with extra headers.
    pub fn anthropic(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(self.url(path))
            .header("x-api-key", "sk-ant-test")
            .header("anthropic-version", "2023-06-01")
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    }
}

/// Sends and decodes a JSON answer, asserting the status.
pub async fn json(request: reqwest::RequestBuilder, status: u16) -> Value {
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), status);
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Sends and returns the raw SSE body, asserting 200 and the content type.
pub async fn sse_text(request: reqwest::RequestBuilder) -> String {
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// One SSE event: the `event:` name if any and the `data:` payload (trailing padding trimmed).
#[derive(Debug, Clone)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

pub fn events(body: &str) -> Vec<Event> {
    assert!(body.ends_with("\n\n"), "stream must end with a blank line");
    body.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(d.trim_end().to_owned());
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            Event {
                name,
                data: data.unwrap_or_else(|| panic!("event without data: {block:?}")),
            }
        })
        .collect()
}

/// Reads a body to its end, returning the bytes received and whether it ended in an error.
pub async fn read_until_error(response: reqwest::Response) -> (Vec<u8>, bool) {
    use futures_util::StreamExt;
    let mut stream = response.bytes_stream();
    let mut received = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => return (received, true),
        }
    }
    (received, false)
}
