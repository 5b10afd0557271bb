use proptest::prelude::*;
use serde_json::json;

use super::*;

fn analyze_json(api: Api, body: Value) -> Result<RequestInfo, WireError> {
    analyze(api, body.to_string().as_bytes())
}

fn error_of(api: Api, body: &str) -> (String, String) {
    match analyze(api, body.as_bytes()) {
        Ok(info) => panic!("expected an error, got {info:?}"),
        Err(e) => (e.field, e.reason),
    }
}

#[test]
fn chat_request() {
    let info = analyze_json(
        Api::ChatCompletions,
        json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}],
               "stream": true, "max_tokens": 100, "service_tier": "flex", "n": 3}),
    )
    .unwrap();
    assert_eq!(
        info,
        RequestInfo {
            model: "gpt-4.1".into(),
            stream: true,
            client_wants_usage: false,
            max_output_tokens: Some(100),
            service_tier: Some("flex".into()),
            choices: 3,
            background: false,
        }
    );
    let background = analyze_json(
        Api::Responses,
        json!({"model": "gpt-4.1", "input": "hi", "background": true}),
    )
    .unwrap();
    assert!(background.background);
    let bad = analyze_json(Api::ChatCompletions, json!({"model": "m", "n": -1})).unwrap_err();
    assert_eq!(bad.field, "n");
}

#[test]
fn chat_usage_wish_and_output_cap() {
    let wants = |body: Value| {
        analyze_json(Api::ChatCompletions, body)
            .unwrap()
            .client_wants_usage
    };
    assert!(wants(
        json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}})
    ));
    assert!(!wants(
        json!({"model": "m", "stream": true, "stream_options": {"include_usage": false}})
    ));
    assert!(!wants(
        json!({"model": "m", "stream": true, "stream_options": null})
    ));
    assert!(!wants(
        json!({"model": "m", "stream": true, "stream_options": {}})
    ));
    // Without a stream the body carries usage anyway.
    assert!(wants(json!({"model": "m"})));
    assert!(wants(json!({"model": "m", "stream": false})));
    let cap = |body: Value| {
        analyze_json(Api::ChatCompletions, body)
            .unwrap()
            .max_output_tokens
    };
    assert_eq!(
        cap(json!({"model": "m", "max_tokens": 5, "max_completion_tokens": 7})),
        Some(7)
    );
    assert_eq!(cap(json!({"model": "m", "max_tokens": 5})), Some(5));
    assert_eq!(cap(json!({"model": "m", "max_tokens": null})), None);
}

#[test]
fn other_apis() {
    let responses = analyze_json(
        Api::Responses,
        json!({"model": "gpt-5", "input": "hi", "stream": true, "max_output_tokens": 9,
               "max_tokens": "ignored", "stream_options": 3}),
    )
    .unwrap();
    assert!(responses.stream && responses.client_wants_usage);
    assert_eq!(responses.max_output_tokens, Some(9));

    let messages = analyze_json(
        Api::Messages,
        json!({"model": "claude-sonnet-4-6", "max_tokens": 1024, "stream": true,
               "service_tier": "auto", "messages": []}),
    )
    .unwrap();
    assert_eq!(messages.max_output_tokens, Some(1024));
    assert_eq!(messages.service_tier.as_deref(), Some("auto"));
    assert!(messages.client_wants_usage);

    let embeddings = analyze_json(
        Api::Embeddings,
        json!({"model": "text-embedding-3-small", "input": "x", "stream": "?"}),
    )
    .unwrap();
    assert_eq!(embeddings.model, "text-embedding-3-small");
    assert!(!embeddings.stream);
}

#[test]
fn escaped_model_names_are_read() {
    let info = analyze(Api::Messages, br#"{"model":"claude\u002dx"}"#).unwrap();
    assert_eq!(info.model, "claude-x");
}

#[test]
fn errors_name_the_field() {
    let chat = Api::ChatCompletions;
    assert_eq!(
        error_of(chat, r#"{"messages":[]}"#),
        ("model".into(), "missing".into())
    );
    assert_eq!(
        error_of(chat, r#"{"model":null}"#),
        ("model".into(), "missing".into())
    );
    assert_eq!(
        error_of(chat, r#"{"model":""}"#),
        ("model".into(), "must not be empty".into())
    );
    assert_eq!(
        error_of(chat, r#"{"model":5}"#),
        ("model".into(), "must be a string".into())
    );
    assert_eq!(
        error_of(chat, r#"{"model":"m","max_tokens":-1}"#),
        ("max_tokens".into(), "must be a non-negative integer".into())
    );
    assert_eq!(
        error_of(chat, r#"{"model":"m","max_completion_tokens":1.5}"#),
        (
            "max_completion_tokens".into(),
            "must be a non-negative integer".into()
        )
    );
    assert_eq!(
        error_of(chat, r#"{"model":"m","stream":"yes"}"#),
        ("stream".into(), "must be true or false".into())
    );
    assert_eq!(
        error_of(
            chat,
            r#"{"model":"m","stream_options":{"include_usage":1}}"#
        ),
        (
            "stream_options.include_usage".into(),
            "must be true or false".into()
        )
    );
    assert_eq!(
        error_of(Api::Messages, r#"{"model":"m","max_tokens":"big"}"#),
        ("max_tokens".into(), "must be a non-negative integer".into())
    );
    assert_eq!(
        error_of(Api::Responses, r#"{"model":"m","max_output_tokens":-3}"#),
        (
            "max_output_tokens".into(),
            "must be a non-negative integer".into()
        )
    );
}

#[test]
fn bodies_that_are_not_json_objects() {
    let (field, reason) = error_of(Api::ChatCompletions, "{\"model\": ");
    assert_eq!(field, "(body)");
    assert!(reason.starts_with("not JSON: "), "{reason}");
    let (field, reason) = error_of(Api::ChatCompletions, r#"{"model":"m"} x"#);
    assert_eq!(field, "(body)");
    assert!(reason.starts_with("not JSON: "), "{reason}");
    assert_eq!(
        error_of(Api::ChatCompletions, r#"["m", true]"#),
        ("(body)".into(), "must be a JSON object".into())
    );
    let (field, reason) = error_of(Api::Messages, "");
    assert_eq!(field, "(body)");
    assert!(reason.starts_with("not JSON"));
    let (field, reason) = error_of(Api::Messages, r#"{"model":"a","model":"b"}"#);
    assert_eq!(field, "(body)");
    assert!(reason.contains("duplicate field"), "{reason}");
}

#[test]
fn bodies_with_bad_utf8_are_refused_even_where_serde_skips() {
    // Found by the `request` fuzz target: the bad byte sits in a field serde skips.
    let body = b"{\"model\":\"m\",\"instructions\":\"assist\xa0nt\",\"stream\":true}";
    for api in [
        Api::ChatCompletions,
        Api::Responses,
        Api::Embeddings,
        Api::Messages,
    ] {
        let error = analyze(api, body).unwrap_err();
        assert_eq!(error.field, "(body)");
        assert_eq!(error.reason, "not UTF-8: invalid byte at offset 35");
    }
    assert_eq!(with_stream_usage(body).unwrap_err().field, "(body)");
}

fn with_usage(body: &str) -> Value {
    let out = with_stream_usage(body.as_bytes()).unwrap();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn stream_usage_is_inserted_textually_when_absent() {
    let body = r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"{"}]}"#;
    let out = with_stream_usage(body.as_bytes()).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"stream_options":{"include_usage":true},"model":"m","stream":true,"messages":[{"role":"user","content":"{"}]}"#
    );
    let out = with_stream_usage(b"  {\n}\n").unwrap();
    assert_eq!(out, b"  {\"stream_options\":{\"include_usage\":true}\n}\n");
    assert_eq!(
        with_usage("{}"),
        json!({"stream_options": {"include_usage": true}})
    );
}

#[test]
fn stream_usage_keeps_other_stream_options() {
    assert_eq!(
        with_usage(r#"{"model":"m","stream_options":{"include_obfuscation":false}}"#),
        json!({"model": "m", "stream_options": {"include_obfuscation": false, "include_usage": true}})
    );
    assert_eq!(
        with_usage(r#"{"model":"m","stream_options":{"include_usage":false}}"#),
        json!({"model": "m", "stream_options": {"include_usage": true}})
    );
    assert_eq!(
        with_usage(r#"{"model":"m","stream_options":null}"#),
        json!({"model": "m", "stream_options": {"include_usage": true}})
    );
    // A nested `stream_options` is not the top-level one.
    assert_eq!(
        with_usage(r#"{"metadata":{"stream_options":1}}"#),
        json!({"stream_options": {"include_usage": true}, "metadata": {"stream_options": 1}})
    );
}

#[test]
fn stream_usage_errors() {
    for body in ["", "[1]", "{", r#"{"a":1}}"#, "null"] {
        let error = with_stream_usage(body.as_bytes()).unwrap_err();
        assert_eq!(error.field, "(body)", "{body}");
    }
}

proptest! {
    #[test]
    fn analysis_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        for api in [Api::ChatCompletions, Api::Responses, Api::Embeddings, Api::Messages] {
            let _ = analyze(api, &body);
        }
        let _ = with_stream_usage(&body);
    }

    #[test]
    fn analysis_of_json_like_text_never_panics(body in r#"[{}\[\]":, a-z0-9.\-]{0,64}"#) {
        for api in [Api::ChatCompletions, Api::Responses, Api::Embeddings, Api::Messages] {
            let _ = analyze(api, body.as_bytes());
        }
        if let Ok(out) = with_stream_usage(body.as_bytes()) {
            let value: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
            prop_assert_eq!(&value["stream_options"]["include_usage"], &Value::Bool(true));
        }
    }
}
