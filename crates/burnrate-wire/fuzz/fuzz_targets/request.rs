//! Any bytes as a request body: never a panic, and `with_stream_usage` either fails or gives
//! JSON whose `stream_options.include_usage` is true.
#![no_main]

use burnrate_wire::Api;
use burnrate_wire::request::{analyze, with_stream_usage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    for api in [
        Api::ChatCompletions,
        Api::Responses,
        Api::Embeddings,
        Api::Messages,
    ] {
        let _ = analyze(api, body);
    }
    if let Ok(out) = with_stream_usage(body) {
        let value: serde_json::Value = serde_json::from_slice(&out).expect("output is JSON");
        assert_eq!(
            value["stream_options"]["include_usage"],
            serde_json::Value::Bool(true)
        );
        assert!(
            analyze(Api::ChatCompletions, body).is_err()
                || analyze(Api::ChatCompletions, &out).is_ok()
        );
    }
});
