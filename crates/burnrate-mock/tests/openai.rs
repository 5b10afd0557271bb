//! OpenAI routes against a mock on a random port: shapes, streaming, usage, tools.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a test failure"
)]

mod common;

use common::{events, json, sse_text, start};
use serde_json::{Value, json};

fn chat_body() -> Value {
    json!({"model": "gpt-4.1", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello to the team and describe the weather in Paris."}
    ]})
}

fn weather_tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {
            "location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["location", "unit"]}}},
        {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}])
}

#[tokio::test]
async fn chat_non_stream_shape_and_usage() {
    let h = start().await;
    let v = json(h.openai("/v1/chat/completions", &chat_body(), &[]), 200).await;
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4.1");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["service_tier"], "default");
    assert!(v["system_fingerprint"].as_str().unwrap().starts_with("fp_"));
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert!(choice["logprobs"].is_null());
    assert_eq!(choice["message"]["role"], "assistant");
    assert!(choice["message"]["refusal"].is_null());
    assert_eq!(choice["message"]["annotations"], json!([]));
    assert!(choice["message"].get("tool_calls").is_none());
    assert!(
        choice["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("This is a deterministic")
    );
    let u = &v["usage"];
    let prompt = u["prompt_tokens"].as_u64().unwrap();
    // Strings and keys of the messages: 4+6+7+14 + 4+4+7+56 = 102 bytes → 26 tokens.
    assert_eq!(prompt, 26);
    assert_eq!(u["completion_tokens"], 16);
    assert_eq!(u["total_tokens"], prompt + 16);
    assert_eq!(
        u["prompt_tokens_details"],
        json!({"cached_tokens": 0, "audio_tokens": 0})
    );
    assert_eq!(
        u["completion_tokens_details"],
        json!({"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0})
    );
    // Deterministic: the same request gives the same usage and text.
    let again = json(h.openai("/v1/chat/completions", &chat_body(), &[]), 200).await;
    assert_eq!(again["usage"], v["usage"]);
    assert_eq!(again["choices"], v["choices"]);
    assert_ne!(again["id"], v["id"]);
}

#[tokio::test]
async fn chat_stream_without_include_usage_has_no_usage_key() {
    let h = start().await;
    let mut body = chat_body();
    body["stream"] = json!(true);
    let text = sse_text(h.openai("/v1/chat/completions", &body, &[])).await;
    let events = events(&text);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    assert!(
        events.iter().all(|e| e.name.is_none()),
        "chat streams have no event: lines"
    );
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert!(chunk.get("usage").is_none(), "{chunk}");
        assert_eq!(chunk["choices"].as_array().unwrap().len(), 1);
        assert!(chunk["obfuscation"].is_string());
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["delta"], json!({}));
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    let whole = json(h.openai("/v1/chat/completions", &chat_body(), &[]), 200).await;
    assert_eq!(
        content,
        whole["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let ids: std::collections::HashSet<_> = chunks.iter().map(|c| c["id"].clone()).collect();
    assert_eq!(ids.len(), 1, "one id across the stream");
}

#[tokio::test]
async fn chat_stream_include_usage_exactly_like_openai() {
    let h = start().await;
    let mut body = chat_body();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let text = sse_text(h.openai(
        "/v1/chat/completions",
        &body,
        &[("x-mock-cached-tokens", "20")],
    ))
    .await;
    assert!(text.ends_with("data: [DONE]\n\n"));
    let events = events(&text);
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    let (usage_chunk, rest) = chunks.split_last().unwrap();
    for chunk in rest {
        assert!(
            chunk["usage"].is_null() && chunk.get("usage").is_some(),
            "{chunk}"
        );
        assert_eq!(chunk["choices"].as_array().unwrap().len(), 1);
    }
    assert_eq!(rest.last().unwrap()["choices"][0]["finish_reason"], "stop");
    assert_eq!(usage_chunk["choices"], json!([]));
    let u = &usage_chunk["usage"];
    assert_eq!(u["prompt_tokens"], 26);
    assert_eq!(u["completion_tokens"], 16);
    assert_eq!(u["total_tokens"], 42);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 20);
    // No obfuscation when the client turns it off.
    body["stream_options"]["include_obfuscation"] = json!(false);
    let text = sse_text(h.openai("/v1/chat/completions", &body, &[])).await;
    assert!(!text.contains("obfuscation"));
}

#[tokio::test]
async fn chat_tool_calls() {
    let h = start().await;
    let mut body = chat_body();
    body["tools"] = weather_tools();
    let v = json(h.openai("/v1/chat/completions", &body, &[]), 200).await;
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "Paris", "unit": "celsius"}));
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 10);

    // Streamed: the arguments arrive in pieces that reassemble to the same JSON.
    body["stream"] = json!(true);
    let events = events(&sse_text(h.openai("/v1/chat/completions", &body, &[])).await);
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first["function"]["name"], "get_weather");
    assert_eq!(first["function"]["arguments"], "");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&streamed).unwrap(), args);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    // tool_choice names the second tool.
    body["stream"] = json!(false);
    body["tool_choice"] = json!({"type": "function", "function": {"name": "other"}});
    let v = json(h.openai("/v1/chat/completions", &body, &[]), 200).await;
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "other"
    );

    // Header off, tool_choice none, or a tool result last: a text answer.
    let v = json(
        h.openai("/v1/chat/completions", &body, &[("x-mock-tool-calls", "0")]),
        200,
    )
    .await;
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    body["tool_choice"] = json!("none");
    let v = json(h.openai("/v1/chat/completions", &body, &[]), 200).await;
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    body["tool_choice"] = json!("auto");
    body["messages"].as_array_mut().unwrap().extend([
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{}"}}]}),
        json!({"role": "tool", "tool_call_id": "call_1", "content": "sunny"}),
    ]);
    let v = json(h.openai("/v1/chat/completions", &body, &[]), 200).await;
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let v = json(
        h.openai("/v1/chat/completions", &body, &[("x-mock-tool-calls", "1")]),
        200,
    )
    .await;
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn chat_reasoning_cache_and_caps() {
    let h = start().await;
    let mut body = chat_body();
    body["model"] = json!("gpt-5-mini");
    let v = json(h.openai("/v1/chat/completions", &body, &[]), 200).await;
    assert_eq!(v["model"], "gpt-5-mini");
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"],
        192
    );
    assert_eq!(v["usage"]["completion_tokens"], 192 + 16);
    body["reasoning_effort"] = json!("low");
    let v = json(h.openai("/v1/chat/completions", &body, &[]), 200).await;
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"],
        64
    );

    // prompt_cache_key: most of the prompt is read from cache, a part of prompt_tokens.
    let mut body = chat_body();
    body["prompt_cache_key"] = json!("tenant-a");
    let v = json(h.openai("/v1/chat/completions", &body, &[]), 200).await;
    let prompt = v["usage"]["prompt_tokens"].as_u64().unwrap();
    let cached = v["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert_eq!((prompt, cached), (26, 22));
    // The header wins and raises the prompt so the part never exceeds the whole.
    let v = json(
        h.openai(
            "/v1/chat/completions",
            &body,
            &[
                ("x-mock-cached-tokens", "1024"),
                ("x-mock-cache-write-tokens", "8"),
            ],
        ),
        200,
    )
    .await;
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 1024);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cache_write_tokens"], 8);
    assert_eq!(v["usage"]["prompt_tokens"], 1032);

    // max_completion_tokens cuts the reply: finish_reason length.
    let mut body = chat_body();
    body["max_completion_tokens"] = json!(5);
    let v = json(h.openai("/v1/chat/completions", &body, &[]), 200).await;
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "This is a deterministic reply"
    );
    // x-mock-output-tokens fixes the count.
    let v = json(
        h.openai(
            "/v1/chat/completions",
            &chat_body(),
            &[("x-mock-output-tokens", "40")],
        ),
        200,
    )
    .await;
    assert_eq!(v["usage"]["completion_tokens"], 40);
}

#[tokio::test]
async fn chat_bad_bodies_answer_400_in_dialect() {
    let h = start().await;
    let v = json(
        h.openai("/v1/chat/completions", &json!({"messages": []}), &[]),
        400,
    )
    .await;
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("model"));
    let response = h
        .client
        .post(h.url("/v1/chat/completions"))
        .header("authorization", "Bearer k")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let v: Value = response.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("parse the JSON")
    );
}

fn responses_body() -> Value {
    json!({"model": "gpt-5", "input": "What is 100 * 200 / 3?", "instructions": "Be brief.",
           "prompt_cache_key": "k1", "reasoning": {"effort": "low"}})
}

#[tokio::test]
async fn responses_non_stream() {
    let h = start().await;
    let v = json(h.openai("/v1/responses", &responses_body(), &[]), 200).await;
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["model"], "gpt-5");
    assert_eq!(v["instructions"], "Be brief.");
    assert_eq!(v["prompt_cache_key"], "k1");
    assert_eq!(v["reasoning"], json!({"effort": "low", "summary": null}));
    let output = v["output"].as_array().unwrap();
    assert_eq!(output[0]["type"], "reasoning");
    assert!(output[0]["id"].as_str().unwrap().starts_with("rs_"));
    assert_eq!(output[1]["type"], "message");
    assert_eq!(output[1]["role"], "assistant");
    assert_eq!(output[1]["content"][0]["type"], "output_text");
    assert!(output[1]["id"].as_str().unwrap().starts_with("msg_"));
    let u = &v["usage"];
    let input = u["input_tokens"].as_u64().unwrap();
    let cached = u["input_tokens_details"]["cached_tokens"].as_u64().unwrap();
    assert!(cached > 0 && cached < input, "{u}");
    assert_eq!(u["output_tokens_details"]["reasoning_tokens"], 64);
    assert_eq!(u["output_tokens"], 64 + 16);
    assert_eq!(u["total_tokens"], input + 80);
}

#[tokio::test]
async fn responses_stream_events_and_usage() {
    let h = start().await;
    let mut body = responses_body();
    body["stream"] = json!(true);
    let text = sse_text(h.openai("/v1/responses", &body, &[])).await;
    assert!(!text.contains("[DONE]"));
    let events = events(&text);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(
        &names[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.output_item.done"
        ]
    );
    assert_eq!(names[4], "response.output_item.added");
    assert_eq!(names[5], "response.content_part.added");
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "response.output_text.delta")
            .count(),
        16
    );
    assert_eq!(
        &names[names.len() - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    for (i, event) in events.iter().enumerate() {
        let v = event.json();
        assert_eq!(v["type"], event.name.as_deref().unwrap());
        assert_eq!(v["sequence_number"], i as u64);
    }
    let created = events[0].json();
    assert!(created["response"]["usage"].is_null());
    assert_eq!(created["response"]["status"], "in_progress");
    let deltas: String = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("response.output_text.delta"))
        .map(|e| e.json()["delta"].as_str().unwrap().to_owned())
        .collect();
    let done = events[events.len() - 4].json();
    assert_eq!(done["text"].as_str().unwrap(), deltas);
    let completed = events.last().unwrap().json();
    let u = &completed["response"]["usage"];
    assert!(u["input_tokens_details"]["cached_tokens"].as_u64().unwrap() > 0);
    assert_eq!(u["output_tokens_details"]["reasoning_tokens"], 64);
    let whole = json(h.openai("/v1/responses", &responses_body(), &[]), 200).await;
    assert_eq!(&whole["usage"], u);
}

#[tokio::test]
async fn responses_function_call_and_incomplete() {
    let h = start().await;
    let tools = json!([{"type": "web_search"}, {"type": "function", "name": "final_result", "strict": true,
        "parameters": {"type": "object", "properties": {"result": {"type": "integer"}}, "required": ["result"]}}]);
    let body = json!({"model": "gpt-4.1", "input": [{"role": "user", "content": "Compute"}], "tools": tools});
    let v = json(h.openai("/v1/responses", &body, &[]), 200).await;
    let item = &v["output"][0];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "final_result");
    assert_eq!(item["arguments"], "{\"result\":42}");
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    assert!(item["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(v["tools"], tools);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let streamed_events = events(&sse_text(h.openai("/v1/responses", &streamed, &[])).await);
    let args: String = streamed_events
        .iter()
        .filter(|e| e.name.as_deref() == Some("response.function_call_arguments.delta"))
        .map(|e| e.json()["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(args, "{\"result\":42}");
    assert!(
        streamed_events
            .iter()
            .any(|e| e.name.as_deref() == Some("response.function_call_arguments.done"))
    );

    // A cap below the natural reply: status incomplete, the stream ends response.incomplete.
    let body = json!({"model": "gpt-4.1", "input": "hi", "max_output_tokens": 4, "stream": true});
    let events = events(&sse_text(h.openai("/v1/responses", &body, &[])).await);
    let last = events.last().unwrap();
    assert_eq!(last.name.as_deref(), Some("response.incomplete"));
    assert_eq!(
        last.json()["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(last.json()["response"]["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn embeddings_float_and_base64() {
    let h = start().await;
    let body =
        json!({"model": "text-embedding-3-small", "input": ["Hello, world!", "second input text"]});
    let v = json(h.openai("/v1/embeddings", &body, &[]), 200).await;
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embedding-3-small");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 4 + 5, "total_tokens": 9})
    );
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    let vector: Vec<f64> = data[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(vector.len(), 16);
    assert!((vector.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-3);

    let body = json!({"model": "text-embedding-3-small", "input": "Hello, world!", "encoding_format": "base64", "dimensions": 8});
    let v = json(h.openai("/v1/embeddings", &body, &[]), 200).await;
    let encoded = v["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(encoded.len(), 44, "8 f32 = 32 bytes = 44 base64 characters");
}

#[tokio::test]
async fn models_list_in_both_shapes() {
    let h = start().await;
    let response = h
        .client
        .get(h.url("/v1/models"))
        .bearer_auth("sk")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["object"], "list");
    let first = &v["data"][0];
    assert_eq!(first["object"], "model");
    assert!(first["id"].is_string() && first["created"].is_u64() && first["owned_by"].is_string());

    let response = h
        .client
        .get(h.url("/v1/models"))
        .header("x-api-key", "sk-ant")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    let v: Value = response.json().await.unwrap();
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["has_more"], false);
    assert!(v["first_id"].as_str().unwrap().starts_with("claude-"));

    let response = h.client.get(h.url("/v1/models")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
}
