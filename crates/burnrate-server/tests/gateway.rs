//! The gateway in front of the mock provider: what clients see, what the provider receives,
//! and what the ledger records.

mod common;

use burnrate_model::Status;
use common::{Harness, KEY, UPSTREAM_ANTHROPIC_KEY, UPSTREAM_OPENAI_KEY, sse_data};
use serde_json::{Value, json};

fn chat(stream: bool) -> Value {
    json!({
        "model": "gpt-4.1",
        "stream": stream,
        "messages": [
            {"role": "system", "content": "You are a triage assistant for support tickets."},
            {"role": "user", "content": "My invoice is wrong, please look at order 1234."},
            {"role": "assistant", "content": "Which invoice number?"},
            {"role": "user", "content": "INV-77, from last March."}
        ]
    })
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

#[tokio::test]
async fn a_chat_call_is_forwarded_with_the_provider_key_and_recorded_with_its_attribution() {
    let harness = Harness::start().await;
    let response = harness
        .post("/v1/chat/completions")
        .header("X-Attribution-Tenant-ID", "someone-else")
        .header("X-Attribution-Label-Team", "core")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let usage = body["usage"].clone();
    let seen = harness.log.requests();
    assert_eq!(seen.len(), 1);
    let headers = &seen[0].headers;
    assert_eq!(
        header(headers, "authorization"),
        Some(format!("Bearer {UPSTREAM_OPENAI_KEY}").as_str())
    );
    assert!(
        headers.iter().all(|(name, value)| !name
            .to_ascii_lowercase()
            .starts_with("x-attribution-")
            && !value.contains(KEY)),
        "attribution headers and the client key stay at the gateway: {headers:?}"
    );
    let events = harness.stop().await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(
        event.tenant_id.as_deref(),
        Some("acme-corp"),
        "the key fixes the tenant"
    );
    assert_eq!(event.user_id.as_deref(), Some("u-1"));
    assert_eq!(event.feature.as_deref(), Some("triage"));
    assert_eq!(event.agent_run_id.as_deref(), Some("run-7"));
    assert_eq!(event.labels.get("team").map(String::as_str), Some("core"));
    assert_eq!(event.provider, "openai");
    assert_eq!(event.operation.as_deref(), Some("chat"));
    assert_eq!(event.source.as_deref(), Some("gateway"));
    assert_eq!(event.status, Status::Ok);
    assert_eq!(
        event.usage.input_tokens,
        usage["prompt_tokens"].as_u64().unwrap()
    );
    assert_eq!(
        event.usage.output_tokens,
        usage["completion_tokens"].as_u64().unwrap()
    );
    let layers = event
        .layers
        .expect("the gateway splits the input into layers");
    assert_eq!(
        layers.prompt + layers.tool + layers.memory,
        event.usage.input_tokens
    );
    assert_eq!(layers.response, event.usage.output_tokens);
    assert!(layers.memory > 0, "earlier turns are memory: {layers:?}");
    assert!(event.duration_ms.is_some());
}

#[tokio::test]
async fn a_stream_without_include_usage_looks_untouched_but_is_metered() {
    let harness = Harness::start().await;
    let response = harness
        .post("/v1/chat/completions")
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(
        !body.contains("\"usage\""),
        "the client did not ask for usage: {body}"
    );
    let data = sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let seen = harness.log.requests();
    let forwarded: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(forwarded["stream_options"]["include_usage"], true);
    let events = harness.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, Status::Ok);
    assert!(events[0].usage.input_tokens > 0);
    assert!(events[0].usage.output_tokens > 0);
}

#[tokio::test]
async fn a_stream_with_include_usage_keeps_its_usage_chunk() {
    let harness = Harness::start().await;
    let mut request = chat(true);
    request["stream_options"] = json!({"include_usage": true});
    let body = harness
        .post("/v1/chat/completions")
        .json(&request)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let usage_chunk: Value = sse_data(&body)
        .iter()
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str::<Value>(data).unwrap())
        .find(|chunk| chunk["usage"].is_object())
        .expect("the client asked for the usage chunk");
    let events = harness.stop().await;
    assert_eq!(
        events[0].usage.input_tokens,
        usage_chunk["usage"]["prompt_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn anthropic_calls_use_x_api_key_both_ways_and_stream_usage_is_recorded() {
    let harness = Harness::start().await;
    let request = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 200, "stream": true,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Summarise the ticket."}]
    });
    let response = harness
        .client
        .post(format!("{}/v1/messages", harness.base))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("X-Attribution-User-ID", "u-2")
        .header("X-Attribution-Feature", "summary")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("message_stop"));
    let seen = harness.log.requests();
    assert_eq!(
        header(&seen[0].headers, "x-api-key"),
        Some(UPSTREAM_ANTHROPIC_KEY)
    );
    assert_eq!(
        header(&seen[0].headers, "anthropic-version"),
        Some("2023-06-01")
    );
    let events = harness.stop().await;
    assert_eq!(events[0].provider, "anthropic");
    assert_eq!(events[0].operation.as_deref(), Some("messages"));
    assert_eq!(events[0].user_id.as_deref(), Some("u-2"));
    assert!(events[0].usage.output_tokens > 0);
}

#[tokio::test]
async fn unknown_keys_get_401_in_each_dialect_and_nothing_is_forwarded() {
    let harness = Harness::start().await;
    let openai = harness
        .client
        .post(format!("{}/v1/chat/completions", harness.base))
        .bearer_auth("br-wrong")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), 401);
    let openai: Value = openai.json().await.unwrap();
    assert_eq!(openai["error"]["type"], "authentication_error");
    let anthropic = harness
        .client
        .post(format!("{}/v1/messages", harness.base))
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 401);
    let anthropic: Value = anthropic.json().await.unwrap();
    assert_eq!(anthropic["type"], "error");
    assert_eq!(anthropic["error"]["type"], "authentication_error");
    assert!(harness.log.requests().is_empty());
    assert!(
        harness.stop().await.is_empty(),
        "anonymous calls are not in the ledger"
    );
}

#[tokio::test]
async fn missing_attribution_is_refused_by_name_and_recorded_as_blocked() {
    let harness = Harness::start().await;
    let response = harness
        .client
        .post(format!("{}/v1/chat/completions", harness.base))
        .bearer_auth(KEY)
        .header("X-Attribution-Feature", "triage")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_attribution");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Attribution-User-ID")
    );
    assert!(harness.log.requests().is_empty());
    let events = harness.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, Status::Blocked);
    assert_eq!(events[0].tenant_id.as_deref(), Some("acme-corp"));
    assert!(
        events[0]
            .error
            .as_deref()
            .unwrap()
            .contains("X-Attribution-User-ID")
    );
}

#[tokio::test]
async fn untagged_calls_are_served_and_recorded_as_untagged_when_configured() {
    let harness = Harness::start_with("[attribution]\nuntagged = \"tag\"\n").await;
    let response = harness
        .client
        .post(format!("{}/v1/chat/completions", harness.base))
        .bearer_auth(KEY)
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = harness.stop().await;
    assert_eq!(events[0].user_id.as_deref(), Some("untagged"));
    assert_eq!(events[0].feature.as_deref(), Some("untagged"));
    assert_eq!(events[0].tenant_id.as_deref(), Some("acme-corp"));
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_the_gateway_keeps_serving() {
    let harness = Harness::start().await;
    let send = |body: Vec<u8>, content_type: &'static str| {
        harness
            .post("/v1/chat/completions")
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let broken = send(b"{\"model\": ".to_vec(), "application/json")
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);
    let broken: Value = broken.json().await.unwrap();
    assert_eq!(broken["error"]["type"], "invalid_request_error");
    let no_model = send(br#"{"messages": []}"#.to_vec(), "application/json")
        .await
        .unwrap();
    assert_eq!(no_model.status(), 400);
    let no_model: Value = no_model.json().await.unwrap();
    assert_eq!(no_model["error"]["param"], "model");
    let text = send(b"hello".to_vec(), "text/plain").await.unwrap();
    assert_eq!(text.status(), 415);
    let huge = send(vec![b' '; 70_000], "application/json").await.unwrap();
    assert_eq!(huge.status(), 413);
    let unknown_model = harness
        .post("/v1/chat/completions")
        .json(&json!({"model": "llama-3", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_model.status(), 404);
    let unknown_model: Value = unknown_model.json().await.unwrap();
    assert!(
        unknown_model["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no provider is configured for model `llama-3`")
    );
    // A model the other API's provider serves: the answer names the route to use.
    let wrong_route = harness
        .post("/v1/chat/completions")
        .json(&json!({"model": "claude-sonnet-4-5", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_route.status(), 404);
    let wrong_route: Value = wrong_route.json().await.unwrap();
    let message = wrong_route["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("send it to POST /v1/messages"),
        "{message}"
    );
    let fine = harness
        .post("/v1/chat/completions")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 200, "still serving after bad input");
    let events = harness.stop().await;
    let blocked = events
        .iter()
        .filter(|e| e.status == Status::Blocked)
        .count();
    assert_eq!(blocked, 6, "every refused call of a known key is recorded");
    assert_eq!(events.iter().filter(|e| e.status == Status::Ok).count(), 1);
}

#[tokio::test]
async fn upstream_errors_pass_through_and_are_recorded() {
    let harness = Harness::start().await;
    let response = harness
        .post("/v1/chat/completions")
        .header("x-mock-status", "500")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    let events = harness.stop().await;
    assert_eq!(events[0].status, Status::Error);
    assert!(events[0].error.as_deref().unwrap().contains("500"));
}

#[tokio::test]
async fn a_stream_cut_midway_records_what_it_used_with_status_error() {
    let harness = Harness::start().await;
    let request = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 300, "stream": true,
        "messages": [{"role": "user", "content": "Write a long answer."}]
    });
    let response = harness
        .post("/v1/messages")
        .header("x-mock-cut-after", "3")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.text().await.is_err(),
        "the client sees the stream break"
    );
    let events = harness.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, Status::Error);
    assert!(
        events[0].usage.input_tokens > 0,
        "message_start's usage is kept"
    );
}

#[tokio::test]
async fn an_upstream_that_is_down_gives_502_and_a_slow_one_504() {
    let harness = Harness::start().await;
    let slow = harness
        .post("/v1/chat/completions")
        .header("x-mock-delay-ms", "3500")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 504);
    let slow: Value = slow.json().await.unwrap();
    assert_eq!(slow["error"]["code"], "upstream_timeout");
    let events = harness.stop().await;
    assert_eq!(events[0].status, Status::Error);

    // Point a gateway at a port nobody listens on.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let dir = tempfile::tempdir().unwrap();
    let text = common::config_text(dir.path(), &dead, "");
    let config = burnrate_server::Config::parse(&text, |_| Some("k".into())).unwrap();
    let gateway = burnrate_server::Gateway::bind(config).await.unwrap();
    let base = format!("http://{}", gateway.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(gateway.run(async move {
        let _ = stopped.await;
    }));
    let mut request = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(KEY);
    for (name, value) in common::TAGS {
        request = request.header(name, value);
    }
    let down = request.json(&chat(false)).send().await.unwrap();
    assert_eq!(down.status(), 502);
    let down: Value = down.json().await.unwrap();
    assert_eq!(down["error"]["code"], "upstream_error");
    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_upstream_redirect_is_a_502_and_neither_the_call_nor_the_key_goes_there() {
    // Where the redirect points: a mock that logs what reaches it.
    let (elsewhere, elsewhere_log) =
        burnrate_mock::router_with_log(burnrate_mock::MockConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere_at = listener.local_addr().unwrap();
    let elsewhere_task = tokio::spawn(async move {
        axum::serve(listener, elsewhere).await.unwrap();
    });
    let redirecting = axum::Router::new().fallback(move |uri: http::Uri| async move {
        (
            http::StatusCode::TEMPORARY_REDIRECT,
            [(
                http::header::LOCATION,
                format!("http://{elsewhere_at}{uri}"),
            )],
        )
    });
    let harness = Harness::start_upstream(redirecting, elsewhere_log.clone(), "").await;

    let openai = harness
        .post("/v1/chat/completions")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), 502);
    let openai: Value = openai.json().await.unwrap();
    assert_eq!(openai["error"]["code"], "upstream_error", "{openai}");
    let message = openai["error"]["message"].as_str().unwrap();
    assert!(message.contains("redirect to http://"), "{message}");
    assert!(
        message.contains("base_url"),
        "says what to change: {message}"
    );

    let anthropic = harness
        .post("/v1/messages")
        .json(&json!({
            "model": "claude-sonnet-4-5", "max_tokens": 50, "stream": true,
            "messages": [{"role": "user", "content": "Hi"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(anthropic.status(), 502);
    let anthropic: Value = anthropic.json().await.unwrap();
    assert_eq!(
        anthropic["type"], "error",
        "Anthropic's dialect: {anthropic}"
    );

    assert!(
        elsewhere_log.is_empty(),
        "nothing followed the redirect: {:?}",
        elsewhere_log.requests()
    );
    let events = harness.stop().await;
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(event.status, Status::Error);
        assert!(
            event.error.as_deref().unwrap().contains("redirect"),
            "{event:?}"
        );
    }
    elsewhere_task.abort();
}

#[tokio::test]
async fn a_call_the_provider_never_took_costs_the_budget_nothing() {
    // Anthropic's route redirects (303 for the dated model name, 307 otherwise); OpenAI's is
    // the mock; one dated OpenAI model goes to a port nobody listens on.
    let (mock, log) = burnrate_mock::router_with_log(burnrate_mock::MockConfig::default());
    let upstream = axum::Router::new()
        .route(
            "/v1/messages",
            axum::routing::post(|body: String| async move {
                let status = if body.contains("claude-sonnet-4-5-20250929") {
                    http::StatusCode::SEE_OTHER
                } else {
                    http::StatusCode::TEMPORARY_REDIRECT
                };
                let location = [(http::header::LOCATION, "http://127.0.0.1:9/v1/messages")];
                (status, location)
            }),
        )
        .fallback_service(mock);
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = unused.local_addr().unwrap();
    drop(unused);
    // Each call below reserves $0.02 to $0.03 (2,000 output tokens), so the cap holds one
    // reservation, never two.
    let extra = format!(
        r#"
[[providers]]
name = "down"
kind = "openai"
base_url = "http://{dead}/v1"
api_key_env = "TEST_UPSTREAM_OPENAI"
models = ["gpt-4o-2024-08-06"]

[[policy.budgets]]
scope = "tenant"
period = "day"
limit_usd = "0.035"
"#
    );
    let harness = Harness::start_upstream(upstream, log, &extra).await;
    // Each call names the standard tier (without one the reservation is at priority
    // prices) and answers with its status and body.
    let call = async |path: &str, model: &str, tier: &str| {
        let body = json!({"model": model, "max_tokens": 2000, "service_tier": tier,
                          "messages": [{"role": "user", "content": "Hi"}]});
        let response = harness.post(path).json(&body).send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    };

    let (status, body) = call("/v1/messages", "claude-sonnet-4-5", "standard_only").await;
    assert_eq!(status, 502, "redirected: {body}");
    let (status, body) = call("/v1/chat/completions", "gpt-4o-2024-08-06", "default").await;
    assert_eq!(
        status, 502,
        "the redirect cost nothing, so this fits: {body}"
    );
    let (status, body) = call("/v1/chat/completions", "gpt-4o", "default").await;
    assert_eq!(
        status, 200,
        "neither failure was charged its reservation: {body}"
    );
    // A 303 ("see the result there") can follow work done: charged its reservation, after
    // which the next call no longer fits.
    let dated = "claude-sonnet-4-5-20250929";
    let (status, body) = call("/v1/messages", dated, "standard_only").await;
    assert_eq!(status, 502, "redirected: {body}");
    // Another model than before, so the gateway's answer cache has nothing to serve instead.
    let (status, body) = call("/v1/chat/completions", "gpt-4o-2024-11-20", "default").await;
    assert_eq!(status, 429, "the 303 was charged: {body}");

    let events = harness.stop().await;
    assert_eq!(events.len(), 5);
    assert_eq!(
        events.iter().filter(|e| e.status == Status::Error).count(),
        3,
        "every failure is recorded: {events:?}"
    );
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_still_gets_its_call_recorded() {
    let harness = Harness::start().await;
    let request = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 400, "stream": true,
        "messages": [{"role": "user", "content": "Tell me a story."}]
    });
    let response = harness
        .post("/v1/messages")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    let events = harness.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].status,
        Status::Ok,
        "the upstream stream was driven to its end"
    );
    assert!(events[0].usage.output_tokens > 0);
}

#[tokio::test]
async fn a_stream_its_client_left_is_still_driven_to_its_end_and_recorded_at_shutdown() {
    // The upstream sends one chunk, then holds the rest until the test opens the gate; the
    // client leaves after the first chunk and the gateway is told to stop. The stream's pump
    // is still running: shutdown must wait for it, and its call must reach the ledger whole.
    let (_, log) = burnrate_mock::router_with_log(burnrate_mock::MockConfig::default());
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let held = std::sync::Arc::clone(&gate);
    let upstream = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let gate = std::sync::Arc::clone(&held);
            async move {
                let chunk = |json: Value| {
                    Ok::<_, std::convert::Infallible>(bytes::Bytes::from(format!(
                        "data: {json}\n\n"
                    )))
                };
                let first = chunk(json!({"id": "c-1", "object": "chat.completion.chunk",
                    "model": "gpt-4.1", "choices": [{"index": 0,
                    "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": null}]}));
                let rest = async move {
                    gate.notified().await;
                    let end = chunk(json!({"id": "c-1", "object": "chat.completion.chunk",
                        "model": "gpt-4.1", "choices": [{"index": 0, "delta": {},
                        "finish_reason": "stop"}]}));
                    let usage = chunk(json!({"id": "c-1", "object": "chat.completion.chunk",
                        "model": "gpt-4.1", "choices": [], "usage": {"prompt_tokens": 31,
                        "completion_tokens": 2, "total_tokens": 33}}));
                    let done = Ok(bytes::Bytes::from_static(b"data: [DONE]\n\n"));
                    futures_util::stream::iter([end, usage, done])
                };
                let body = futures_util::StreamExt::chain(
                    futures_util::stream::once(std::future::ready(first)),
                    futures_util::StreamExt::flatten(futures_util::stream::once(rest)),
                );
                (
                    [(http::header::CONTENT_TYPE, "text/event-stream")],
                    axum::body::Body::from_stream(body),
                )
            }
        }),
    );
    let harness = Harness::start_upstream_patient(upstream, log).await;
    let calls = harness.calls.clone();
    // Over HTTP/2 a client that drops its response resets the stream at once, so its
    // connection does not keep the gateway's server open: only the pump's own task does.
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut response = harness
        .post_with(&client, "/v1/chat/completions")
        .json(&chat(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.chunk().await.unwrap().is_some(), "the first chunk");
    drop(response);
    let stopping = tokio::spawn(harness.stop());
    // The gateway is stopping and has only the stream's pump left to wait for (the call's
    // own task has ended): only then may the upstream end.
    let pump_alone = async {
        while !(calls.is_closed() && calls.len() == 1) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), pump_alone)
        .await
        .expect("after 60 s the stopping gateway is not waiting for the stream's pump alone");
    gate.notify_one();
    let events = stopping.await.unwrap();
    assert_eq!(events.len(), 1, "the stream's call is in the ledger");
    assert_eq!(events[0].status, Status::Ok, "{:?}", events[0].error);
    assert_eq!(events[0].usage.input_tokens, 31);
    assert_eq!(events[0].usage.output_tokens, 2);
}

/// Whether the gateway closes `connection` (reading until it does), within 20 s: far beyond
/// the 1 s `header_read_timeout_s` the test sets and far below the 620 s default, so the
/// configured value is what cut it off.
async fn closed_by_the_gateway(mut connection: tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let read = connection.read_to_end(&mut answer);
    match tokio::time::timeout(std::time::Duration::from_secs(20), read).await {
        Ok(Ok(_)) => true,
        Ok(Err(error)) => error.kind() == std::io::ErrorKind::ConnectionReset,
        Err(_) => false,
    }
}

#[tokio::test]
async fn clients_that_send_nothing_or_trickle_a_request_head_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let text = common::config_text(dir.path(), "http://127.0.0.1:9", "").replace(
        "shutdown_timeout_s = 5",
        "shutdown_timeout_s = 5\nheader_read_timeout_s = 1",
    );
    let config = burnrate_server::Config::parse(&text, common::env).unwrap();
    let gateway = burnrate_server::Gateway::bind(config).await.unwrap();
    let address = gateway.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(gateway.run(async move {
        let _ = stopped.await;
    }));
    // One client connects and sends nothing; one sends half a request head, then nothing.
    let silent = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut trickling = tokio::net::TcpStream::connect(address).await.unwrap();
    trickling
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n")
        .await
        .unwrap();
    let health = reqwest::get(format!("http://{address}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "others are served meanwhile");
    assert!(
        closed_by_the_gateway(silent).await,
        "a silent connection is closed"
    );
    assert!(
        closed_by_the_gateway(trickling).await,
        "an unfinished request head is cut off"
    );
    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
}

#[tokio::test]
async fn health_readiness_models_and_metrics() {
    let harness = Harness::start().await;
    let get = |path: &str| harness.client.get(format!("{}{path}", harness.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    assert_eq!(get("/v1/models").await.unwrap().status(), 401);
    let models: Value = harness
        .client
        .get(format!("{}/v1/models", harness.base))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "gpt-*")
    );
    harness
        .post("/v1/chat/completions")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(
            r#"burnrate_requests_total{operation="chat",provider="openai",status="ok"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("burnrate_tokens_total{class=\"input\"}"));
    assert!(metrics.contains("burnrate_upstream_latency_seconds"));
    assert!(metrics.contains("burnrate_journal_lag_events"));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_an_http2_connections_stream_limit_go_over_another_connection() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // An upstream that speaks only HTTP/2, allows 100 streams per connection (RFC 9113's
    // recommended least) and answers no call before all of them have arrived and the
    // gateway's metrics show them in flight. Over one connection the calls past the 100th
    // would wait for a stream that never frees, and every call would time out (after 60 s:
    // room for a slow machine to send them all).
    const CALLS: usize = 120;
    let (mock, log) = burnrate_mock::router_with_log(burnrate_mock::MockConfig::default());
    let arrived = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let versions = Arc::new(std::sync::Mutex::new(Vec::new()));
    let upstream = {
        let (arrived, gate, versions) = (
            Arc::clone(&arrived),
            Arc::clone(&gate),
            Arc::clone(&versions),
        );
        mock.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let (arrived, gate, versions) = (
                    Arc::clone(&arrived),
                    Arc::clone(&gate),
                    Arc::clone(&versions),
                );
                async move {
                    versions.lock().unwrap().push(request.version());
                    arrived.fetch_add(1, Ordering::SeqCst);
                    let _pass = gate.acquire().await.unwrap();
                    next.run(request).await
                }
            },
        ))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::clone(&connections);
    let server = tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            accepted.fetch_add(1, Ordering::SeqCst);
            let service = hyper_util::service::TowerToHyperService::new(upstream.clone());
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .max_concurrent_streams(100)
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), service),
            );
        }
    });
    let harness = Harness::start_patient(&format!(
        r#"
[[providers]]
name = "h2-only"
kind = "openai"
base_url = "http://{address}/v1"
api_key_env = "TEST_UPSTREAM_OPENAI"
models = ["gpt-4.1-nano"]
http = "2"
"#
    ))
    .await;

    let calls = (0..CALLS).map(|n| {
        let body = json!({"model": "gpt-4.1-nano", "stream": n % 2 == 0,
                          "messages": [{"role": "user", "content": format!("Call {n}")}]});
        let request = harness.post("/v1/chat/completions").json(&body).send();
        async move {
            let response = request.await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    });
    let calls = tokio::spawn(futures_util::future::join_all(calls));
    // Every call reaches the upstream, and `/metrics` shows them on two lanes, before any
    // is answered.
    let in_flight = |calls: usize| {
        let wanted = format!("burnrate_upstream_in_flight{{provider=\"h2-only\"}} {calls}\n");
        let arrived = &arrived;
        harness.metrics_once(
            move |text| arrived.load(Ordering::SeqCst) == CALLS && text.contains(&wanted),
            "calls in flight",
        )
    };
    // (Over one connection the calls past the 100th never reach it.)
    let text = in_flight(CALLS).await;
    assert!(
        text.contains("burnrate_upstream_lanes{provider=\"h2-only\"} 2\n"),
        "{text}"
    );
    gate.add_permits(CALLS);
    for (status, body) in calls.await.unwrap() {
        assert_eq!(status, 200, "{body}");
    }
    // The calls give their places back once answered.
    in_flight(0).await;
    server.abort();
    assert_eq!(
        connections.load(Ordering::SeqCst),
        2,
        "one connection per 100 calls in flight"
    );
    let versions = versions.lock().unwrap().clone();
    assert_eq!(versions.len(), CALLS);
    assert!(versions.iter().all(|v| *v == http::Version::HTTP_2));
    assert_eq!(log.requests().len(), CALLS, "each call reached the mock");
    let events = harness.stop().await;
    assert_eq!(events.len(), CALLS);
    assert!(
        events.iter().all(|e| e.status == Status::Ok
            && e.provider == "h2-only"
            && e.usage.output_tokens > 0),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_stream_whose_client_stops_reading_is_recorded_and_the_client_gets_an_error() {
    // A long answer (about 50 MB of chunks) to a client that reads only the head, so the
    // socket buffers fill and the gateway's pump waits on the client.
    let harness = Harness::start().await;
    let request = json!({"model": "gpt-4.1", "stream": true,
                         "messages": [{"role": "user", "content": "Write at length."}]});
    let mut response = harness
        .post("/v1/chat/completions")
        .header("x-mock-output-tokens", "200000")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // After the upstream timeout (2 s here) without the client reading, the gateway reads
    // the upstream to its end and records the call while the client still holds the socket.
    harness
        .metrics_once(
            |text| {
                text.contains(
                    "burnrate_requests_total{operation=\"chat\",provider=\"openai\",status=\"ok\"} 1",
                )
            },
            "the call to be recorded while its client read nothing",
        )
        .await;
    // The client then reads what was queued for it and an error, never a whole-looking end.
    let mut received = 0;
    let ended = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        }
    };
    assert!(ended.is_err(), "a cut stream must not end cleanly");
    assert!(received > 0 && received < 40_000_000, "{received} bytes");
    let events = harness.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, Status::Ok);
    assert_eq!(events[0].usage.output_tokens, 200_000);
}

#[tokio::test]
async fn a_stream_the_upstream_ends_early_but_cleanly_ends_in_an_error_for_the_client() {
    // One chunk, then the end of the body: no finish reason, no usage, no `[DONE]`.
    let (_, log) = burnrate_mock::router_with_log(burnrate_mock::MockConfig::default());
    let upstream = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async {
            let chunk = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#;
            (
                [(http::header::CONTENT_TYPE, "text/event-stream")],
                format!("data: {chunk}\n\n"),
            )
        }),
    );
    let harness = Harness::start_upstream(upstream, log, "").await;
    // The error may come before the head is written (the whole answer is one read).
    let received = async {
        let response = harness
            .post("/v1/chat/completions")
            .json(&chat(true))
            .send()
            .await?;
        response.text().await
    }
    .await;
    assert!(
        received.is_err(),
        "a stream cut short must not look whole to the client: {received:?}"
    );
    let events = harness.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].status, Status::Error);
}

#[tokio::test]
async fn usage_past_any_plausible_call_is_recorded_within_the_events_rules() {
    // An upstream reporting an output count past any plausible call (and more cached tokens
    // than input tokens): the client gets the answer as sent, the ledger an event within
    // the rules (a count cut to the largest plausible), not a refusal or a lost call.
    let (_, log) = burnrate_mock::router_with_log(burnrate_mock::MockConfig::default());
    let upstream = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async {
            axum::Json(json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                "model": "gpt-4.1",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Hi"}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 5_000_000_000_000u64,
                          "total_tokens": 5_000_000_000_005u64,
                          "prompt_tokens_details": {"cached_tokens": 9}}
            }))
        }),
    );
    let harness = Harness::start_upstream(upstream, log, "").await;
    let response = harness
        .post("/v1/chat/completions")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["usage"]["completion_tokens"], 5_000_000_000_000u64);
    let events = harness.stop().await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert!(event.validate().is_ok(), "{event:?}");
    // The input takes in the cached tokens it must include (the usage parser's rule).
    assert_eq!(event.usage.input_tokens, 9);
    assert_eq!(event.usage.cache_read_tokens, 9);
    assert_eq!(event.usage.output_tokens, burnrate_model::Usage::MAX_TOKENS);
}
