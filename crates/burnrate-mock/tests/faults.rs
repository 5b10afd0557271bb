//! Fault injection, auth, delays, the request log and serving.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a test failure"
)]

mod common;

use std::time::Duration;

use burnrate_mock::MockConfig;
use common::{events, json, read_until_error, start, start_with};
use serde_json::{Value, json};

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-4.1", "stream": stream, "stream_options": {"include_usage": true},
           "messages": [{"role": "user", "content": "hello"}]})
}

fn message(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": stream,
           "messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test]
async fn missing_credentials_are_401_in_dialect() {
    let h = start().await;
    let response = h
        .client
        .post(h.url("/v1/chat/completions"))
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"].get("param").is_some() && v["error"].get("code").is_some());

    // An x-api-key is not enough for OpenAI routes, a Bearer token not enough for Anthropic.
    let response = h
        .client
        .post(h.url("/v1/chat/completions"))
        .header("x-api-key", "k")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = h
        .client
        .post(h.url("/v1/messages"))
        .bearer_auth("k")
        .json(&message(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    assert!(v["request_id"].as_str().unwrap().starts_with("req_"));
}

#[tokio::test]
async fn status_header_gives_dialect_errors() {
    let h = start().await;
    for (status, kind, code) in [
        ("500", "server_error", Value::Null),
        ("429", "requests", json!("rate_limit_exceeded")),
        ("529", "server_error", Value::Null),
        ("400", "invalid_request_error", Value::Null),
    ] {
        for stream in [false, true] {
            let response = h
                .openai(
                    "/v1/chat/completions",
                    &chat(stream),
                    &[("x-mock-status", status)],
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_str(), status);
            assert_eq!(response.headers()["content-type"], "application/json");
            if status == "429" {
                assert_eq!(response.headers()["retry-after"], "1");
            }
            let v: Value = response.json().await.unwrap();
            let error = &v["error"];
            assert_eq!(error["type"], kind, "{status}");
            assert_eq!(error["code"], code);
            assert!(error["param"].is_null() && error["message"].is_string());
        }
    }
    for (status, kind) in [
        ("500", "api_error"),
        ("429", "rate_limit_error"),
        ("529", "overloaded_error"),
        ("400", "invalid_request_error"),
    ] {
        let v = json(
            h.anthropic("/v1/messages", &message(true), &[("x-mock-status", status)]),
            status.parse().unwrap(),
        )
        .await;
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], kind);
        assert!(v["error"]["message"].is_string());
    }
    // A bad control header is a 400 naming it.
    let v = json(
        h.openai(
            "/v1/chat/completions",
            &chat(false),
            &[("x-mock-status", "abc")],
        ),
        400,
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("x-mock-status")
    );
    // Unknown routes: 404 in dialect.
    let v = json(h.openai("/v1/nope", &chat(false), &[]), 404).await;
    assert_eq!(v["error"]["message"], "Invalid URL (POST /v1/nope)");
}

#[tokio::test]
async fn cut_after_leaves_an_incomplete_body() {
    let h = start().await;
    for (route, body, openai) in [
        ("/v1/chat/completions", chat(true), true),
        (
            "/v1/responses",
            json!({"model": "gpt-4.1", "input": "hi", "stream": true}),
            true,
        ),
        ("/v1/messages", message(true), false),
    ] {
        let request = if openai {
            h.openai(route, &body, &[("x-mock-cut-after", "3")])
        } else {
            h.anthropic(route, &body, &[("x-mock-cut-after", "3")])
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let (received, failed) = read_until_error(response).await;
        assert!(failed, "{route}: the client must see the body fail");
        let text = String::from_utf8(received).unwrap();
        assert_eq!(
            events(&text).len(),
            3,
            "{route}: the first 3 events arrive: {text}"
        );
        // `.text()` fails too: what an SDK sees.
        let request = if openai {
            h.openai(route, &body, &[("x-mock-cut-after", "0")])
        } else {
            h.anthropic(route, &body, &[("x-mock-cut-after", "0")])
        };
        assert!(request.send().await.unwrap().text().await.is_err());
    }
    // Non-streaming: the first N bytes of the JSON, then the cut.
    let response = h
        .openai(
            "/v1/chat/completions",
            &chat(false),
            &[("x-mock-cut-after", "10")],
        )
        .send()
        .await
        .unwrap();
    let (received, failed) = read_until_error(response).await;
    assert!(failed);
    assert_eq!(received, b"{\"id\":\"cha");
    // Cut with pacing: still the first N events, then the error.
    let response = h
        .openai(
            "/v1/chat/completions",
            &chat(true),
            &[("x-mock-cut-after", "2"), ("x-mock-chunk-delay-ms", "5")],
        )
        .send()
        .await
        .unwrap();
    let (received, failed) = read_until_error(response).await;
    assert!(failed);
    assert_eq!(events(std::str::from_utf8(&received).unwrap()).len(), 2);
}

#[tokio::test]
async fn broken_sse_has_one_malformed_line() {
    let h = start().await;
    for (response, done) in [
        (
            h.openai(
                "/v1/chat/completions",
                &chat(true),
                &[("x-mock-broken-sse", "1")],
            )
            .send()
            .await
            .unwrap(),
            true,
        ),
        (
            h.anthropic(
                "/v1/messages",
                &message(true),
                &[("x-mock-broken-sse", "1")],
            )
            .send()
            .await
            .unwrap(),
            false,
        ),
    ] {
        let text = response.text().await.unwrap();
        let events = events(&text);
        let broken = events
            .iter()
            .filter(|e| e.data != "[DONE]" && serde_json::from_str::<Value>(&e.data).is_err())
            .count();
        assert_eq!(broken, 1, "{text}");
        assert_eq!(
            text.ends_with("data: [DONE]\n\n"),
            done,
            "the stream goes on to its normal end"
        );
    }
}

/// Sends `body` to the mock's router in-process (no socket, so a paused clock only moves
/// through the mock's own timers) and returns the whole response body.
async fn call_in_process(config: MockConfig, body: &Value, headers: &[(&str, &str)]) -> String {
    use tower::ServiceExt;
    let mut request = http::Request::post("/v1/chat/completions")
        .header("authorization", "Bearer sk-test-openai")
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let response = burnrate_mock::router(config)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

// On tokio's paused clock: time moves only when every task waits on a timer, and then
// straight to the next one, so the elapsed time is what the mock slept, not a wall-clock
// measurement.
#[tokio::test(start_paused = true)]
async fn delays_and_chunk_pacing() {
    let config = MockConfig {
        chunk_delay: Duration::from_millis(10),
        ..MockConfig::default()
    };
    let started = tokio::time::Instant::now();
    call_in_process(config.clone(), &chat(false), &[("x-mock-delay-ms", "120")]).await;
    assert_eq!(started.elapsed(), Duration::from_millis(120));

    // 16 content chunks + role + finish + usage + [DONE] = 20 events, 19 gaps of 10 ms.
    let started = tokio::time::Instant::now();
    let text = call_in_process(config, &chat(true), &[]).await;
    assert_eq!(events(&text).len(), 20);
    assert_eq!(started.elapsed(), Duration::from_millis(190), "{text}");
}

#[tokio::test]
async fn error_rate_is_seeded() {
    let all = start_with(MockConfig {
        error_rate: 1.0,
        ..MockConfig::default()
    })
    .await;
    let response = all
        .openai("/v1/chat/completions", &chat(false), &[])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 500);
    let response = all
        .anthropic("/v1/messages", &message(false), &[])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 529);
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["error"]["type"], "overloaded_error");
    // GET routes never fail.
    let response = all
        .client
        .get(all.url("/v1/models"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    let config = MockConfig {
        error_rate: 0.3,
        seed: 7,
        ..MockConfig::default()
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let h = start_with(config.clone()).await;
        let mut statuses = Vec::new();
        for _ in 0..200 {
            statuses.push(
                h.openai("/v1/chat/completions", &chat(false), &[])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1], "same seed, same failures");
    let failures = runs[0].iter().filter(|s| **s == 500).count();
    assert!((35..=85).contains(&failures), "{failures} of 200 at 30%");
}

#[tokio::test]
async fn request_log_records_what_arrived() {
    let h = start().await;
    h.openai(
        "/v1/chat/completions?trace=1",
        &chat(false),
        &[("x-attribution-tenant-id", "acme")],
    )
    .send()
    .await
    .unwrap();
    h.client
        .post(h.url("/v1/messages"))
        .json(&message(false))
        .send()
        .await
        .unwrap();
    let seen = h.server.log.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/v1/chat/completions?trace=1");
    assert_eq!(seen[0].auth(), Some("Bearer sk-test-openai"));
    assert_eq!(seen[0].header("X-Attribution-Tenant-Id"), Some("acme"));
    assert_eq!(seen[0].json().unwrap(), chat(false));
    assert_eq!(
        seen[1].path, "/v1/messages",
        "rejected requests are logged too"
    );
    assert_eq!(h.server.log.last_auth(), None);
    h.anthropic("/v1/messages", &message(false), &[])
        .send()
        .await
        .unwrap();
    assert_eq!(h.server.log.last_auth().as_deref(), Some("sk-ant-test"));
    h.server.log.clear();
    assert!(h.server.log.is_empty());
}

#[tokio::test]
async fn serve_until_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(burnrate_mock::serve_with_shutdown(
        listener,
        MockConfig::default(),
        async {
            stopped.await.ok();
        },
    ));
    let client = reqwest::Client::new();
    let ok = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.text().await.unwrap(), "ok");
    let response = client
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth("k")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    drop(client);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
