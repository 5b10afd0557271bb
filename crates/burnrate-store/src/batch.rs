//! Events as Arrow record batches, column for column as the `events` table stores them.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, FixedSizeBinaryBuilder, Int64Builder, ListBuilder, StringBuilder,
    StructBuilder, TimestampMicrosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use burnrate_model::UsageEvent;

/// The `events` table: column name, SQL type, Arrow type. One list, so the table, the batches
/// and the queries cannot drift apart.
pub const EVENT_COLUMNS: &[(&str, &str)] = &[
    ("id", "UUID NOT NULL"),
    ("ts", "TIMESTAMP NOT NULL"),
    ("duration_ms", "BIGINT"),
    ("source", "VARCHAR"),
    ("provider", "VARCHAR NOT NULL"),
    ("model", "VARCHAR NOT NULL"),
    ("requested_model", "VARCHAR"),
    ("operation", "VARCHAR"),
    ("service_tier", "VARCHAR"),
    ("tenant_id", "VARCHAR"),
    ("user_id", "VARCHAR"),
    ("feature", "VARCHAR"),
    ("task_id", "VARCHAR"),
    ("route", "VARCHAR"),
    ("agent_run_id", "VARCHAR"),
    ("parent_run_id", "VARCHAR"),
    ("agent_name", "VARCHAR"),
    ("span_depth", "UINTEGER"),
    ("session_id", "VARCHAR"),
    ("deployment", "VARCHAR"),
    ("prompt_version", "VARCHAR"),
    ("effort", "VARCHAR"),
    ("labels", "VARCHAR"),
    ("input_tokens", "BIGINT NOT NULL"),
    ("cache_read_tokens", "BIGINT NOT NULL"),
    ("cache_write_tokens", "BIGINT NOT NULL"),
    ("cache_write_1h_tokens", "BIGINT NOT NULL"),
    ("output_tokens", "BIGINT NOT NULL"),
    ("reasoning_tokens", "BIGINT NOT NULL"),
    ("layer_prompt", "BIGINT"),
    ("layer_tool", "BIGINT"),
    ("layer_memory", "BIGINT"),
    ("tool_calls", "UINTEGER NOT NULL"),
    ("tools", "STRUCT(name VARCHAR, args_hash UBIGINT)[]"),
    ("status", "VARCHAR NOT NULL"),
    ("error", "VARCHAR"),
    ("outcome_name", "VARCHAR"),
    ("outcome_success", "BOOLEAN"),
];

/// The Arrow schema of [`EVENT_COLUMNS`].
pub fn event_schema() -> SchemaRef {
    let fields: Vec<Field> = EVENT_COLUMNS
        .iter()
        .map(|(name, sql)| {
            let nullable = !sql.ends_with("NOT NULL");
            let data_type = match sql.split(' ').next().unwrap_or_default() {
                "UUID" => DataType::FixedSizeBinary(16),
                "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, None),
                "BIGINT" => DataType::Int64,
                "UINTEGER" => DataType::UInt32,
                "BOOLEAN" => DataType::Boolean,
                _ => DataType::Utf8,
            };
            if *name == "id" {
                uuid_field(name)
            } else if *name == "tools" {
                Field::new(*name, tools_type(), true)
            } else {
                Field::new(*name, data_type, nullable)
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// A non-null UUID column: DuckDB's appender maps FixedSizeBinary(16) tagged `arrow.uuid`
/// to UUID.
pub fn uuid_field(name: &str) -> Field {
    Field::new(name, DataType::FixedSizeBinary(16), false).with_metadata(HashMap::from([(
        "ARROW:extension:name".to_owned(),
        "arrow.uuid".to_owned(),
    )]))
}

fn tool_fields() -> Fields {
    Fields::from(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("args_hash", DataType::UInt64, true),
    ])
}

/// `tools` as Arrow: a list of (name, 64-bit argument hash) structs.
fn tools_type() -> DataType {
    DataType::List(Arc::new(Field::new_struct("item", tool_fields(), true)))
}

/// The ledger keeps 64 bits of each argument hash: a hash written as up to 16 hex digits is
/// stored as its value (and prints back the same); any other text is hashed to 64 bits, which
/// keeps equal hashes equal, all that loop detection needs.
pub fn args_hash_u64(text: &str) -> u64 {
    if (1..=16).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        u64::from_str_radix(text, 16).unwrap_or_default()
    } else {
        xxhash_rust::xxh3::xxh3_64(text.as_bytes())
    }
}

fn tokens(count: u64) -> i64 {
    // Validation caps counts far below i64::MAX.
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn text_builder(rows: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, rows * 12)
}

/// The text columns from `source` to `agent_name`, in [`EVENT_COLUMNS`] order.
pub(crate) fn texts_before_depth(event: &UsageEvent) -> [Option<&str>; 14] {
    [
        event.source.as_deref(),
        Some(event.provider.as_str()),
        Some(event.model.as_str()),
        event.requested_model.as_deref(),
        event.operation.as_deref(),
        event.service_tier.as_deref(),
        event.tenant_id.as_deref(),
        event.user_id.as_deref(),
        event.feature.as_deref(),
        event.task_id.as_deref(),
        event.route.as_deref(),
        event.agent_run_id.as_deref(),
        event.parent_run_id.as_deref(),
        event.agent_name.as_deref(),
    ]
}

/// One Arrow builder per column of [`EVENT_COLUMNS`], in the same order.
struct EventColumns {
    id: FixedSizeBinaryBuilder,
    ts: TimestampMicrosecondBuilder,
    duration_ms: Int64Builder,
    /// source .. agent_name (14 columns).
    texts_before_depth: Vec<StringBuilder>,
    span_depth: UInt32Builder,
    /// session_id .. labels (5 columns).
    texts_after_depth: Vec<StringBuilder>,
    /// The six usage counts then the three layers.
    counts: Vec<Int64Builder>,
    tool_calls: UInt32Builder,
    tools: ListBuilder<StructBuilder>,
    /// status, error, outcome_name.
    texts_tail: Vec<StringBuilder>,
    outcome_success: BooleanBuilder,
}

impl EventColumns {
    fn with_capacity(rows: usize) -> EventColumns {
        EventColumns {
            id: FixedSizeBinaryBuilder::with_capacity(rows, 16),
            ts: TimestampMicrosecondBuilder::with_capacity(rows),
            duration_ms: Int64Builder::with_capacity(rows),
            texts_before_depth: (0..14).map(|_| text_builder(rows)).collect(),
            span_depth: UInt32Builder::with_capacity(rows),
            texts_after_depth: (0..5).map(|_| text_builder(rows)).collect(),
            counts: (0..9).map(|_| Int64Builder::with_capacity(rows)).collect(),
            tool_calls: UInt32Builder::with_capacity(rows),
            tools: ListBuilder::new(StructBuilder::from_fields(tool_fields(), rows))
                .with_field(Arc::new(Field::new_struct("item", tool_fields(), true))),
            texts_tail: (0..3).map(|_| text_builder(rows)).collect(),
            outcome_success: BooleanBuilder::with_capacity(rows),
        }
    }

    fn push(&mut self, event: &UsageEvent) -> Result<(), ArrowError> {
        let id = event
            .id
            .ok_or_else(|| ArrowError::InvalidArgumentError("event without id".into()))?;
        self.id.append_value(id.as_bytes())?;
        self.ts.append_value(event.ts.timestamp_micros());
        self.duration_ms
            .append_option(event.duration_ms.map(tokens));
        let before_depth = texts_before_depth(event);
        for (builder, value) in self.texts_before_depth.iter_mut().zip(before_depth) {
            builder.append_option(value);
        }
        self.span_depth.append_option(event.span_depth);
        let labels = (!event.labels.is_empty())
            .then(|| serde_json::to_string(&event.labels))
            .transpose()
            .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
        let after_depth = [
            event.session_id.as_deref(),
            event.deployment.as_deref(),
            event.prompt_version.as_deref(),
            event.effort.as_deref(),
            labels.as_deref(),
        ];
        for (builder, value) in self.texts_after_depth.iter_mut().zip(after_depth) {
            builder.append_option(value);
        }
        let usage = &event.usage;
        let layers = event.layers;
        let counts = [
            Some(usage.input_tokens),
            Some(usage.cache_read_tokens),
            Some(usage.cache_write_tokens),
            Some(usage.cache_write_1h_tokens),
            Some(usage.output_tokens),
            Some(usage.reasoning_tokens),
            layers.map(|l| l.prompt),
            layers.map(|l| l.tool),
            layers.map(|l| l.memory),
        ];
        for (builder, value) in self.counts.iter_mut().zip(counts) {
            builder.append_option(value.map(tokens));
        }
        self.tool_calls.append_value(event.tool_calls);
        if event.tools.is_empty() {
            self.tools.append_null();
        } else {
            let calls = self.tools.values();
            for tool in &event.tools {
                calls
                    .field_builder::<StringBuilder>(0)
                    .ok_or_else(|| ArrowError::SchemaError("tools.name".into()))?
                    .append_value(&tool.name);
                calls
                    .field_builder::<UInt64Builder>(1)
                    .ok_or_else(|| ArrowError::SchemaError("tools.args_hash".into()))?
                    .append_option(tool.args_hash.as_deref().map(args_hash_u64));
                calls.append(true);
            }
            self.tools.append(true);
        }
        let tail = [
            Some(event.status.as_str()),
            event.error.as_deref(),
            event.outcome.as_ref().map(|o| o.name.as_str()),
        ];
        for (builder, value) in self.texts_tail.iter_mut().zip(tail) {
            builder.append_option(value);
        }
        self.outcome_success
            .append_option(event.outcome.as_ref().map(|o| o.success));
        Ok(())
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(EVENT_COLUMNS.len());
        columns.push(Arc::new(self.id.finish()));
        columns.push(Arc::new(self.ts.finish()));
        columns.push(Arc::new(self.duration_ms.finish()));
        for builder in &mut self.texts_before_depth {
            columns.push(Arc::new(builder.finish()));
        }
        columns.push(Arc::new(self.span_depth.finish()));
        for builder in &mut self.texts_after_depth {
            columns.push(Arc::new(builder.finish()));
        }
        for builder in &mut self.counts {
            columns.push(Arc::new(builder.finish()));
        }
        columns.push(Arc::new(self.tool_calls.finish()));
        columns.push(Arc::new(self.tools.finish()));
        for builder in &mut self.texts_tail {
            columns.push(Arc::new(builder.finish()));
        }
        columns.push(Arc::new(self.outcome_success.finish()));
        columns
    }
}

/// Builds one record batch from events that all carry an id.
pub fn events_to_batch(
    schema: &SchemaRef,
    events: &[UsageEvent],
) -> Result<RecordBatch, ArrowError> {
    let mut columns = EventColumns::with_capacity(events.len());
    for event in events {
        columns.push(event)?;
    }
    RecordBatch::try_new(schema.clone(), columns.finish())
}
