//! OTLP/JSON into the protobuf types. OTLP/JSON is protobuf's JSON mapping with three
//! differences (OTLP specification, "JSON Protobuf Encoding"): trace and span ids are hex, not
//! base64; enums are integers; keys are lowerCamelCase only.
//!
//! Written here rather than taken from `opentelemetry-proto`'s `with-serde` feature, which
//! rejects requests real senders make and the protobuf JSON mapping allows: enum names
//! (`"kind": "SPAN_KIND_CLIENT"`, as `protojson`-based tools write), `null` for a field
//! (`"parentSpanId": null`), a `KeyValue` without `key`, integral numbers written as
//! `12.0`, doubles as strings (`"NaN"`). It also buffers every attribute value through serde's
//! `flatten`, which is slow. Here, as the protobuf JSON mapping says: `null` means the
//! default; 64-bit integers may be numbers or strings; enums may be integers or names;
//! unknown fields are ignored; original snake_case field names are accepted as well (as the
//! OpenTelemetry Collector does), so a misnamed document is not silently read as empty.

use std::fmt;
use std::marker::PhantomData;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::WireError;

/// Parses an OTLP/JSON `ExportTraceServiceRequest`. Errors name the path of the bad field
/// (`resourceSpans[0].scopeSpans[0].spans[3].traceId`).
pub(crate) fn decode(body: &[u8]) -> Result<ExportTraceServiceRequest, WireError> {
    // serde reads a struct from an array too (`[[...]]`); a request is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(WireError::new(
            "(body)",
            "not OTLP/JSON: an ExportTraceServiceRequest is a JSON object",
        ));
    }
    match serde_json::from_slice::<Request>(body) {
        Ok(request) => Ok(request.into()),
        // Only failures pay for the path-tracking second parse.
        Err(error) => Err(describe(body, error)),
    }
}

fn describe(body: &[u8], first: serde_json::Error) -> WireError {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, Request>(&mut deserializer) {
        Ok(_) => WireError::new("(body)", format!("not OTLP/JSON: {first}")),
        Err(error) => {
            let path = error.path().to_string();
            let field = if path.is_empty() || path == "." || path == "?" {
                "(body)".to_owned()
            } else {
                path
            };
            WireError::new(field, format!("not OTLP/JSON: {}", error.into_inner()))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Request {
    #[serde(alias = "resource_spans", deserialize_with = "list")]
    resource_spans: Vec<JsonResourceSpans>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonResourceSpans {
    resource: Option<JsonResource>,
    #[serde(alias = "scope_spans", deserialize_with = "list")]
    scope_spans: Vec<JsonScopeSpans>,
    #[serde(alias = "schema_url", deserialize_with = "string")]
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonResource {
    #[serde(deserialize_with = "list")]
    attributes: Vec<Kv>,
    #[serde(alias = "dropped_attributes_count", deserialize_with = "uint32")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonScopeSpans {
    scope: Option<JsonScope>,
    #[serde(deserialize_with = "list")]
    spans: Vec<JsonSpan>,
    #[serde(alias = "schema_url", deserialize_with = "string")]
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonScope {
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(deserialize_with = "string")]
    version: String,
    #[serde(deserialize_with = "list")]
    attributes: Vec<Kv>,
    #[serde(alias = "dropped_attributes_count", deserialize_with = "uint32")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonSpan {
    #[serde(alias = "trace_id", deserialize_with = "hex_id")]
    trace_id: Vec<u8>,
    #[serde(alias = "span_id", deserialize_with = "hex_id")]
    span_id: Vec<u8>,
    #[serde(alias = "trace_state", deserialize_with = "string")]
    trace_state: String,
    #[serde(alias = "parent_span_id", deserialize_with = "hex_id")]
    parent_span_id: Vec<u8>,
    #[serde(deserialize_with = "uint32")]
    flags: u32,
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(deserialize_with = "span_kind")]
    kind: i32,
    #[serde(alias = "start_time_unix_nano", deserialize_with = "uint64")]
    start_time_unix_nano: u64,
    #[serde(alias = "end_time_unix_nano", deserialize_with = "uint64")]
    end_time_unix_nano: u64,
    #[serde(deserialize_with = "list")]
    attributes: Vec<Kv>,
    #[serde(alias = "dropped_attributes_count", deserialize_with = "uint32")]
    dropped_attributes_count: u32,
    #[serde(deserialize_with = "list")]
    events: Vec<JsonEvent>,
    #[serde(alias = "dropped_events_count", deserialize_with = "uint32")]
    dropped_events_count: u32,
    #[serde(deserialize_with = "list")]
    links: Vec<JsonLink>,
    #[serde(alias = "dropped_links_count", deserialize_with = "uint32")]
    dropped_links_count: u32,
    status: Option<JsonStatus>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonEvent {
    #[serde(alias = "time_unix_nano", deserialize_with = "uint64")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(deserialize_with = "list")]
    attributes: Vec<Kv>,
    #[serde(alias = "dropped_attributes_count", deserialize_with = "uint32")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JsonLink {
    #[serde(alias = "trace_id", deserialize_with = "hex_id")]
    trace_id: Vec<u8>,
    #[serde(alias = "span_id", deserialize_with = "hex_id")]
    span_id: Vec<u8>,
    #[serde(alias = "trace_state", deserialize_with = "string")]
    trace_state: String,
    #[serde(deserialize_with = "list")]
    attributes: Vec<Kv>,
    #[serde(alias = "dropped_attributes_count", deserialize_with = "uint32")]
    dropped_attributes_count: u32,
    #[serde(deserialize_with = "uint32")]
    flags: u32,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonStatus {
    #[serde(deserialize_with = "string")]
    message: String,
    #[serde(deserialize_with = "status_code")]
    code: i32,
}

impl From<Request> for ExportTraceServiceRequest {
    fn from(request: Request) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: convert(request.resource_spans),
        }
    }
}

impl From<JsonResourceSpans> for ResourceSpans {
    fn from(json: JsonResourceSpans) -> ResourceSpans {
        ResourceSpans {
            resource: json.resource.map(|resource| Resource {
                attributes: key_values(resource.attributes),
                dropped_attributes_count: resource.dropped_attributes_count,
                ..Resource::default()
            }),
            scope_spans: convert(json.scope_spans),
            schema_url: json.schema_url,
        }
    }
}

impl From<JsonScopeSpans> for ScopeSpans {
    fn from(json: JsonScopeSpans) -> ScopeSpans {
        ScopeSpans {
            scope: json.scope.map(|scope| InstrumentationScope {
                name: scope.name,
                version: scope.version,
                attributes: key_values(scope.attributes),
                dropped_attributes_count: scope.dropped_attributes_count,
            }),
            spans: convert(json.spans),
            schema_url: json.schema_url,
        }
    }
}

impl From<JsonSpan> for Span {
    fn from(json: JsonSpan) -> Span {
        Span {
            trace_id: json.trace_id,
            span_id: json.span_id,
            trace_state: json.trace_state,
            parent_span_id: json.parent_span_id,
            flags: json.flags,
            name: json.name,
            kind: json.kind,
            start_time_unix_nano: json.start_time_unix_nano,
            end_time_unix_nano: json.end_time_unix_nano,
            attributes: key_values(json.attributes),
            dropped_attributes_count: json.dropped_attributes_count,
            events: convert(json.events),
            dropped_events_count: json.dropped_events_count,
            links: convert(json.links),
            dropped_links_count: json.dropped_links_count,
            status: json.status.map(|status| Status {
                message: status.message,
                code: status.code,
            }),
        }
    }
}

impl From<JsonEvent> for Event {
    fn from(json: JsonEvent) -> Event {
        Event {
            time_unix_nano: json.time_unix_nano,
            name: json.name,
            attributes: key_values(json.attributes),
            dropped_attributes_count: json.dropped_attributes_count,
        }
    }
}

impl From<JsonLink> for Link {
    fn from(json: JsonLink) -> Link {
        Link {
            trace_id: json.trace_id,
            span_id: json.span_id,
            trace_state: json.trace_state,
            attributes: key_values(json.attributes),
            dropped_attributes_count: json.dropped_attributes_count,
            flags: json.flags,
        }
    }
}

fn convert<A, B: From<A>>(items: Vec<A>) -> Vec<B> {
    items.into_iter().map(B::from).collect()
}

fn key_values(items: Vec<Kv>) -> Vec<KeyValue> {
    items.into_iter().map(|kv| kv.0).collect()
}

/// A `KeyValue`; a missing or `null` key is the empty string, a missing value `None`.
struct Kv(KeyValue);

impl<'de> Deserialize<'de> for Kv {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Kv, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "camelCase")]
        enum Field {
            Key,
            Value,
            #[serde(other)]
            Other,
        }
        struct KvVisitor;
        impl<'de> Visitor<'de> for KvVisitor {
            type Value = Kv;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attribute {\"key\": ..., \"value\": {...}}")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Kv, M::Error> {
                let mut kv = KeyValue::default();
                while let Some(key) = map.next_key::<Field>()? {
                    match key {
                        Field::Key => {
                            kv.key = map.next_value::<Option<String>>()?.unwrap_or_default()
                        }
                        Field::Value => kv.value = map.next_value::<Option<Any>>()?.map(|a| a.0),
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Kv(kv))
            }
        }
        deserializer.deserialize_map(KvVisitor)
    }
}

/// An `AnyValue`: an object with at most one of `stringValue`, `boolValue`, `intValue`,
/// `doubleValue`, `arrayValue`, `kvlistValue`, `bytesValue` (the last one wins); `{}` is
/// the empty value.
struct Any(AnyValue);

impl<'de> Deserialize<'de> for Any {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Any, D::Error> {
        deserializer.deserialize_map(AnyVisitor)
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum AnyKey {
    #[serde(alias = "string_value")]
    StringValue,
    #[serde(alias = "bool_value")]
    BoolValue,
    #[serde(alias = "int_value")]
    IntValue,
    #[serde(alias = "double_value")]
    DoubleValue,
    #[serde(alias = "array_value")]
    ArrayValue,
    #[serde(alias = "kvlist_value")]
    KvlistValue,
    #[serde(alias = "bytes_value")]
    BytesValue,
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonArray {
    #[serde(deserialize_with = "list")]
    values: Vec<Any>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonKvlist {
    #[serde(deserialize_with = "list")]
    values: Vec<Kv>,
}

struct AnyVisitor;

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = Any;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an attribute value such as {\"stringValue\": \"...\"}")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Any, M::Error> {
        use any_value::Value;
        let mut value = None;
        while let Some(key) = map.next_key::<AnyKey>()? {
            let next = match key {
                AnyKey::StringValue => map.next_value::<Option<String>>()?.map(Value::StringValue),
                AnyKey::BoolValue => map.next_value::<Option<bool>>()?.map(Value::BoolValue),
                AnyKey::IntValue => map
                    .next_value::<Option<Int<i64>>>()?
                    .map(|n| Value::IntValue(n.0)),
                AnyKey::DoubleValue => map
                    .next_value::<Option<Double>>()?
                    .map(|n| Value::DoubleValue(n.0)),
                AnyKey::ArrayValue => map.next_value::<Option<JsonArray>>()?.map(|array| {
                    Value::ArrayValue(ArrayValue {
                        values: array.values.into_iter().map(|a| a.0).collect(),
                    })
                }),
                AnyKey::KvlistValue => map.next_value::<Option<JsonKvlist>>()?.map(|list| {
                    Value::KvlistValue(KeyValueList {
                        values: key_values(list.values),
                    })
                }),
                AnyKey::BytesValue => map
                    .next_value::<Option<Bytes>>()?
                    .map(|b| Value::BytesValue(b.0)),
                AnyKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                    None
                }
            };
            if next.is_some() {
                value = next;
            }
        }
        Ok(Any(AnyValue { value }))
    }
}

/// A list; `null` is the empty list.
fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// A string; `null` is the empty string.
fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

fn uint64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Ok(Option::<Int<u64>>::deserialize(deserializer)?.map_or(0, |n| n.0))
}

fn uint32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    Ok(Option::<Int<u32>>::deserialize(deserializer)?.map_or(0, |n| n.0))
}

fn span_kind<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    let name = |text: &str| SpanKind::from_str_name(text).map(|kind| kind as i32);
    Ok(deserializer
        .deserialize_any(EnumVisitor(name, "a span kind"))?
        .unwrap_or(0))
}

fn status_code<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    let name = |text: &str| StatusCode::from_str_name(text).map(|code| code as i32);
    Ok(deserializer
        .deserialize_any(EnumVisitor(name, "a status code"))?
        .unwrap_or(0))
}

/// An enum: its number, or its name in the `.proto` (`SPAN_KIND_CLIENT`); `null` → `None`.
struct EnumVisitor(fn(&str) -> Option<i32>, &'static str);

impl Visitor<'_> for EnumVisitor {
    type Value = Option<i32>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (an integer or its name)", self.1)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Option<i32>, E> {
        i32::try_from(value)
            .map(Some)
            .map_err(|_| E::custom(format!("{value} is not {}", self.1)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Option<i32>, E> {
        i32::try_from(value)
            .map(Some)
            .map_err(|_| E::custom(format!("{value} is not {}", self.1)))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Option<i32>, E> {
        match (self.0)(value) {
            Some(number) => Ok(Some(number)),
            None => value
                .parse::<i32>()
                .map(Some)
                .map_err(|_| E::custom(format!("\"{value}\" is not {}", self.1))),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<i32>, E> {
        Ok(None)
    }
}

/// An integer written as a JSON number (integral floats such as `12.0` included) or as a
/// decimal string, as the protobuf JSON mapping allows for 64-bit integers.
struct Int<T>(T);

impl<'de, T: TryFrom<i128>> Deserialize<'de> for Int<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Int<T>, D::Error> {
        let wide = deserializer.deserialize_any(IntVisitor)?;
        T::try_from(wide)
            .map(Int)
            .map_err(|_| de::Error::custom(format!("{wide} is out of range")))
    }
}

struct IntVisitor;

impl Visitor<'_> for IntVisitor {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer (a number or a decimal string)")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<i128, E> {
        Ok(value.into())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<i128, E> {
        Ok(value.into())
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<i128, E> {
        // Integral and within ±2^63: exact enough to convert (larger values are rejected).
        if value.fract() == 0.0 && value.abs() < 9.2e18 {
            Ok(value as i128)
        } else {
            Err(E::custom(format!("{value} is not an integer")))
        }
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<i128, E> {
        value
            .parse::<i128>()
            .map_err(|_| E::custom(format!("\"{value}\" is not an integer")))
    }
}

/// A double: a JSON number, or a string holding a number, `NaN`, `Infinity` or `-Infinity`.
struct Double(f64);

impl<'de> Deserialize<'de> for Double {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Double, D::Error> {
        struct DoubleVisitor;
        impl Visitor<'_> for DoubleVisitor {
            type Value = f64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<f64, E> {
                Ok(value)
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<f64, E> {
                Ok(value as f64)
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<f64, E> {
                Ok(value as f64)
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<f64, E> {
                match value {
                    "NaN" => Ok(f64::NAN),
                    "Infinity" => Ok(f64::INFINITY),
                    "-Infinity" => Ok(f64::NEG_INFINITY),
                    _ => value
                        .parse()
                        .map_err(|_| E::custom(format!("\"{value}\" is not a number"))),
                }
            }
        }
        deserializer.deserialize_any(DoubleVisitor).map(Double)
    }
}

/// Bytes as base64 (standard or URL-safe alphabet, padding optional).
struct Bytes(Vec<u8>);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        deserializer
            .deserialize_str(TextVisitor(base64, "base64 bytes", PhantomData))
            .map(Bytes)
    }
}

/// A trace or span id: hex (either case); `null` or `""` is empty.
fn hex_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    Ok(deserializer
        .deserialize_option(OptionText(TextVisitor(hex, "a hex id", PhantomData)))?
        .unwrap_or_default())
}

/// Reads a string through a decoding function.
struct TextVisitor<T>(fn(&str) -> Result<T, String>, &'static str, PhantomData<T>);

impl<T> Visitor<'_> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
        (self.0)(value).map_err(E::custom)
    }
}

/// [`TextVisitor`] that also accepts `null`.
struct OptionText<T>(TextVisitor<T>);

impl<'de, T> Visitor<'de> for OptionText<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        deserializer.deserialize_str(self.0).map(Some)
    }
}

fn hex(text: &str) -> Result<Vec<u8>, String> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let bytes = text.as_bytes();
    let bad = || {
        format!(
            "\"{}\" is not hex (OTLP/JSON writes trace and span ids in hex, not base64)",
            text.chars().take(40).collect::<String>()
        )
    };
    if !bytes.len().is_multiple_of(2) {
        return Err(bad());
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)
}

fn base64(text: &str) -> Result<Vec<u8>, String> {
    let sextet = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let trimmed = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &c in trimmed.as_bytes() {
        let value = sextet(c).ok_or_else(|| "not base64".to_owned())?;
        buffer = ((buffer << 6) | u32::from(value)) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Ok(out)
}
