use burnrate_model::Usage;
use serde_json::json;

use super::*;
use crate::tools::args_hash;

fn chat(body: serde_json::Value) -> Result<crate::Metered, WireError> {
    meter_chat(body.to_string().as_bytes())
}

#[test]
fn chat_usage_is_taken_as_given() {
    let metered = chat(json!({
        "model": "gpt-5.6-sol", "service_tier": "default",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK"}}],
        "usage": {"prompt_tokens": 4020, "completion_tokens": 40,
                  "prompt_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 4012},
                  "completion_tokens_details": {"reasoning_tokens": 30}}
    }))
    .unwrap();
    assert_eq!(
        metered.usage,
        Usage {
            input_tokens: 4020,
            cache_read_tokens: 8,
            cache_write_tokens: 4012,
            cache_write_1h_tokens: 0,
            output_tokens: 40,
            reasoning_tokens: 30,
        }
    );
    assert!(metered.usage_seen);
    assert_eq!(metered.model.as_deref(), Some("gpt-5.6-sol"));
    assert_eq!(metered.service_tier.as_deref(), Some("default"));
    assert_eq!(metered.tool_calls, 0);
}

#[test]
fn chat_without_usage_or_details() {
    let metered = chat(json!({"model": "m", "choices": []})).unwrap();
    assert!(!metered.usage_seen);
    assert_eq!(metered.usage, Usage::default());
    let metered = chat(json!({"usage": {"prompt_tokens": 3, "completion_tokens": 1,
        "prompt_tokens_details": null, "completion_tokens_details": {"reasoning_tokens": null}}}))
    .unwrap();
    assert_eq!(metered.usage.input_tokens, 3);
    assert_eq!(metered.usage.output_tokens, 1);
    assert_eq!(metered.model, None);
}

#[test]
fn chat_parts_larger_than_wholes_are_fitted() {
    let metered = chat(
        json!({"usage": {"prompt_tokens": 10, "completion_tokens": 1,
        "prompt_tokens_details": {"cached_tokens": 12},
        "completion_tokens_details": {"reasoning_tokens": 5}}}),
    )
    .unwrap();
    assert_eq!(metered.usage.input_tokens, 12);
    assert_eq!(metered.usage.output_tokens, 5);
    assert!(metered.usage.validate().is_ok());
}

#[test]
fn chat_tool_calls_of_every_shape() {
    let metered = chat(json!({"choices": [
        {"index": 0, "message": {"tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"b\": 1, \"a\": 2}"}},
            {"id": "b", "type": "custom", "custom": {"name": "shell", "input": "ls -la"}},
            {"id": "c", "type": "function", "function": {"name": "obj", "arguments": {"x": 1}}}
        ]}},
        {"index": 1, "message": {"function_call": {"name": "legacy", "arguments": "{}"}}}
    ]}))
    .unwrap();
    assert_eq!(metered.tool_calls, 4);
    let names: Vec<&str> = metered.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["get_weather", "shell", "obj", "legacy"]);
    assert_eq!(
        metered.tools[0].args_hash,
        Some(args_hash(r#"{"a":2,"b":1}"#))
    );
    assert_eq!(metered.tools[1].args_hash, Some(args_hash("ls -la")));
    assert_eq!(metered.tools[2].args_hash, Some(args_hash(r#"{"x":1}"#)));
}

#[test]
fn chat_errors_name_the_field() {
    let error = chat(json!({"usage": {"prompt_tokens": -1}})).unwrap_err();
    assert_eq!(error.field, "usage.prompt_tokens");
    let error =
        chat(json!({"usage": {"prompt_tokens_details": {"cached_tokens": "1"}}})).unwrap_err();
    assert_eq!(error.field, "usage.prompt_tokens_details.cached_tokens");
    assert!(!error.reason.contains(" at line "), "{}", error.reason);
    let error = chat(json!({"choices": [{"message": {"tool_calls": 5}}]})).unwrap_err();
    assert_eq!(error.field, "choices[0].message.tool_calls");
    let error = meter_chat(b"{\"usage\": {").unwrap_err();
    assert_eq!(error.field, "(body)");
    assert!(error.reason.starts_with("not JSON"));
    let error = meter_chat(b"[]").unwrap_err();
    assert_eq!(
        (error.field.as_str(), error.reason.as_str()),
        ("(body)", "must be a JSON object")
    );
}

#[test]
fn odd_tool_fields_do_not_fail_metering() {
    let metered = chat(json!({
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        "choices": [{"message": {"tool_calls": [{"id": 1, "function": {"name": 7, "arguments": null}}]}}]
    }))
    .unwrap();
    assert_eq!(metered.tool_calls, 1);
    assert_eq!(metered.tools[0].name, crate::tools::UNNAMED_TOOL);
    assert_eq!(metered.usage.input_tokens, 1);
}

#[test]
fn responses_usage_and_calls() {
    let body = json!({
        "model": "gpt-5", "service_tier": "flex",
        "output": [
            {"type": "reasoning", "summary": []},
            {"type": "web_search_call", "action": {"query": "x"}},
            {"type": "code_interpreter_call", "code": "print(1)"},
            {"type": "function_call", "name": "final_result", "arguments": "{\"result\":6666}"},
            {"type": "custom_tool_call", "name": "apply", "input": "diff"},
            {"type": "message", "content": [{"type": "output_text", "text": "hi"}]}
        ],
        "usage": {"input_tokens": 53, "input_tokens_details": {"cached_tokens": 20},
                  "output_tokens": 469, "output_tokens_details": {"reasoning_tokens": 448}}
    });
    let metered = meter_responses(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        metered.usage,
        Usage {
            input_tokens: 53,
            cache_read_tokens: 20,
            output_tokens: 469,
            reasoning_tokens: 448,
            ..Usage::default()
        }
    );
    assert_eq!(metered.tool_calls, 2);
    assert_eq!(metered.tools[0].name, "final_result");
    assert_eq!(
        metered.tools[0].args_hash,
        Some(args_hash(r#"{ "result": 6666 }"#))
    );
    assert_eq!(metered.tools[1].args_hash, Some(args_hash("diff")));
    assert_eq!(metered.service_tier.as_deref(), Some("flex"));
}

#[test]
fn responses_errors_name_the_field() {
    let error = meter_responses(br#"{"usage":{"output_tokens_details":{"reasoning_tokens":1.5}}}"#)
        .unwrap_err();
    assert_eq!(error.field, "usage.output_tokens_details.reasoning_tokens");
}

#[test]
fn embeddings_usage() {
    let metered =
        meter_embeddings(br#"{"object":"list","data":[{"embedding":"AAAA"}],"model":"text-embedding-3-small","usage":{"prompt_tokens":4,"total_tokens":4}}"#)
            .unwrap();
    assert_eq!(metered.usage.input_tokens, 4);
    assert_eq!(metered.model.as_deref(), Some("text-embedding-3-small"));
    let only_total = meter_embeddings(br#"{"usage":{"total_tokens":9}}"#).unwrap();
    assert_eq!(only_total.usage.input_tokens, 9);
    assert!(meter_embeddings(br#"{"usage":{"prompt_tokens":"4"}}"#).is_err());
    // A count past the plausible is cut to the largest, like every route's.
    let past = meter_embeddings(br#"{"usage":{"prompt_tokens":18446744073709551615}}"#).unwrap();
    assert_eq!(past.usage.input_tokens, Usage::MAX_TOKENS);
    assert!(past.usage.validate().is_ok());
}

#[test]
fn upstream_errors_read_leniently() {
    let error: ErrorObject<'_> =
        serde_json::from_str(r#"{"message":"Rate limit","type":"rate_limit_error","code":429}"#)
            .unwrap();
    assert_eq!(
        error.to_wire().to_string(),
        "(upstream): rate_limit_error: Rate limit"
    );
    let error: ErrorObject<'_> = serde_json::from_str(r#"{"code":"server_error"}"#).unwrap();
    assert_eq!(
        error.to_wire().to_string(),
        "(upstream): server_error: (no message)"
    );
}
