//! Every recorded provider response in `fixtures/recordings` metered, and checked
//! against the numbers of its `INDEX.tsv` row: JSON bodies through `meter_json`, SSE bodies
//! through `StreamMeter` whole and cut into chunks of many sizes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is a test failure"
)]

use std::path::PathBuf;

use burnrate_model::Usage;
use burnrate_wire::request::{analyze, with_stream_usage};
use burnrate_wire::tools::args_hash;
use burnrate_wire::{Api, Metered, StreamMeter, meter_json};
use bytes::Bytes;
use proptest::prelude::*;

const RECORDINGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/recordings");

/// One row of INDEX.tsv.
#[derive(Debug)]
struct Row {
    name: String,
    provider: String,
    api: Api,
    streaming: bool,
    model: String,
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: u64,
    cache_write_1h: u64,
    reasoning: u64,
}

fn path(file: &str) -> PathBuf {
    PathBuf::from(RECORDINGS).join(file)
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(path(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn rows() -> Vec<Row> {
    let index = String::from_utf8(read("INDEX.tsv")).unwrap();
    let mut lines = index.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let number = |cells: &[&str], name: &str| -> u64 {
        let cell = cells[column(name)];
        if cell.is_empty() {
            0
        } else {
            cell.parse().unwrap()
        }
    };
    let rows: Vec<Row> = lines
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            let api = match cells[column("api")] {
                "chat_completions" => Api::ChatCompletions,
                "responses" => Api::Responses,
                "embeddings" => Api::Embeddings,
                "messages" => Api::Messages,
                other => panic!("unknown api {other}"),
            };
            Row {
                name: cells[column("name")].to_owned(),
                provider: cells[column("provider")].to_owned(),
                api,
                streaming: cells[column("streaming")] == "yes",
                model: cells[column("model")].to_owned(),
                input: number(&cells, "input_tokens"),
                output: number(&cells, "output_tokens"),
                cache_read: number(&cells, "cached_read_tokens"),
                cache_write: number(&cells, "cache_write_tokens"),
                cache_write_1h: number(&cells, "cache_write_1h_tokens"),
                reasoning: number(&cells, "reasoning_tokens"),
            }
        })
        .collect();
    assert_eq!(rows.len(), 23, "INDEX.tsv rows");
    rows
}

/// The tool calls each recording asks for, counted by hand from the files (provider-run tools
/// such as web search and code interpreter are not client tool calls).
fn expected_tools(name: &str) -> &'static [&'static str] {
    match name {
        "openai_chat_tool_calls_cached_gpt41"
        | "openai_responses_function_call_cached_gpt41"
        | "anthropic_tool_use_cache_read_sonnet45"
        | "anthropic_tool_use_sonnet45" => &["get_weather"],
        "openai_chat_reasoning_tool_call_o3mini" => &["comapny_customer_data"],
        "openai_chat_parallel_tool_calls_reasoning_gpt5nano" => &[
            "parallel_local_search_one",
            "parallel_local_search_two",
            "parallel_local_search_three",
        ],
        "openai_responses_stream_reasoning_gpt5" => &["final_result"],
        "anthropic_cache_write_5m_tool_use_sonnet45" => &["lookup_refund_policy"],
        _ => &[],
    }
}

/// The row's numbers by the event's rule (Anthropic's input excludes cache reads and writes).
fn expected_usage(row: &Row) -> Usage {
    let input = if row.provider == "anthropic" {
        row.input + row.cache_read + row.cache_write
    } else {
        row.input
    };
    Usage {
        input_tokens: input,
        cache_read_tokens: row.cache_read,
        cache_write_tokens: row.cache_write,
        cache_write_1h_tokens: row.cache_write_1h,
        output_tokens: row.output,
        reasoning_tokens: row.reasoning,
    }
}

/// Feeds `body` in chunks cut at `cuts` (sorted offsets); returns the meter and the output.
fn stream(api: Api, strip: bool, body: &[u8], cuts: &[usize]) -> (StreamMeter, Vec<u8>) {
    let mut meter = StreamMeter::new(api, strip);
    let mut out = Vec::new();
    let mut last = 0;
    for &cut in cuts.iter().chain([&body.len()]) {
        let cut = cut.clamp(last, body.len());
        out.extend_from_slice(&meter.feed(Bytes::copy_from_slice(&body[last..cut])));
        last = cut;
    }
    out.extend_from_slice(&meter.flush());
    (meter, out)
}

fn every(size: usize, len: usize) -> Vec<usize> {
    (size..len).step_by(size).collect()
}

fn meter_row(row: &Row) -> Metered {
    if !row.streaming {
        let body = read(&format!("{}.response.json", row.name));
        return meter_json(row.api, &body).unwrap_or_else(|e| panic!("{}: {e}", row.name));
    }
    let body = read(&format!("{}.response.sse", row.name));
    let (whole, out) = stream(row.api, false, &body, &[]);
    assert_eq!(out, body, "{}: bytes changed", row.name);
    assert!(whole.is_complete(), "{}: not complete", row.name);
    assert_eq!(whole.error(), None, "{}", row.name);
    for size in [1, 2, 3, 5, 7, 16, 64, 100, 1000, 4096] {
        let (meter, out) = stream(row.api, false, &body, &every(size, body.len()));
        assert_eq!(
            out, body,
            "{}: bytes changed with chunks of {size}",
            row.name
        );
        assert!(meter.is_complete(), "{}: chunks of {size}", row.name);
        assert_eq!(meter.error(), None, "{}: chunks of {size}", row.name);
        assert_eq!(
            meter.metered(),
            whole.metered(),
            "{}: chunks of {size}",
            row.name
        );
    }
    whole.metered()
}

#[test]
fn every_recording_meters_to_its_index_row() {
    for row in rows() {
        let metered = meter_row(&row);
        assert_eq!(metered.usage, expected_usage(&row), "{}", row.name);
        assert!(metered.usage_seen, "{}", row.name);
        assert!(metered.usage.validate().is_ok(), "{}", row.name);
        assert_eq!(
            metered.model.as_deref(),
            Some(row.model.as_str()),
            "{}",
            row.name
        );
        let names: Vec<&str> = metered.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, expected_tools(&row.name), "{}", row.name);
        assert_eq!(metered.tool_calls as usize, names.len(), "{}", row.name);
        for tool in &metered.tools {
            let hash = tool.args_hash.as_deref().unwrap_or_default();
            assert!(hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
}

#[test]
fn every_request_is_analysed() {
    for row in rows() {
        let body = read(&format!("{}.request.json", row.name));
        let info = analyze(row.api, &body).unwrap_or_else(|e| panic!("{}: {e}", row.name));
        assert_eq!(info.stream, row.streaming, "{}", row.name);
        assert!(!info.model.is_empty());
        assert!(info.client_wants_usage, "{}", row.name);
        if row.api == Api::Messages {
            assert!(info.max_output_tokens.is_some(), "{}", row.name);
        }
    }
    let body = read("openai_responses_stream_reasoning_gpt5.request.json");
    let info = analyze(Api::Responses, &body).unwrap();
    assert_eq!(info.service_tier.as_deref(), Some("flex"));
}

#[test]
fn service_tiers_and_hashes_across_providers() {
    let metered = |name: &str| {
        let row = rows().into_iter().find(|r| r.name == name).unwrap();
        meter_row(&row)
    };
    let chat = metered("openai_chat_tool_calls_cached_gpt41");
    let messages = metered("anthropic_tool_use_cache_read_sonnet45");
    let responses = metered("openai_responses_function_call_cached_gpt41");
    // The same call, get_weather(location=Paris), hashes the same from every provider.
    assert_eq!(chat.tools, messages.tools);
    assert_eq!(chat.tools, responses.tools);
    assert_eq!(
        chat.tools[0].args_hash,
        Some(args_hash(r#"{"location": "Paris"}"#))
    );
    assert_eq!(chat.service_tier.as_deref(), Some("default"));
    assert_eq!(messages.service_tier.as_deref(), Some("standard"));
    let streamed = metered("openai_responses_stream_reasoning_gpt5");
    assert_eq!(streamed.service_tier.as_deref(), Some("flex"));
    assert_eq!(
        streamed.tools[0].args_hash,
        Some(args_hash(r#"{"result":6666}"#))
    );
    let web = metered("openai_responses_stream_reasoning_cached_websearch_gpt5");
    assert_eq!(web.service_tier.as_deref(), Some("default"));
}

const CHAT_STREAM: &str = "openai_chat_stream_include_usage_cached_gpt41.response.sse";

/// The recording as a client that did not ask for usage would have got it.
fn without_usage(body: &str) -> String {
    body.split_inclusive("\n\n")
        .filter(|event| !event.contains("\"choices\":[]"))
        .map(|event| event.replace("\"usage\":null,", ""))
        .collect()
}

#[test]
fn strip_usage_gives_the_stream_without_usage() {
    let body = read(CHAT_STREAM);
    let text = String::from_utf8(body.clone()).unwrap();
    let expected = without_usage(&text);
    assert_eq!(text.matches("\"usage\":null,").count(), 5);
    assert!(expected.len() < text.len() && !expected.contains("\"usage\""));
    for size in [1, 2, 3, 7, 64, 333, body.len()] {
        let (meter, out) = stream(Api::ChatCompletions, true, &body, &every(size, body.len()));
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, expected, "chunks of {size}");
        let metered = meter.metered();
        assert_eq!(metered.usage.input_tokens, 1144);
        assert_eq!(metered.usage.cache_read_tokens, 1024);
        assert!(meter.is_complete() && meter.error().is_none());
    }
    let mut data_lines = 0;
    for line in expected.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if line != "[DONE]" {
            let chunk: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(chunk.get("usage").is_none());
            assert!(!chunk["choices"].as_array().unwrap().is_empty());
            data_lines += 1;
        }
    }
    assert_eq!(data_lines, 5);
    assert!(expected.ends_with("data: [DONE]\n\n"));
}

#[test]
fn stream_usage_request_round_trip() {
    let body = read("openai_chat_stream_include_usage_cached_gpt41.request.json");
    let mut request: serde_json::Value = serde_json::from_slice(&body).unwrap();
    request.as_object_mut().unwrap().remove("stream_options");
    let plain = serde_json::to_vec(&request).unwrap();
    let info = analyze(Api::ChatCompletions, &plain).unwrap();
    assert!(info.stream && !info.client_wants_usage);
    let asked = with_stream_usage(&plain).unwrap();
    assert_eq!(
        asked.len(),
        plain.len() + r#""stream_options":{"include_usage":true},"#.len()
    );
    assert!(
        analyze(Api::ChatCompletions, &asked)
            .unwrap()
            .client_wants_usage
    );
}

fn sse_rows() -> Vec<(Api, Vec<u8>)> {
    rows()
        .into_iter()
        .filter(|row| row.streaming)
        .map(|row| (row.api, read(&format!("{}.response.sse", row.name))))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_chunkings_give_the_same_meter_and_bytes(
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        strip in any::<bool>(),
    ) {
        for (api, body) in sse_rows() {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
            points.sort_unstable();
            let (whole, whole_out) = stream(api, strip, &body, &[]);
            let (meter, out) = stream(api, strip, &body, &points);
            prop_assert_eq!(meter.metered(), whole.metered());
            prop_assert_eq!(meter.is_complete(), whole.is_complete());
            prop_assert_eq!(&out, &whole_out);
            if !strip || api != Api::ChatCompletions {
                prop_assert_eq!(&out, &body);
            }
        }
    }

    #[test]
    fn damaged_recordings_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        size in 1usize..200,
    ) {
        for (api, mut body) in sse_rows() {
            for (at, byte) in &flips {
                let at = at.index(body.len());
                body[at] = *byte;
            }
            let (meter, _) = stream(api, true, &body, &every(size, body.len()));
            prop_assert!(meter.metered().usage.validate().is_ok());
        }
        for row in rows().into_iter().filter(|r| !r.streaming) {
            let mut body = read(&format!("{}.response.json", row.name));
            for (at, byte) in &flips {
                let at = at.index(body.len());
                body[at] = *byte;
            }
            if let Ok(metered) = meter_json(row.api, &body) {
                prop_assert!(metered.usage.validate().is_ok());
            }
        }
    }
}
