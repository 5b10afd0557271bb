//! The reference multi-tenant scenario (`burnrate gen-events --scenario reference`): 40
//! tenants with 5-50 users each on an inbox-triage agent, over 30 days by default.
//!
//! - 34 healthy tenants on a bundled plan of $4,750 a month, spending about $500 each;
//! - 4 power users on a $3,000 plan spending about $2,500 each, steadily: they should move
//!   up a tier;
//! - 2 tenants whose integration starts looping on a failing tool call 10 days before the
//!   end (the same tool with the same arguments 8 times a run, and many more runs), on a
//!   $3,250 plan: runaways.
//!
//! About $34,000 of spend against $180,000 of contracted revenue. The contracts are written
//! as `[[contracts]]` TOML for the gateway's configuration.

use std::fmt::Write as _;
use std::io::{self, Write};

use burnrate_model::{Outcome, Status, ToolCall, Usage, UsageEvent};
use chrono::{DateTime, Days, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Tenants of the scenario.
pub const TENANTS: usize = 40;
/// Indexes of the power users.
pub const POWER_USERS: [usize; 4] = [3, 11, 19, 27];
/// Indexes of the tenants with the tool-call loop.
pub const LOOPING: [usize; 2] = [7, 23];
/// The loop starts this many days before the end.
pub const LOOP_DAYS: u64 = 10;

/// A tenant's id in the scenario.
pub fn tenant_id(index: usize) -> String {
    format!("ref-{:02}", index + 1)
}

/// What kind of tenant `index` is.
fn kind(index: usize) -> (&'static str, f64, u64) {
    // (tier, dollars a day before any loop, monthly fee)
    if POWER_USERS.contains(&index) {
        ("team", 83.0, 3_000)
    } else if LOOPING.contains(&index) {
        ("team", 16.7, 3_250)
    } else {
        ("business", 16.7, 4_750)
    }
}

/// Dollars a day while the loop runs.
const LOOP_DAY_USD: f64 = 317.0;
/// A call's cost is about this (gpt-4.1: 80k uncached input, 20k cached, 1k output).
const CALL_USD: f64 = 0.178;

/// The `[[contracts]]` of the scenario.
pub fn contracts_toml() -> String {
    let mut out = String::from(
        "# The reference scenario's contracts (burnrate gen-events --scenario reference).\n",
    );
    for index in 0..TENANTS {
        let (tier, _, fee) = kind(index);
        let _ = write!(
            out,
            "\n[[contracts]]\ntenant = \"{}\"\nkind = \"bundled\"\nmonthly_fee_usd = \"{fee}\"\ntier = \"{tier}\"\n",
            tenant_id(index)
        );
    }
    out
}

/// Writes the scenario's events as JSONL over the `days` days before `end`; returns how
/// many it wrote.
pub fn write_events(
    out: &mut dyn Write,
    end: DateTime<Utc>,
    days: u64,
    seed: u64,
) -> io::Result<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = end - Days::new(days);
    let mut written = 0;
    for index in 0..TENANTS {
        let tenant = tenant_id(index);
        let users = rng.random_range(5..=50u32);
        let (_, daily_usd, _) = kind(index);
        for day in 0..days {
            let looping = LOOPING.contains(&index) && day + LOOP_DAYS >= days;
            let usd = if looping { LOOP_DAY_USD } else { daily_usd };
            let calls = (usd / CALL_USD * rng.random_range(0.9..1.1)).round() as u64;
            let day_start = start + Days::new(day);
            let mut call = 0;
            let mut run = 0;
            while call < calls {
                run += 1;
                let run_id = format!("{tenant}-d{day}-r{run}");
                let user = format!("u{:02}", rng.random_range(1..=users));
                let length = if looping {
                    8
                } else {
                    rng.random_range(3..=6u64)
                };
                let stuck = format!("{:016x}", rng.random::<u64>());
                for step in 0..length.min(calls - call) {
                    let ms = rng.random_range(0..86_400_000i64);
                    let ts = day_start + chrono::TimeDelta::milliseconds(ms);
                    let args_hash = if looping {
                        stuck.clone()
                    } else {
                        format!("{:016x}", rng.random::<u64>())
                    };
                    let scale = rng.random_range(0.8..1.2);
                    let usage = Usage {
                        input_tokens: (100_000.0 * scale) as u64,
                        cache_read_tokens: (20_000.0 * scale) as u64,
                        output_tokens: (1_000.0 * scale) as u64,
                        ..Usage::default()
                    };
                    let mut event =
                        UsageEvent::new(ts, "openai".into(), "gpt-4.1-2025-04-14".into(), usage);
                    event.id = Some(uuid::Uuid::from_u128(rng.random()));
                    event.source = Some("gateway".into());
                    event.operation = Some("chat".into());
                    event.tenant_id = Some(tenant.clone());
                    event.user_id = Some(user.clone());
                    event.feature = Some("inbox-triage".into());
                    event.route = Some("/v1/chat/completions".into());
                    event.agent_run_id = Some(run_id.clone());
                    event.session_id = Some(run_id.clone());
                    event.agent_name = Some("triage".into());
                    event.tool_calls = 1;
                    event.tools = vec![ToolCall {
                        name: if looping {
                            "fetch_thread".into()
                        } else {
                            "label_email".into()
                        },
                        args_hash: Some(args_hash),
                    }];
                    event.status = Status::Ok;
                    if step + 1 == length && !looping {
                        event.outcome = Some(Outcome {
                            name: "email_triaged".into(),
                            success: true,
                        });
                    }
                    serde_json::to_writer(&mut *out, &event)?;
                    out.write_all(b"\n")?;
                    written += 1;
                    call += 1;
                }
            }
        }
    }
    Ok(written)
}
