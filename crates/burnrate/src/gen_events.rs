//! Deterministic synthetic workload for `burnrate gen-events`.
//!
//! Events come in fixed-size chunks, each drawn from its own ChaCha8 stream (seed, chunk index)
//! on a rayon worker; chunks are written in order, so the output depends on the spec alone.
//! Inside a chunk, events come in agent runs (with sub-agent runs) of one tenant, user and
//! feature. Tenants are Zipf-distributed, users per tenant long-tailed, token counts lognormal
//! with a per-run scale, and every run is placed on a diurnal, weekday-heavy clock.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::ops::Range;

use burnrate_model::{Layers, Outcome, Status, ToolCall, Usage, UsageEvent};
use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Zipf};
use rayon::prelude::*;

/// What to generate.
pub struct GenSpec {
    /// Number of tenants; their activity is Zipf-distributed.
    pub tenants: u32,
    /// Length of the window in days.
    pub days: u32,
    /// Number of events to write.
    pub events: u64,
    /// Seed of every random choice: the same spec gives the same bytes.
    pub seed: u64,
    /// End of the window (exclusive): events fall in `[end - days, end)`.
    pub end: DateTime<Utc>,
}

/// Events per independently seeded chunk. Changing it changes the output of every seed.
const CHUNK_EVENTS: u64 = 32_768;
const PROGRESS_EVERY: u64 = 100_000;
const DAY_MS: i64 = 86_400_000;
const MAX_DAYS: u32 = 36_500;
const MAX_TENANTS: u32 = 1_000_000;
/// Zipf exponent of tenant activity.
const TENANT_SKEW: f64 = 1.1;
const MAX_DEPTH: u32 = 3;
/// Probability that a call of a top-level agent spawns a sub-agent (halved per level).
const SPAWN_PROBABILITY: f64 = 0.1;
const RUNAWAY_PROBABILITY: f64 = 0.001;
const UNPRICED_PROBABILITY: f64 = 0.005;
const OUTCOME_PROBABILITY: f64 = 0.3;

/// A model the workload calls, named as its provider reports it.
struct Model {
    provider: &'static str,
    name: &'static str,
    operation: &'static str,
    /// Part of the output is reasoning.
    reasoning: bool,
    /// Takes an `effort` parameter.
    effort: bool,
    max_input: u64,
    max_output: u64,
    /// Service tiers sold for it besides `standard` and `batch`.
    tiers: &'static [&'static str],
    /// The bigger sibling a caller may have asked for before the gateway fell back.
    bigger: Option<&'static str>,
    /// Generation latency per output token, in milliseconds.
    ms_per_token: f64,
}

#[rustfmt::skip]
static MODELS: [Model; 11] = [
    Model { provider: "openai", name: "gpt-4.1-2025-04-14", operation: "chat", reasoning: false, effort: false,
            max_input: 1_047_576, max_output: 32_768, tiers: &["priority"], bigger: None, ms_per_token: 14.0 },
    Model { provider: "openai", name: "gpt-4.1-mini-2025-04-14", operation: "chat", reasoning: false, effort: false,
            max_input: 1_047_576, max_output: 32_768, tiers: &["priority"], bigger: Some("gpt-4.1"), ms_per_token: 8.0 },
    Model { provider: "openai", name: "gpt-5-2025-08-07", operation: "responses", reasoning: true, effort: true,
            max_input: 272_000, max_output: 128_000, tiers: &["flex", "priority"], bigger: None, ms_per_token: 12.0 },
    Model { provider: "openai", name: "o3-mini-2025-01-31", operation: "chat", reasoning: true, effort: true,
            max_input: 200_000, max_output: 100_000, tiers: &[], bigger: None, ms_per_token: 7.0 },
    Model { provider: "openai", name: "text-embedding-3-small", operation: "embeddings", reasoning: false, effort: false,
            max_input: 8_191, max_output: 0, tiers: &[], bigger: None, ms_per_token: 0.0 },
    Model { provider: "anthropic", name: "claude-sonnet-4-5-20250929", operation: "messages", reasoning: false, effort: false,
            max_input: 200_000, max_output: 64_000, tiers: &[], bigger: None, ms_per_token: 16.0 },
    Model { provider: "anthropic", name: "claude-haiku-4-5-20251001", operation: "messages", reasoning: false, effort: false,
            max_input: 200_000, max_output: 64_000, tiers: &[], bigger: Some("claude-sonnet-4-5"), ms_per_token: 7.0 },
    Model { provider: "gemini", name: "gemini-2.5-pro", operation: "generate_content", reasoning: true, effort: false,
            max_input: 1_048_576, max_output: 65_536, tiers: &["flex", "priority"], bigger: None, ms_per_token: 10.0 },
    Model { provider: "gemini", name: "gemini-2.5-flash", operation: "generate_content", reasoning: true, effort: false,
            max_input: 1_048_576, max_output: 65_536, tiers: &["flex", "priority"], bigger: Some("gemini-2.5-pro"), ms_per_token: 4.0 },
    // Not in the price table: unpriced reporting has something to show.
    Model { provider: "openai", name: "ft:gpt-4.1:acme:triage:abc123", operation: "chat", reasoning: false, effort: false,
            max_input: 1_047_576, max_output: 32_768, tiers: &[], bigger: None, ms_per_token: 14.0 },
    Model { provider: "selfhosted", name: "acme-llm-v1", operation: "chat", reasoning: false, effort: false,
            max_input: 128_000, max_output: 8_192, tiers: &[], bigger: None, ms_per_token: 20.0 },
];
const GPT41: usize = 0;
const GPT41_MINI: usize = 1;
const GPT5: usize = 2;
const O3_MINI: usize = 3;
const EMBEDDING: usize = 4;
const SONNET: usize = 5;
const HAIKU: usize = 6;
const GEMINI_PRO: usize = 7;
const GEMINI_FLASH: usize = 8;
const UNPRICED: [usize; 2] = [9, 10];

/// A product feature: its route, model mix and the shape of its calls and runs.
struct Feature {
    name: &'static str,
    route: &'static str,
    /// Models with their weights.
    models: &'static [(usize, f64)],
    /// Median input and output tokens of a call.
    input: f64,
    output: f64,
    /// Mean share of the input read from the prompt cache on a warm call.
    cache_hit: f64,
    /// Median calls per run.
    run_calls: f64,
    /// Context growth per call of a run, as a share of the first call's input.
    growth: f64,
    /// Shares of the first call's input in the prompt and tool layers; memory is the rest.
    prompt_share: f64,
    tool_share: f64,
    tools: &'static [&'static str],
    agent: &'static str,
    sub_agents: &'static [&'static str],
    outcome: Option<&'static str>,
    /// Probability that a run goes through the batch tier.
    batch: f64,
    /// Previous and current prompt versions.
    versions: [&'static str; 2],
}

#[rustfmt::skip]
static FEATURES: [Feature; 8] = [
    Feature { name: "inbox-triage", route: "/api/agents/triage", models: &[(HAIKU, 6.0), (GPT41_MINI, 4.0)],
              input: 6_000.0, output: 350.0, cache_hit: 0.82, run_calls: 4.0, growth: 0.1, prompt_share: 0.5, tool_share: 0.25,
              tools: &["search_crm", "label_email", "draft_reply"], agent: "triager", sub_agents: &[],
              outcome: Some("email_triaged"), batch: 0.0, versions: ["v1.4", "v1.5"] },
    Feature { name: "support-chat", route: "/api/support/chat", models: &[(SONNET, 6.0), (GPT41, 3.0), (GEMINI_FLASH, 1.0)],
              input: 11_000.0, output: 500.0, cache_hit: 0.86, run_calls: 6.0, growth: 0.12, prompt_share: 0.35, tool_share: 0.3,
              tools: &["search_kb", "lookup_order", "create_ticket", "refund_order"], agent: "support-agent",
              sub_agents: &["researcher", "refund-agent"], outcome: Some("ticket_resolved"), batch: 0.0, versions: ["v2.2", "v2.3"] },
    Feature { name: "code-review", route: "/api/agents/code-review", models: &[(SONNET, 5.0), (GPT5, 3.0), (O3_MINI, 2.0)],
              input: 30_000.0, output: 1_500.0, cache_hit: 0.75, run_calls: 10.0, growth: 0.08, prompt_share: 0.25, tool_share: 0.5,
              tools: &["read_file", "grep_repo", "run_tests", "post_comment"], agent: "coordinator",
              sub_agents: &["coder", "tester", "reviewer"], outcome: Some("pr_reviewed"), batch: 0.0, versions: ["v3.0", "v3.1"] },
    Feature { name: "doc-summarize", route: "/api/docs/summarize", models: &[(GEMINI_PRO, 5.0), (GEMINI_FLASH, 4.0), (GPT41_MINI, 1.0)],
              input: 28_000.0, output: 800.0, cache_hit: 0.05, run_calls: 1.5, growth: 0.0, prompt_share: 0.9, tool_share: 0.0,
              tools: &[], agent: "summarizer", sub_agents: &[], outcome: Some("doc_summarized"), batch: 0.25, versions: ["v1.0", "v1.1"] },
    Feature { name: "search-rerank", route: "/api/search/rerank", models: &[(GPT41_MINI, 6.0), (GEMINI_FLASH, 4.0)],
              input: 2_500.0, output: 80.0, cache_hit: 0.04, run_calls: 1.0, growth: 0.0, prompt_share: 0.95, tool_share: 0.0,
              tools: &[], agent: "reranker", sub_agents: &[], outcome: None, batch: 0.0, versions: ["v1.2", "v1.3"] },
    Feature { name: "report-gen", route: "/api/reports/generate", models: &[(GPT5, 5.0), (SONNET, 3.0), (GEMINI_PRO, 2.0)],
              input: 18_000.0, output: 3_500.0, cache_hit: 0.35, run_calls: 8.0, growth: 0.1, prompt_share: 0.3, tool_share: 0.45,
              tools: &["run_sql", "fetch_metrics", "render_chart"], agent: "coordinator",
              sub_agents: &["researcher", "analyst", "writer"], outcome: Some("report_delivered"), batch: 0.3, versions: ["v1.7", "v2.0"] },
    Feature { name: "embeddings-index", route: "/api/index/embed", models: &[(EMBEDDING, 1.0)],
              input: 1_800.0, output: 0.0, cache_hit: 0.0, run_calls: 6.0, growth: 0.0, prompt_share: 1.0, tool_share: 0.0,
              tools: &[], agent: "indexer", sub_agents: &[], outcome: None, batch: 0.2, versions: ["v1.0", "v1.0"] },
    Feature { name: "sales-copilot", route: "/api/sales/copilot", models: &[(SONNET, 4.0), (GPT41, 3.0), (HAIKU, 3.0)],
              input: 9_000.0, output: 650.0, cache_hit: 0.78, run_calls: 5.0, growth: 0.1, prompt_share: 0.4, tool_share: 0.3,
              tools: &["search_crm", "enrich_lead", "draft_email"], agent: "copilot", sub_agents: &["researcher"],
              outcome: Some("meeting_booked"), batch: 0.0, versions: ["v1.9", "v2.0"] },
];

/// Named tenants, most active first; the rest are `tenant-NNNN`.
#[rustfmt::skip]
const TENANT_NAMES: [&str; 16] = [
    "acme-corp", "globex", "initech", "umbrella-health", "hooli", "stark-industries", "wayne-enterprises",
    "vandelay-imports", "pied-piper", "soylent", "massive-dynamic", "aperture-labs", "dunder-mifflin",
    "bluth-company", "wonka-foods", "tyrell",
];
/// Relative activity by UTC hour (US and EU business hours overlap in the afternoon).
const HOURLY: [f64; 24] = [
    0.35, 0.3, 0.25, 0.2, 0.2, 0.25, 0.35, 0.5, 0.7, 0.85, 0.9, 0.9, 0.9, 0.95, 1.0, 1.0, 1.0,
    0.95, 0.85, 0.75, 0.65, 0.55, 0.45, 0.4,
];
#[rustfmt::skip]
const ERRORS: [&str; 4] = [
    "upstream 529: overloaded_error", "upstream 500: internal server error",
    "upstream 429: rate_limit_exceeded", "upstream timeout after 60000 ms",
];
#[rustfmt::skip]
const REFUSALS: [&str; 3] = [
    "budget exceeded: tenant daily limit 250 USD", "rate limit: 600 requests per minute",
    "agent run limit: 200000 tokens",
];
const TEAMS: [&str; 3] = ["core", "growth", "platform"];

/// Writes `spec.events` JSONL lines (one serialized `burnrate_model::UsageEvent` each, with `id` set) to `out`.
/// Calls `on_progress(n)` with the number of events written so far, every ~100k events. Returns events written.
pub fn write_events(
    spec: &GenSpec,
    out: &mut dyn Write,
    on_progress: &dyn Fn(u64),
) -> io::Result<u64> {
    if spec.events == 0 {
        return Ok(0);
    }
    let world = &World::new(spec)?;
    let chunks = spec.events.div_ceil(CHUNK_EVENTS);
    let batch = rayon::current_num_threads().max(1) as u64;
    let mut progress = Progress {
        written: 0,
        reported: 0,
        on_progress,
    };
    let (mut ready, mut spare) = (world.batch(0..batch.min(chunks), Vec::new())?, Vec::new());
    for first in (batch..chunks).step_by(batch as usize) {
        // Generate the next batch while this thread writes the previous one; reuse its buffers.
        let (buffers, range) = (std::mem::take(&mut spare), first..chunks.min(first + batch));
        let (wrote, next) = std::thread::scope(|scope| {
            let generating = scope.spawn(move || world.batch(range, buffers));
            (progress.write(out, &ready), generating.join())
        });
        wrote?;
        let next = next.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        spare = std::mem::replace(&mut ready, next);
    }
    progress.write(out, &ready)?;
    if progress.reported != progress.written {
        on_progress(progress.written);
    }
    Ok(progress.written)
}

/// Events written so far and when to report them next.
struct Progress<'a> {
    written: u64,
    reported: u64,
    on_progress: &'a dyn Fn(u64),
}

impl Progress<'_> {
    /// Writes chunks in order, reporting every time another [`PROGRESS_EVERY`] events are out.
    fn write(&mut self, out: &mut dyn Write, chunks: &[(u64, Vec<u8>)]) -> io::Result<()> {
        for (events, bytes) in chunks {
            out.write_all(bytes)?;
            self.written += events;
            if self.written / PROGRESS_EVERY > self.reported / PROGRESS_EVERY {
                (self.on_progress)(self.written);
                self.reported = self.written;
            }
        }
        Ok(())
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Everything chunks share: tenants and the window.
struct World {
    tenants: Vec<Tenant>,
    zipf: Zipf<f64>,
    begin_ms: i64,
    end_ms: i64,
    seed: u64,
    events: u64,
}

impl World {
    fn new(spec: &GenSpec) -> io::Result<World> {
        if spec.tenants == 0 || spec.tenants > MAX_TENANTS {
            return Err(invalid(format!("tenants must be 1 to {MAX_TENANTS}")));
        }
        if spec.days == 0 || spec.days > MAX_DAYS {
            return Err(invalid(format!("days must be 1 to {MAX_DAYS}")));
        }
        let zipf = Zipf::new(f64::from(spec.tenants), TENANT_SKEW)
            .map_err(|error| invalid(format!("tenant distribution: {error}")))?;
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        rng.set_stream(u64::MAX);
        let tenants = (0..spec.tenants as usize)
            .map(|index| Tenant::new(&mut rng, index))
            .collect();
        let end_ms = spec.end.timestamp_millis();
        let begin_ms = end_ms - i64::from(spec.days) * DAY_MS;
        Ok(World {
            tenants,
            zipf,
            begin_ms,
            end_ms,
            seed: spec.seed,
            events: spec.events,
        })
    }

    /// Generates `chunks` in parallel into `buffers` (reused); each with its event count.
    fn batch(
        &self,
        chunks: Range<u64>,
        mut buffers: Vec<(u64, Vec<u8>)>,
    ) -> io::Result<Vec<(u64, Vec<u8>)>> {
        buffers.resize_with((chunks.end - chunks.start) as usize, Default::default);
        buffers
            .par_iter_mut()
            .enumerate()
            .try_for_each(|(offset, (count, buffer))| {
                let index = chunks.start + offset as u64;
                *count = (self.events - index * CHUNK_EVENTS).min(CHUNK_EVENTS);
                self.chunk(index, *count, buffer)
            })?;
        Ok(buffers)
    }

    /// Fills `buffer` with the JSONL lines of chunk `index`, holding `count` events.
    fn chunk(&self, index: u64, count: u64, buffer: &mut Vec<u8>) -> io::Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(index);
        let mut chunk = Chunk {
            world: self,
            rng,
            events: Vec::new(),
            offsets: Vec::new(),
        };
        buffer.clear();
        buffer.reserve(count as usize * 1_000);
        let mut remaining = count as usize;
        while remaining > 0 {
            chunk.run_tree();
            for event in chunk.events.drain(..).take(remaining) {
                serde_json::to_writer(&mut *buffer, &event)?;
                buffer.push(b'\n');
                remaining -= 1;
            }
        }
        Ok(())
    }
}

/// A customer: how many users it has, which features it uses and which providers it prefers.
struct Tenant {
    name: String,
    users: u32,
    features: [f64; FEATURES.len()],
    /// Preference for openai, anthropic and gemini.
    providers: [f64; 3],
}

impl Tenant {
    fn new(rng: &mut ChaCha8Rng, index: usize) -> Tenant {
        let name = TENANT_NAMES
            .get(index)
            .map_or_else(|| format!("tenant-{index:04}"), |name| (*name).to_owned());
        // Busier tenants tend to have more users.
        let users = lognormal(rng, 20.0, 1.2) * (1.0 + 30.0 / (index as f64 + 1.0));
        let mut features = [0.0; FEATURES.len()];
        for weight in &mut features {
            if rng.random_bool(0.55) {
                *weight = lognormal(rng, 1.0, 1.0);
            }
        }
        if features.iter().all(|weight| *weight == 0.0) {
            features[index % FEATURES.len()] = 1.0;
        }
        let providers = [0; 3].map(|_| lognormal(rng, 1.0, 0.8));
        Tenant {
            name,
            users: users.clamp(1.0, 99_999.0) as u32,
            features,
            providers,
        }
    }
}

/// What every call of a run tree shares.
struct RunContext {
    tenant: usize,
    feature: &'static Feature,
    tenant_id: Option<String>,
    user_id: Option<String>,
    feature_tag: Option<String>,
    task_id: String,
    session_id: String,
    source: &'static str,
    deployment: &'static str,
    prompt_version: &'static str,
    labels: BTreeMap<String, String>,
}

/// One agent run: who runs it, on which model, how big.
struct Run {
    id: String,
    parent: Option<String>,
    agent: &'static str,
    depth: u32,
    model: &'static Model,
    requested: Option<&'static str>,
    tier: &'static str,
    effort: Option<&'static str>,
    /// Token multiplier of the whole run (lognormal: ~30x between p1 and p99).
    scale: f64,
    one_hour_cache: bool,
    /// The call a runaway loop repeats.
    loop_call: Option<ToolCall>,
}

/// Generator state of one chunk.
struct Chunk<'a> {
    world: &'a World,
    rng: ChaCha8Rng,
    /// Events of the current run tree, with their start in ms from the tree's start.
    events: Vec<UsageEvent>,
    offsets: Vec<i64>,
}

impl Chunk<'_> {
    /// Generates one top-level run with its sub-agent runs and places it in the window.
    fn run_tree(&mut self) {
        self.events.clear();
        self.offsets.clear();
        let context = self.run_context();
        self.run(&context, None, 0, 0);
        self.place();
    }

    fn run_context(&mut self) -> RunContext {
        let world = self.world;
        let rng = &mut self.rng;
        let rank = world.zipf.sample(rng) as usize;
        let tenant_index = rank.clamp(1, world.tenants.len()) - 1;
        let tenant = &world.tenants[tenant_index];
        let feature = &FEATURES[pick(rng, tenant.features.iter().copied())];
        let user = (f64::from(tenant.users) * rng.random::<f64>().powi(3)) as u32;
        let labels = if rng.random_bool(0.04) {
            BTreeMap::from([("team".to_owned(), one_of(rng, &TEAMS).to_owned())])
        } else {
            BTreeMap::new()
        };
        RunContext {
            tenant: tenant_index,
            feature,
            tenant_id: (!rng.random_bool(0.01)).then(|| tenant.name.clone()),
            user_id: (!rng.random_bool(0.02)).then(|| format!("u_{}{user:05}", tenant_index + 1)),
            feature_tag: (!rng.random_bool(0.015)).then(|| feature.name.to_owned()),
            task_id: format!("t-{:012x}", rng.random::<u64>() >> 16),
            session_id: format!("s-{:012x}", rng.random::<u64>() >> 16),
            source: either(rng, 0.92, "gateway", "otlp"),
            deployment: either(rng, 0.95, "production", "staging"),
            prompt_version: either(rng, 0.75, feature.versions[1], feature.versions[0]),
            labels,
        }
    }

    /// Generates the calls of one run from `start_ms`, recursing into sub-agents; returns its end.
    fn run(
        &mut self,
        context: &RunContext,
        parent: Option<&str>,
        depth: u32,
        start_ms: i64,
    ) -> i64 {
        let run = self.new_run(context, parent, depth);
        let feature = context.feature;
        let calls = if run.loop_call.is_some() {
            self.rng.random_range(50..=250)
        } else {
            let median = feature.run_calls * if depth == 0 { 1.0 } else { 0.6 };
            lognormal(&mut self.rng, median, 1.0)
                .round()
                .clamp(1.0, 200.0) as u32
        };
        let mut now = start_ms;
        for call in 0..calls {
            let last = call + 1 == calls;
            let event = self.call(context, &run, call, last);
            let duration = event.duration_ms.unwrap_or(0) as i64;
            self.events.push(event);
            self.offsets.push(now);
            now += duration + lognormal(&mut self.rng, 400.0, 1.0) as i64;
            let spawn = SPAWN_PROBABILITY / f64::from(1 << depth);
            if !last
                && depth < MAX_DEPTH
                && !feature.sub_agents.is_empty()
                && self.rng.random_bool(spawn)
            {
                now = self.run(context, Some(&run.id), depth + 1, now);
            }
        }
        if let (0, None, Some(name)) = (depth, &run.loop_call, feature.outcome) {
            self.end_with_outcome(name);
        }
        now
    }

    /// Ends the last run with a business outcome, ~30% of the time; it fails when the call did.
    fn end_with_outcome(&mut self, name: &str) {
        if !self.rng.random_bool(OUTCOME_PROBABILITY) {
            return;
        }
        let success = self.rng.random_bool(0.8);
        if let Some(event) = self.events.last_mut() {
            let success = success && event.status == Status::Ok;
            event.outcome = Some(Outcome {
                name: name.to_owned(),
                success,
            });
        }
    }

    fn new_run(&mut self, context: &RunContext, parent: Option<&str>, depth: u32) -> Run {
        let rng = &mut self.rng;
        let feature = context.feature;
        let model = if rng.random_bool(UNPRICED_PROBABILITY) {
            &MODELS[one_of(rng, &UNPRICED)]
        } else {
            let providers = &self.world.tenants[context.tenant].providers;
            let weights = feature.models.iter().map(|&(model, weight)| {
                weight
                    * provider_index(MODELS[model].provider).map_or(1.0, |index| providers[index])
            });
            &MODELS[feature.models[pick(rng, weights)].0]
        };
        let agent = match feature.sub_agents {
            [] => feature.agent,
            names if depth > 0 => one_of(rng, names),
            _ => feature.agent,
        };
        let loop_call = (!feature.tools.is_empty() && rng.random_bool(RUNAWAY_PROBABILITY))
            .then(|| tool_call(rng, feature.tools));
        Run {
            id: format!("run-{:016x}", rng.random::<u64>()),
            parent: parent.map(str::to_owned),
            agent,
            depth,
            model,
            requested: model.bigger.filter(|_| rng.random_bool(0.03)),
            tier: service_tier(rng, feature, model),
            effort: model
                .effort
                .then(|| ["low", "medium", "high"][pick(rng, [2.0, 5.0, 3.0].into_iter())]),
            scale: lognormal(rng, 1.0, 0.75),
            one_hour_cache: model.provider == "anthropic" && rng.random_bool(0.04),
            loop_call,
        }
    }

    /// One model call of a run.
    fn call(&mut self, context: &RunContext, run: &Run, call: u32, last: bool) -> UsageEvent {
        let feature = context.feature;
        let (status, error) = self.status();
        let mut usage = self.usage(feature, run, call);
        let tools = match (&run.loop_call, status) {
            (Some(repeated), Status::Ok) => vec![repeated.clone()],
            (None, Status::Ok) if !last && !feature.tools.is_empty() => self.tools(feature),
            _ => Vec::new(),
        };
        match status {
            Status::Ok => {}
            Status::Error => (usage.output_tokens, usage.reasoning_tokens) = (0, 0),
            Status::Blocked => usage = Usage::default(),
        }
        let layers = (context.source == "gateway" && status != Status::Blocked)
            .then(|| layers(feature, &usage, call));
        let duration = self.duration(run.model, &usage, status);
        UsageEvent {
            id: None,
            ts: DateTime::UNIX_EPOCH,
            duration_ms: Some(duration),
            source: Some(context.source.to_owned()),
            provider: run.model.provider.to_owned(),
            model: run.model.name.to_owned(),
            requested_model: run.requested.map(str::to_owned),
            operation: Some(run.model.operation.to_owned()),
            service_tier: Some(run.tier.to_owned()),
            tenant_id: context.tenant_id.clone(),
            user_id: context.user_id.clone(),
            feature: context.feature_tag.clone(),
            task_id: Some(context.task_id.clone()),
            route: Some(feature.route.to_owned()),
            agent_run_id: Some(run.id.clone()),
            parent_run_id: run.parent.clone(),
            agent_name: Some(run.agent.to_owned()),
            span_depth: Some(run.depth),
            session_id: Some(context.session_id.clone()),
            deployment: Some(context.deployment.to_owned()),
            prompt_version: Some(context.prompt_version.to_owned()),
            effort: run.effort.map(str::to_owned),
            labels: context.labels.clone(),
            usage,
            layers,
            tool_calls: tools.len() as u32,
            tools,
            status,
            error: error.map(str::to_owned),
            outcome: None,
        }
    }

    /// ok ~98.5%, error ~1%, blocked ~0.5%, with the reason.
    fn status(&mut self) -> (Status, Option<&'static str>) {
        let draw = self.rng.random::<f64>();
        if draw < 0.005 {
            (Status::Blocked, Some(one_of(&mut self.rng, &REFUSALS)))
        } else if draw < 0.015 {
            (Status::Error, Some(one_of(&mut self.rng, &ERRORS)))
        } else {
            (Status::Ok, None)
        }
    }

    /// Token counts of call number `call` of a run: the context grows as the run goes on.
    fn usage(&mut self, feature: &Feature, run: &Run, call: u32) -> Usage {
        let model = run.model;
        let rng = &mut self.rng;
        let growth = (1.0 + feature.growth * f64::from(call)).min(4.0);
        let mut input =
            (feature.input * run.scale * growth * lognormal(rng, 1.0, 0.3)).max(16.0) as u64;
        if input > model.max_input {
            // The agent compacts its context near the window's end.
            input = (model.max_input as f64 * rng.random_range(0.5..1.0)) as u64;
        }
        let (cache_read, cache_write) = cache(rng, feature, model, input, call);
        let visible =
            (feature.output * run.scale.sqrt() * lognormal(rng, 1.0, 0.6)).max(1.0) as u64;
        let reasoning = match (model.reasoning, run.effort) {
            (false, _) => 0.0,
            (true, Some("low")) => 0.5,
            (true, Some("high")) => 4.0,
            (true, _) => 1.5,
        } * visible as f64
            * lognormal(rng, 1.0, 0.5);
        let output = (visible + reasoning as u64).min(model.max_output);
        Usage {
            input_tokens: input,
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
            cache_write_1h_tokens: if run.one_hour_cache { cache_write } else { 0 },
            output_tokens: output,
            reasoning_tokens: (reasoning as u64).min(output),
        }
    }

    /// The tool calls a response asks for: one to four, with fresh arguments.
    fn tools(&mut self, feature: &Feature) -> Vec<ToolCall> {
        let count = 1 + pick(&mut self.rng, [6.0, 2.5, 1.0, 0.5].into_iter());
        (0..count)
            .map(|_| tool_call(&mut self.rng, feature.tools))
            .collect()
    }

    /// Wall time: a base, prefill and generation, with lognormal noise.
    fn duration(&mut self, model: &Model, usage: &Usage, status: Status) -> u64 {
        if status == Status::Blocked {
            return self.rng.random_range(1..25);
        }
        let work = 250.0
            + usage.input_tokens as f64 * 0.004
            + usage.output_tokens as f64 * model.ms_per_token;
        (work * lognormal(&mut self.rng, 1.0, 0.3)) as u64
    }

    /// Moves the current run tree to a diurnal start inside the window and assigns the ids.
    fn place(&mut self) {
        let (begin, end) = (self.world.begin_ms, self.world.end_ms);
        let span = self.offsets.iter().copied().max().unwrap_or(0);
        let start = self.diurnal_ms().min(end - 1 - span).max(begin);
        for (event, offset) in self.events.iter_mut().zip(&self.offsets) {
            let millis = (start + offset).min(end - 1);
            let mut random = [0u8; 10];
            self.rng.fill(&mut random);
            event.ts = DateTime::from_timestamp_millis(millis).unwrap_or(event.ts);
            let unix_millis = u64::try_from(millis).unwrap_or(0);
            event.id =
                Some(uuid::Builder::from_unix_timestamp_millis(unix_millis, &random).into_uuid());
        }
    }

    /// A moment in the window, busier in working hours and on weekdays.
    fn diurnal_ms(&mut self) -> i64 {
        let (begin, end) = (self.world.begin_ms, self.world.end_ms);
        let mut millis = begin;
        for _ in 0..64 {
            millis = self.rng.random_range(begin..end);
            let Some(ts) = DateTime::from_timestamp_millis(millis) else {
                break;
            };
            let weekend = matches!(ts.weekday(), Weekday::Sat | Weekday::Sun);
            let weight = HOURLY[ts.hour() as usize] * if weekend { 0.45 } else { 1.0 };
            if self.rng.random::<f64>() < weight {
                break;
            }
        }
        millis
    }
}

/// Cache reads and writes of a call. Reads are a share of the input set by the feature (a cold
/// first call reads half as much); only Anthropic reports writes, of part of the rest.
fn cache(
    rng: &mut ChaCha8Rng,
    feature: &Feature,
    model: &Model,
    input: u64,
    call: u32,
) -> (u64, u64) {
    if input < 1_024 || feature.cache_hit <= 0.0 {
        return (0, 0);
    }
    let warmth = if call == 0 { 0.5 } else { 1.0 };
    let noise: f64 = rng.sample(StandardNormal);
    let share = (feature.cache_hit * warmth + 0.08 * noise).clamp(0.0, 0.97);
    let read = (input as f64 * share) as u64;
    if model.provider != "anthropic" {
        return (read, 0);
    }
    let write_share = (feature.cache_hit + 0.1).min(0.9) * rng.random_range(0.5..1.0);
    (read, ((input - read) as f64 * write_share) as u64)
}

/// Splits the input into layers: the prompt's share shrinks as the run's memory grows.
fn layers(feature: &Feature, usage: &Usage, call: u32) -> Layers {
    let input = usage.input_tokens;
    let growth = (1.0 + feature.growth * f64::from(call)).min(4.0);
    let prompt = ((input as f64 * feature.prompt_share / growth) as u64).min(input);
    let tool = ((input as f64 * feature.tool_share) as u64).min(input - prompt);
    Layers {
        prompt,
        tool,
        memory: input - prompt - tool,
        response: usage.output_tokens,
    }
}

/// `standard` mostly; `batch` for offline features; sometimes `flex` or `priority` where sold.
fn service_tier(rng: &mut ChaCha8Rng, feature: &Feature, model: &Model) -> &'static str {
    if model.name.starts_with("ft:") || model.provider == "selfhosted" {
        return "standard";
    }
    if rng.random_bool(feature.batch) {
        return "batch";
    }
    match model.tiers {
        tiers if !tiers.is_empty() && rng.random_bool(0.05) => one_of(rng, tiers),
        _ => "standard",
    }
}

fn tool_call(rng: &mut ChaCha8Rng, tools: &[&str]) -> ToolCall {
    ToolCall {
        name: one_of(rng, tools).to_owned(),
        args_hash: Some(format!("{:016x}", rng.random::<u64>())),
    }
}

fn provider_index(provider: &str) -> Option<usize> {
    ["openai", "anthropic", "gemini"]
        .iter()
        .position(|name| *name == provider)
}

/// One of `items`, uniformly.
fn one_of<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

/// `yes` with probability `p`, else `no`.
fn either<T>(rng: &mut ChaCha8Rng, p: f64, yes: T, no: T) -> T {
    if rng.random_bool(p) { yes } else { no }
}

/// A sample of a lognormal distribution with the given median.
fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    let z: f64 = rng.sample(StandardNormal);
    median * (sigma * z).exp()
}

/// An index drawn with probability proportional to its weight.
fn pick(rng: &mut ChaCha8Rng, weights: impl Iterator<Item = f64> + Clone) -> usize {
    let mut draw = rng.random::<f64>() * weights.clone().sum::<f64>();
    let mut chosen = 0;
    for (index, weight) in weights.enumerate() {
        chosen = index;
        if draw < weight {
            break;
        }
        draw -= weight;
    }
    chosen
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::{HashMap, HashSet};
    use std::sync::OnceLock;

    use super::*;

    fn spec(seed: u64, events: u64) -> GenSpec {
        let end = DateTime::parse_from_rfc3339("2026-11-20T00:00:00Z")
            .unwrap()
            .to_utc();
        GenSpec {
            tenants: 50,
            days: 14,
            events,
            seed,
            end,
        }
    }

    fn generate(spec: &GenSpec) -> Vec<u8> {
        let mut out = Vec::new();
        assert_eq!(write_events(spec, &mut out, &|_| {}).unwrap(), spec.events);
        out
    }

    /// 20k events parsed back, shared by the tests.
    fn sample() -> &'static [UsageEvent] {
        static SAMPLE: OnceLock<Vec<UsageEvent>> = OnceLock::new();
        SAMPLE.get_or_init(|| {
            let text = String::from_utf8(generate(&spec(1, 20_000))).unwrap();
            text.lines()
                .map(|line| UsageEvent::from_json(line).unwrap())
                .collect()
        })
    }

    fn share(events: &[UsageEvent], test: impl Fn(&UsageEvent) -> bool) -> f64 {
        events.iter().filter(|event| test(event)).count() as f64 / events.len() as f64
    }

    #[test]
    fn every_event_parses_validates_and_falls_in_the_window() {
        let events = sample();
        assert_eq!(events.len(), 20_000);
        let end = spec(1, 0).end;
        let ids: HashSet<_> = events.iter().map(|event| event.id.unwrap()).collect();
        assert_eq!(ids.len(), events.len());
        for event in events {
            event.validate().unwrap();
            assert!(
                event.ts < end && event.ts >= end - chrono::Duration::days(14),
                "{}",
                event.ts
            );
            let (seconds, nanos) = event.id.unwrap().get_timestamp().unwrap().to_unix();
            assert_eq!(
                seconds as i64 * 1000 + i64::from(nanos / 1_000_000),
                event.ts.timestamp_millis()
            );
        }
        assert!(share(events, |event| event.layers.is_some()) > 0.85);
    }

    #[test]
    fn same_spec_same_bytes_and_another_seed_other_bytes() {
        // Three chunks, the last one partial.
        let first = generate(&spec(7, 70_000));
        assert_eq!(first, generate(&spec(7, 70_000)));
        assert_ne!(first, generate(&spec(8, 70_000)));
        assert_eq!(first.iter().filter(|byte| **byte == b'\n').count(), 70_000);
    }

    #[test]
    fn progress_is_reported_and_bad_specs_are_refused() {
        let reports = Cell::new(Vec::new());
        let report = |written| {
            let mut seen = reports.take();
            seen.push(written);
            reports.set(seen);
        };
        write_events(&spec(3, 250_000), &mut io::sink(), &report).unwrap();
        assert_eq!(reports.take(), [131_072, 229_376, 250_000]);
        assert_eq!(
            write_events(&spec(3, 0), &mut io::sink(), &report).unwrap(),
            0
        );
        let no_tenants = GenSpec {
            tenants: 0,
            ..spec(3, 10)
        };
        let error = write_events(&no_tenants, &mut io::sink(), &report).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn tenants_are_long_tailed() {
        let mut counts: HashMap<Option<&str>, usize> = HashMap::new();
        for event in sample() {
            *counts.entry(event.tenant_id.as_deref()).or_default() += 1;
        }
        counts.remove(&None);
        let mut counts: Vec<usize> = counts.into_values().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let median = counts[counts.len() / 2];
        assert!(counts[0] > 10 * median, "top {} median {median}", counts[0]);
    }

    #[test]
    fn runaway_loops_and_unpriced_models_appear() {
        let mut repeats: HashMap<(&str, &str, &str), usize> = HashMap::new();
        for event in sample() {
            for tool in &event.tools {
                let key = (
                    event.agent_run_id.as_deref().unwrap(),
                    tool.name.as_str(),
                    tool.args_hash.as_deref().unwrap(),
                );
                *repeats.entry(key).or_default() += 1;
            }
        }
        assert!(repeats.values().any(|count| *count >= 50));
        let unpriced = share(sample(), |event| {
            UNPRICED
                .iter()
                .any(|index| MODELS[*index].name == event.model)
        });
        assert!(unpriced > 0.0005 && unpriced < 0.02, "{unpriced}");
    }

    #[test]
    fn the_workload_has_every_shape_the_reports_need() {
        let events = sample();
        let hit_rate = |route: &str| {
            let calls = events
                .iter()
                .filter(|event| event.route.as_deref() == Some(route));
            let (read, input) = calls.fold((0, 0), |(read, input), event| {
                (
                    read + event.usage.cache_read_tokens,
                    input + event.usage.input_tokens,
                )
            });
            read as f64 / input as f64
        };
        assert!(hit_rate("/api/support/chat") > 0.7);
        assert!(hit_rate("/api/search/rerank") < 0.1);
        assert!(share(events, |event| event.usage.input_tokens > 200_000) > 0.0);
        assert!(share(events, |event| event.usage.cache_write_1h_tokens > 0) > 0.0);
        for event in events {
            let model = MODELS.iter().find(|model| model.name == event.model);
            let model = model.unwrap();
            assert!(model.reasoning || event.usage.reasoning_tokens == 0);
            assert!(model.provider == "anthropic" || event.usage.cache_write_tokens == 0);
            assert!(event.status == Status::Ok || event.tool_calls == 0);
            assert!(
                event.status == Status::Ok
                    || (event.error.is_some() && event.usage.output_tokens == 0)
            );
        }
        for status in [Status::Ok, Status::Error, Status::Blocked] {
            assert!(share(events, |event| event.status == status) > 0.0);
        }
        let outcomes = share(events, |event| event.outcome.is_some());
        assert!(outcomes > 0.01, "{outcomes}");
        assert!(share(events, |event| event.parent_run_id.is_some()) > 0.1);
        assert!(share(events, |event| event.tenant_id.is_none()) > 0.002);
        assert!(share(events, |event| event.user_id.is_none()) > 0.002);
        let batch = Some("batch");
        assert!(share(events, |event| event.service_tier.as_deref() == batch) > 0.01);
    }

    #[test]
    fn priced_models_are_in_the_price_table_and_unpriced_ones_are_not() {
        let book = burnrate_model::PriceBook::bundled().unwrap();
        for (index, model) in MODELS.iter().enumerate() {
            let known = book.resolve(model.provider, model.name).is_some();
            assert_eq!(known, !UNPRICED.contains(&index), "{}", model.name);
        }
    }
}
