//! The demo tenants' last two weeks, written straight into the ledger before the gateway
//! starts (as `burnrate import` would), so today's traffic has baselines to be compared with:
//! the anomaly detectors, the report's day-over-day columns and the dashboard's charts.
//!
//! Each habit is one kind of agent run as the live workload makes it, with the token counts
//! its calls come to through the mock provider; a day has about as many runs as today has.

use burnrate_model::{Outcome, ToolCall, Usage, UsageEvent};
use chrono::{DateTime, Days, Duration, NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One call of a run.
struct Step {
    /// The agent making it; sub-agents run under the coordinator's run.
    agent: &'static str,
    sub_agent: bool,
    provider: &'static str,
    model: &'static str,
    /// Input tokens (cache reads and writes included), cache reads, output tokens.
    input: u64,
    cache_read: u64,
    output: u64,
    /// The tool the model asked for, if any.
    tool: Option<&'static str>,
}

/// A kind of run a tenant makes every day.
struct Habit {
    tenant: &'static str,
    feature: &'static str,
    route: &'static str,
    prompt_version: Option<&'static str>,
    runs_per_day: u32,
    users: u32,
    steps: &'static [Step],
    /// Successful outcomes per ten runs, and their name.
    outcome: Option<(&'static str, u32)>,
}

const fn step(
    agent: &'static str,
    sub_agent: bool,
    provider: &'static str,
    model: &'static str,
    [input, cache_read, output]: [u64; 3],
    tool: Option<&'static str>,
) -> Step {
    Step {
        agent,
        sub_agent,
        provider,
        model,
        input,
        cache_read,
        output,
        tool,
    }
}

const CLAUDE: &str = "claude-sonnet-4-5";
const MINI: &str = "gpt-4.1-mini";

// A table: one line per call reads better than rustfmt's one line per argument.
#[rustfmt::skip]
const HABITS: &[Habit] = &[
    Habit {
        tenant: "acme-corp", feature: "support-agent", route: "/api/support/chat", prompt_version: Some("v2.3"),
        runs_per_day: 36, users: 14, outcome: None,
        steps: &[
            step("coordinator", false, "anthropic", CLAUDE, [3_800, 3_500, 16], Some("search_kb")),
            step("coordinator", false, "anthropic", CLAUDE, [4_500, 3_500, 220], None),
            step("researcher", true, "openai", MINI, [1_700, 1_400, 16], Some("search_kb")),
            step("researcher", true, "openai", MINI, [3_000, 1_400, 300], None),
            step("coordinator", false, "anthropic", CLAUDE, [4_900, 3_500, 16], Some("lookup_order")),
            step("coordinator", false, "anthropic", CLAUDE, [5_600, 3_500, 220], None),
        ],
    },
    Habit {
        tenant: "acme-corp", feature: "inbox-triage", route: "/api/inbox/triage", prompt_version: Some("v1.5"),
        runs_per_day: 120, users: 40, outcome: None,
        steps: &[
            step("triager", false, "openai", MINI, [1_900, 1_536, 12], None),
        ],
    },
    Habit {
        tenant: "globex", feature: "research-agent", route: "/api/research", prompt_version: Some("v1.7"),
        runs_per_day: 24, users: 6, outcome: None,
        steps: &[
            step("coordinator", false, "openai", "gpt-4.1", [2_700, 2_304, 16], Some("web_search")),
            step("coordinator", false, "openai", "gpt-4.1", [4_700, 2_304, 400], None),
            step("coordinator", false, "openai", "gpt-4.1", [5_000, 4_352, 16], Some("fetch_page")),
            step("coordinator", false, "openai", "gpt-4.1", [7_000, 4_352, 400], None),
            step("analyst", true, "openai", "o4-mini", [1_200, 0, 208], Some("run_sql")),
            step("analyst", true, "openai", "o4-mini", [2_700, 0, 900], None),
            step("writer", true, "anthropic", CLAUDE, [4_500, 1_500, 1_500], None),
        ],
    },
    Habit {
        tenant: "initech", feature: "code-review", route: "/api/review", prompt_version: Some("v3.1"),
        runs_per_day: 30, users: 9, outcome: Some(("pr_merged", 7)),
        steps: &[
            step("reviewer", false, "anthropic", CLAUDE, [3_800, 3_000, 16], Some("read_file")),
            step("reviewer", false, "anthropic", CLAUDE, [5_300, 3_000, 350], None),
            step("reviewer", false, "anthropic", CLAUDE, [6_100, 3_000, 16], Some("run_tests")),
            step("reviewer", false, "anthropic", CLAUDE, [7_600, 3_000, 350], None),
            step("tester", true, "openai", MINI, [1_800, 0, 16], Some("run_tests")),
            step("tester", true, "openai", MINI, [2_600, 0, 600], None),
        ],
    },
    Habit {
        tenant: "umbrella", feature: "ops-agent", route: "/api/ops", prompt_version: Some("v1.2"),
        runs_per_day: 10, users: 4, outcome: None,
        steps: &[
            step("operator", false, "openai", "gpt-4.1", [2_200, 0, 16], Some("fetch_logs")),
            step("operator", false, "openai", "gpt-4.1", [3_200, 0, 200], None),
            step("operator", false, "openai", "gpt-4.1", [3_300, 0, 16], Some("fetch_logs")),
            step("operator", false, "openai", "gpt-4.1", [4_300, 0, 200], None),
        ],
    },
    Habit {
        tenant: "hooli", feature: "doc-qa", route: "/api/docs/ask", prompt_version: Some("v3.1"),
        runs_per_day: 150, users: 25, outcome: None,
        steps: &[
            step("", false, "anthropic", CLAUDE, [6_100, 6_000, 180], None),
        ],
    },
    Habit {
        tenant: "stark-labs", feature: "chat-assist", route: "/api/assist", prompt_version: Some("v1.0"),
        runs_per_day: 40, users: 5, outcome: None,
        steps: &[
            step("", false, "openai", "gpt-4.1", [4_020, 0, 150], None),
        ],
    },
];

/// A long-tail tenant's call (one per run).
const LONG_TAIL_STEPS: &[Step] = &[step("", false, "openai", MINI, [1_900, 0, 16], None)];

/// Days of history before today.
pub const DAYS: u64 = 14;

/// The events of the `DAYS` days before `today`, the same for a seed.
pub fn events(today: NaiveDate, seed: u64) -> Vec<UsageEvent> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut events = Vec::new();
    for back in (1..=DAYS).rev() {
        let day = today - Days::new(back);
        let Some(midnight) = day.and_hms_opt(0, 0, 0) else {
            continue;
        };
        let midnight = midnight.and_utc();
        for habit in HABITS {
            let runs = jitter(&mut rng, u64::from(habit.runs_per_day));
            for n in 0..runs {
                let start = midnight + Duration::seconds(rng.random_range(6 * 3600..22 * 3600));
                run(
                    &mut rng,
                    habit,
                    &format!("{day}-{n:03}"),
                    start,
                    &mut events,
                );
            }
        }
        for (tenant, calls) in super::workload::TENANTS[6..]
            .iter()
            .zip(super::workload::LONG_TAIL_CALLS)
        {
            let habit = Habit {
                tenant: tenant.id,
                feature: "inbox-triage",
                route: "/api/inbox/triage",
                prompt_version: None,
                runs_per_day: calls,
                users: 3,
                steps: LONG_TAIL_STEPS,
                outcome: None,
            };
            for n in 0..jitter(&mut rng, u64::from(calls)) {
                let start = midnight + Duration::seconds(rng.random_range(6 * 3600..22 * 3600));
                run(
                    &mut rng,
                    &habit,
                    &format!("{day}-{n:03}"),
                    start,
                    &mut events,
                );
            }
        }
    }
    events
}

/// `count` give or take 15%.
fn jitter(rng: &mut ChaCha8Rng, count: u64) -> u64 {
    let spread = count.div_ceil(7);
    rng.random_range(count.saturating_sub(spread)..=count + spread)
}

fn run(
    rng: &mut ChaCha8Rng,
    habit: &Habit,
    suffix: &str,
    start: DateTime<Utc>,
    events: &mut Vec<UsageEvent>,
) {
    let run_id = format!("{}-{}-{suffix}", habit.tenant, habit.feature);
    let user = format!("{}-u{:02}", habit.tenant, rng.random_range(0..habit.users));
    let mut ts = start;
    let last = habit.steps.len().saturating_sub(1);
    for (index, step) in habit.steps.iter().enumerate() {
        let scale = rng.random_range(0.85..1.15);
        let input = (step.input as f64 * scale) as u64;
        let usage = Usage {
            input_tokens: input,
            cache_read_tokens: step.cache_read.min(input),
            output_tokens: step.output,
            ..Usage::default()
        };
        let mut event = UsageEvent::new(ts, step.provider.into(), step.model.into(), usage);
        // These stand for calls the gateway recorded on earlier days (so the budgets rebuilt
        // at start count them); the label tells them from today's live calls.
        event.source = Some("gateway".into());
        event.labels.insert("demo".into(), "history".into());
        event.operation = Some("chat".into());
        event.tenant_id = Some(habit.tenant.into());
        event.user_id = Some(user.clone());
        event.feature = Some(habit.feature.into());
        event.route = Some(habit.route.into());
        event.deployment = Some("prod-eu".into());
        event.prompt_version = habit.prompt_version.map(Into::into);
        if !step.agent.is_empty() {
            event.agent_name = Some(step.agent.into());
            match step.sub_agent {
                true => {
                    event.agent_run_id = Some(format!("{run_id}.{}", step.agent));
                    event.parent_run_id = Some(run_id.clone());
                    event.span_depth = Some(1);
                }
                false => {
                    event.agent_run_id = Some(run_id.clone());
                    event.span_depth = Some(0);
                }
            }
        }
        if let Some(tool) = step.tool {
            event.tool_calls = 1;
            event.tools = vec![ToolCall {
                name: tool.into(),
                args_hash: None,
            }];
        }
        if index == last
            && let Some((name, per_ten)) = habit.outcome
            && rng.random_range(0..10) < per_ten
        {
            event.outcome = Some(Outcome {
                name: name.into(),
                success: true,
            });
        }
        event.duration_ms = Some(rng.random_range(400..4_000));
        ts += Duration::milliseconds(rng.random_range(1_500..9_000));
        event.ensure_id(format!("{run_id}/{index}").as_bytes());
        events.push(event);
    }
}
