//! The ClickHouse schema, as numbered migrations, and an event as one `JSONEachRow` row.

use burnrate_model::UsageEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::batch::args_hash_u64;

/// Migrations in order: a number and its statements (`{db}` is the database). A migration
/// runs once; the `schema_migrations` table records it.
pub const MIGRATIONS: &[(u32, &[&str])] = &[
    (
        1,
        &["CREATE TABLE IF NOT EXISTS {db}.events (
        id UUID,
        ts DateTime,
        ts_us Int64,
        duration_ms Nullable(Int64),
        source LowCardinality(Nullable(String)),
        provider LowCardinality(String),
        model LowCardinality(String),
        requested_model LowCardinality(Nullable(String)),
        operation LowCardinality(Nullable(String)),
        service_tier LowCardinality(Nullable(String)),
        tenant_id LowCardinality(Nullable(String)),
        user_id Nullable(String),
        feature LowCardinality(Nullable(String)),
        task_id Nullable(String),
        route LowCardinality(Nullable(String)),
        agent_run_id Nullable(String),
        parent_run_id Nullable(String),
        agent_name LowCardinality(Nullable(String)),
        span_depth Nullable(UInt32),
        session_id Nullable(String),
        deployment LowCardinality(Nullable(String)),
        prompt_version LowCardinality(Nullable(String)),
        effort LowCardinality(Nullable(String)),
        labels String,
        input_tokens Int64,
        cache_read_tokens Int64,
        cache_write_tokens Int64,
        cache_write_1h_tokens Int64,
        output_tokens Int64,
        reasoning_tokens Int64,
        layer_prompt Nullable(Int64),
        layer_tool Nullable(Int64),
        layer_memory Nullable(Int64),
        tool_calls UInt32,
        tool_names Array(String),
        tool_hashes Array(Nullable(UInt64)),
        status LowCardinality(String),
        error Nullable(String),
        outcome_name LowCardinality(Nullable(String)),
        outcome_success Nullable(UInt8)
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(ts)
    ORDER BY (ifNull(tenant_id, ''), ts, id)"],
    ),
    (
        2,
        &[
            // The price book, written whole as one generation; a generation counts once it
            // is listed in `price_generations`, so readers never see half of one.
            "CREATE TABLE IF NOT EXISTS {db}.price_versions (
                generation UInt64,
                price_key String,
                effective_from Nullable(Date),
                source String,
                provider Nullable(String),
                mode Nullable(String),
                max_output_tokens Nullable(UInt64),
                max_input_tokens Nullable(UInt64),
                slots String
            ) ENGINE = MergeTree ORDER BY (generation, price_key)",
            // Per-token prices in femtodollars per key, tier, input band and period of each
            // generation: what queries join to. `priced = 0` marks days before a key's first
            // price, so every key, tier and band covers every day exactly once.
            "CREATE TABLE IF NOT EXISTS {db}.price_bands (
                generation UInt64,
                price_key String,
                tier String,
                band UInt8,
                valid_from Date,
                valid_to Date,
                priced UInt8,
                p_input Decimal(38, 0),
                p_cache_read Decimal(38, 0),
                p_cache_write_5m Decimal(38, 0),
                p_cache_write_1h Decimal(38, 0),
                p_output Decimal(38, 0),
                p_reasoning Decimal(38, 0)
            ) ENGINE = MergeTree ORDER BY (generation, price_key, tier, band, valid_from)",
            "CREATE TABLE IF NOT EXISTS {db}.price_generations (
                generation UInt64,
                written DateTime,
                as_of Nullable(Date),
                fingerprint String
            ) ENGINE = MergeTree ORDER BY generation",
            // Every provider + model pair the ledger holds; queries resolve them to price
            // keys with the current book.
            "CREATE TABLE IF NOT EXISTS {db}.models_seen (
                provider String,
                model String
            ) ENGINE = ReplacingMergeTree ORDER BY (provider, model)",
        ],
    ),
];

/// One event as the `events` table's `JSONEachRow` row.
#[derive(Debug, Serialize)]
pub struct Row<'a> {
    id: String,
    ts: i64,
    ts_us: i64,
    duration_ms: Option<u64>,
    source: Option<&'a str>,
    provider: &'a str,
    model: &'a str,
    requested_model: Option<&'a str>,
    operation: Option<&'a str>,
    service_tier: Option<&'a str>,
    tenant_id: Option<&'a str>,
    user_id: Option<&'a str>,
    feature: Option<&'a str>,
    task_id: Option<&'a str>,
    route: Option<&'a str>,
    agent_run_id: Option<&'a str>,
    parent_run_id: Option<&'a str>,
    agent_name: Option<&'a str>,
    span_depth: Option<u32>,
    session_id: Option<&'a str>,
    deployment: Option<&'a str>,
    prompt_version: Option<&'a str>,
    effort: Option<&'a str>,
    labels: String,
    input_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    cache_write_1h_tokens: u64,
    output_tokens: u64,
    reasoning_tokens: u64,
    layer_prompt: Option<u64>,
    layer_tool: Option<u64>,
    layer_memory: Option<u64>,
    tool_calls: u32,
    tool_names: Vec<&'a str>,
    tool_hashes: Vec<Option<u64>>,
    status: &'static str,
    error: Option<&'a str>,
    outcome_name: Option<&'a str>,
    outcome_success: Option<u8>,
}

impl<'a> Row<'a> {
    /// The row of `event`, whose id is `id`.
    pub fn of(event: &'a UsageEvent, id: Uuid) -> Row<'a> {
        let usage = &event.usage;
        Row {
            id: id.to_string(),
            // Seconds since the epoch, whatever the server's time zone; the exact time is
            // `ts_us`, and `ts` is for partitions and pruning.
            ts: event.ts.timestamp(),
            ts_us: event.ts.timestamp_micros(),
            duration_ms: event.duration_ms,
            source: event.source.as_deref(),
            provider: &event.provider,
            model: &event.model,
            requested_model: event.requested_model.as_deref(),
            operation: event.operation.as_deref(),
            service_tier: event.service_tier.as_deref(),
            tenant_id: event.tenant_id.as_deref(),
            user_id: event.user_id.as_deref(),
            feature: event.feature.as_deref(),
            task_id: event.task_id.as_deref(),
            route: event.route.as_deref(),
            agent_run_id: event.agent_run_id.as_deref(),
            parent_run_id: event.parent_run_id.as_deref(),
            agent_name: event.agent_name.as_deref(),
            span_depth: event.span_depth,
            session_id: event.session_id.as_deref(),
            deployment: event.deployment.as_deref(),
            prompt_version: event.prompt_version.as_deref(),
            effort: event.effort.as_deref(),
            labels: serde_json::to_string(&event.labels).unwrap_or_else(|_| "{}".into()),
            input_tokens: usage.input_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
            cache_write_1h_tokens: usage.cache_write_1h_tokens,
            output_tokens: usage.output_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            layer_prompt: event.layers.map(|l| l.prompt),
            layer_tool: event.layers.map(|l| l.tool),
            layer_memory: event.layers.map(|l| l.memory),
            tool_calls: event.tool_calls,
            tool_names: event.tools.iter().map(|t| t.name.as_str()).collect(),
            tool_hashes: event
                .tools
                .iter()
                .map(|t| t.args_hash.as_deref().map(args_hash_u64))
                .collect(),
            status: event.status.as_str(),
            error: event.error.as_deref(),
            outcome_name: event.outcome.as_ref().map(|o| o.name.as_str()),
            outcome_success: event.outcome.as_ref().map(|o| u8::from(o.success)),
        }
    }
}

/// The columns [`StoredRow`] reads (every column but `ts`, which `ts_us` holds exactly).
pub const STORED_COLUMNS: &str = "id, ts_us, duration_ms, source, provider, model, \
    requested_model, operation, service_tier, tenant_id, user_id, feature, task_id, route, \
    agent_run_id, parent_run_id, agent_name, span_depth, session_id, deployment, prompt_version, \
    effort, labels, input_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens, \
    output_tokens, reasoning_tokens, layer_prompt, layer_tool, layer_memory, tool_calls, \
    tool_names, tool_hashes, status, error, outcome_name, outcome_success";

/// One stored event as ClickHouse answers it in `JSONEachRow` ([`STORED_COLUMNS`]).
#[derive(Debug, Deserialize)]
pub struct StoredRow {
    id: Uuid,
    ts_us: i64,
    duration_ms: Option<u64>,
    source: Option<String>,
    provider: String,
    model: String,
    requested_model: Option<String>,
    operation: Option<String>,
    service_tier: Option<String>,
    tenant_id: Option<String>,
    user_id: Option<String>,
    feature: Option<String>,
    task_id: Option<String>,
    route: Option<String>,
    agent_run_id: Option<String>,
    parent_run_id: Option<String>,
    agent_name: Option<String>,
    span_depth: Option<u32>,
    session_id: Option<String>,
    deployment: Option<String>,
    prompt_version: Option<String>,
    effort: Option<String>,
    labels: String,
    input_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    cache_write_1h_tokens: u64,
    output_tokens: u64,
    reasoning_tokens: u64,
    layer_prompt: Option<u64>,
    layer_tool: Option<u64>,
    layer_memory: Option<u64>,
    tool_calls: u32,
    tool_names: Vec<String>,
    tool_hashes: Vec<Option<u64>>,
    status: String,
    error: Option<String>,
    outcome_name: Option<String>,
    outcome_success: Option<u8>,
}

impl StoredRow {
    /// The usage event the row holds (the contract's JSON, read back like any event).
    pub fn into_event(self) -> Result<UsageEvent, serde_json::Error> {
        let ts = chrono::DateTime::from_timestamp_micros(self.ts_us).unwrap_or_default();
        let labels: serde_json::Value = serde_json::from_str(&self.labels)?;
        let tools: Vec<serde_json::Value> = self
            .tool_names
            .iter()
            .zip(&self.tool_hashes)
            .map(|(name, hash)| {
                serde_json::json!({"name": name, "args_hash": hash.map(|h| format!("{h:016x}"))})
            })
            .collect();
        let layers = self.layer_prompt.map(|prompt| {
            serde_json::json!({"prompt": prompt, "tool": self.layer_tool.unwrap_or(0),
                "memory": self.layer_memory.unwrap_or(0), "response": self.output_tokens})
        });
        let outcome = self.outcome_name.map(
            |name| serde_json::json!({"name": name, "success": self.outcome_success == Some(1)}),
        );
        serde_json::from_value(serde_json::json!({
            "id": self.id, "ts": ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "duration_ms": self.duration_ms, "source": self.source, "provider": self.provider,
            "model": self.model, "requested_model": self.requested_model,
            "operation": self.operation, "service_tier": self.service_tier,
            "tenant_id": self.tenant_id, "user_id": self.user_id, "feature": self.feature,
            "task_id": self.task_id, "route": self.route, "agent_run_id": self.agent_run_id,
            "parent_run_id": self.parent_run_id, "agent_name": self.agent_name,
            "span_depth": self.span_depth, "session_id": self.session_id,
            "deployment": self.deployment, "prompt_version": self.prompt_version,
            "effort": self.effort, "labels": labels,
            "usage": {"input_tokens": self.input_tokens,
                      "cache_read_tokens": self.cache_read_tokens,
                      "cache_write_tokens": self.cache_write_tokens,
                      "cache_write_1h_tokens": self.cache_write_1h_tokens,
                      "output_tokens": self.output_tokens,
                      "reasoning_tokens": self.reasoning_tokens},
            "layers": layers, "tool_calls": self.tool_calls, "tools": tools,
            "status": self.status, "error": self.error, "outcome": outcome,
        }))
    }
}
