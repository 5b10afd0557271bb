//! Each detector on synthetic ledgers: one where it must fire, one where it must not.

#![allow(clippy::unwrap_used, reason = "tests")]

use burnrate_insight::detectors::{self, Thresholds};
use burnrate_insight::economics::cache_economics;
use burnrate_insight::longtail::long_tail;
use burnrate_model::dimension::{Dimension, Field};
use burnrate_model::{Layers, ToolCall, Usage, UsageEvent};
use burnrate_store::DuckStore;
use chrono::{DateTime, Days, NaiveDate, Utc};

const DAY: &str = "2026-11-20";

fn day() -> NaiveDate {
    DAY.parse().unwrap()
}

/// A call on `back` days before DAY, at `hour`.
struct Call {
    back: u64,
    hour: u32,
    tenant: &'static str,
    route: &'static str,
    model: &'static str,
    input: u64,
    cache_read: u64,
    output: u64,
    run: Option<String>,
    tools: Vec<(&'static str, &'static str)>,
    prompt: Option<u64>,
    session: Option<String>,
    minute: u32,
}

impl Default for Call {
    fn default() -> Call {
        Call {
            back: 0,
            hour: 10,
            tenant: "acme",
            route: "/api/triage",
            model: "gpt-4o",
            input: 1_000,
            cache_read: 0,
            output: 100,
            run: None,
            tools: Vec::new(),
            prompt: None,
            session: None,
            minute: 0,
        }
    }
}

impl Call {
    fn event(self) -> UsageEvent {
        let date = day() - Days::new(self.back);
        let ts: DateTime<Utc> = format!("{date}T{:02}:{:02}:00Z", self.hour, self.minute)
            .parse()
            .unwrap();
        let usage = Usage {
            input_tokens: self.input,
            cache_read_tokens: self.cache_read,
            output_tokens: self.output,
            ..Usage::default()
        };
        let mut event = UsageEvent::new(ts, "openai".into(), self.model.into(), usage);
        event.id = Some(uuid::Uuid::now_v7());
        event.tenant_id = Some(self.tenant.into());
        event.feature = Some("inbox-triage".into());
        event.route = Some(self.route.into());
        event.agent_run_id = self.run;
        event.session_id = self.session;
        event.tool_calls = self.tools.len() as u32;
        event.tools = self
            .tools
            .iter()
            .map(|(name, hash)| ToolCall {
                name: (*name).into(),
                args_hash: Some((*hash).into()),
            })
            .collect();
        event.layers = self.prompt.map(|prompt| Layers {
            prompt,
            tool: 0,
            memory: self.input - prompt,
            response: self.output,
        });
        event.validate().unwrap();
        event
    }
}

fn store(calls: Vec<Call>) -> DuckStore {
    let mut store = DuckStore::open_in_memory().unwrap();
    let events: Vec<UsageEvent> = calls.into_iter().map(Call::event).collect();
    store.append(&events).unwrap();
    store
}

fn subjects(findings: &[detectors::Finding]) -> Vec<String> {
    findings.iter().map(|f| f.subject.clone()).collect()
}

#[test]
fn spend_spikes_fire_on_a_jump_and_not_on_steady_or_new_tenants() {
    let mut calls = Vec::new();
    for back in 1..=7 {
        // ~$1 a day each (100k output tokens of gpt-4o at $10/M), a little noise.
        let noise = back * 2_000;
        for tenant in ["steady", "spiky"] {
            calls.push(Call {
                back,
                tenant,
                output: 95_000 + noise,
                ..Call::default()
            });
        }
    }
    calls.push(Call {
        tenant: "steady",
        output: 110_000,
        ..Call::default()
    });
    calls.push(Call {
        tenant: "spiky",
        output: 500_000,
        ..Call::default()
    });
    calls.push(Call {
        tenant: "newcomer",
        output: 500_000,
        ..Call::default()
    });
    let store = store(calls);
    let findings =
        detectors::spend_spikes(&store, day(), Field::Tenant, &Thresholds::default()).unwrap();
    assert_eq!(subjects(&findings), ["tenant_id=spiky"]);
    let spike = &findings[0];
    assert!(spike.evidence["ratio"].as_f64().unwrap() > 4.5);
    assert!(spike.summary.contains("spiky"));
    assert!(spike.drill_down.contains("--filter tenant_id=spiky"));
}

#[test]
fn tool_loops_fire_at_five_identical_calls_in_a_run() {
    let mut calls = Vec::new();
    for n in 0..5 {
        calls.push(Call {
            hour: 9 + n,
            run: Some("looping".into()),
            tools: vec![("search_crm", "00000000000000aa")],
            ..Call::default()
        });
    }
    for n in 0..6 {
        // Four identical calls, then different arguments: not a loop.
        let hash = if n < 4 {
            "00000000000000bb"
        } else {
            "00000000000000cc"
        };
        calls.push(Call {
            hour: 9 + n,
            run: Some("working".into()),
            tools: vec![("search_crm", hash)],
            ..Call::default()
        });
    }
    let store = store(calls);
    let findings = detectors::tool_loops(&store, day(), &Thresholds::default()).unwrap();
    assert_eq!(subjects(&findings), ["agent_run_id=looping"]);
    assert_eq!(findings[0].evidence["calls"], 5);
    assert_eq!(findings[0].evidence["args_hash"], "00000000000000aa");
    assert_eq!(findings[0].evidence["tool"], "search_crm");
}

/// Sessions of `calls` calls on a route, each carrying `prompt` prompt tokens and a memory
/// that grows by `step` tokens a call.
fn session(back: u64, name: String, route: &'static str, calls: u32, step: u64) -> Vec<Call> {
    (0..calls)
        .map(|call| Call {
            back,
            minute: call,
            route,
            input: 2_000 + step * u64::from(call),
            prompt: Some(2_000),
            session: Some(name.clone()),
            ..Call::default()
        })
        .collect()
}

#[test]
fn memory_runaway_fires_when_a_session_outgrows_its_routes_past_sessions() {
    let mut calls = Vec::new();
    for back in 1..=7 {
        for n in 0..5 {
            // Summarised sessions: memory grows 300-700 tokens a call, then stops.
            for route in ["/api/triage", "/api/reply"] {
                calls.extend(session(
                    back,
                    format!("{route}-{back}-{n}"),
                    route,
                    6,
                    300 + 100 * n,
                ));
            }
        }
    }
    // Today on triage: one session carries its whole history (8,000 tokens more each call).
    calls.extend(session(0, "runaway".into(), "/api/triage", 8, 8_000));
    calls.extend(session(0, "normal".into(), "/api/triage", 6, 400));
    // On reply, today's sessions look like the past ones.
    calls.extend(session(0, "reply-today".into(), "/api/reply", 6, 500));
    let store = store(calls);
    let t = Thresholds::default();
    let findings = detectors::memory_runaway(&store, day(), &t).unwrap();
    assert_eq!(subjects(&findings), ["route=/api/triage"], "{findings:#?}");
    let evidence = &findings[0].evidence;
    assert_eq!(evidence["sessions_beyond"], 1);
    assert_eq!(evidence["sessions"][0]["session"], "runaway");
    assert_eq!(evidence["sessions"][0]["growth"], 7 * 8_000);
    assert_eq!(evidence["past_sessions"], 35);
    // Too little history: no p99 to trust, no finding.
    let strict = Thresholds {
        min_sessions: 36,
        ..Thresholds::default()
    };
    assert!(
        detectors::memory_runaway(&store, day(), &strict)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn cache_miss_storms_fire_when_the_hit_rate_collapses() {
    let mut calls = Vec::new();
    for back in 0..=7 {
        for n in 0..25 {
            // Both routes read 80% from the cache all week; on the day, /api/triage reads 20%.
            let storm = back == 0;
            calls.push(Call {
                back,
                hour: n % 24,
                route: "/api/triage",
                cache_read: if storm { 200 } else { 800 },
                ..Call::default()
            });
            calls.push(Call {
                back,
                hour: n % 24,
                route: "/api/search",
                cache_read: 800,
                ..Call::default()
            });
        }
    }
    let store = store(calls);
    let findings =
        detectors::cache_miss_storms(&store, day(), Field::Route, &Thresholds::default()).unwrap();
    assert_eq!(subjects(&findings), ["route=/api/triage"]);
    assert!((findings[0].evidence["hit_rate"].as_f64().unwrap() - 0.2).abs() < 1e-9);
}

#[test]
fn prompt_bloat_fires_on_ten_percent_week_over_week() {
    let mut calls = Vec::new();
    for back in 0..14 {
        let this_week = back < 7;
        for n in 0..4 {
            calls.push(Call {
                back,
                hour: n,
                route: "/api/bloating",
                input: 2_000,
                prompt: Some(if this_week { 1_200 } else { 1_000 }),
                ..Call::default()
            });
            calls.push(Call {
                back,
                hour: n,
                route: "/api/flat",
                input: 2_000,
                prompt: Some(if this_week { 1_050 } else { 1_000 }),
                ..Call::default()
            });
        }
    }
    let store = store(calls);
    let findings =
        detectors::prompt_bloat(&store, day(), Field::Route, &Thresholds::default()).unwrap();
    assert_eq!(subjects(&findings), ["route=/api/bloating"]);
    assert!((findings[0].evidence["growth"].as_f64().unwrap() - 0.2).abs() < 1e-9);
}

#[test]
fn model_drift_fires_when_calls_move_to_a_pricier_model() {
    let mut calls = Vec::new();
    for back in 0..=7 {
        for n in 0..30 {
            // /api/triage moves half its calls to gpt-4o on the day; /api/search does not.
            let drifted = back == 0 && n % 2 == 0;
            calls.push(Call {
                back,
                hour: n % 24,
                route: "/api/triage",
                model: if drifted { "gpt-4o" } else { "gpt-4o-mini" },
                ..Call::default()
            });
            calls.push(Call {
                back,
                hour: n % 24,
                route: "/api/search",
                model: if n % 3 == 0 { "gpt-4o" } else { "gpt-4o-mini" },
                ..Call::default()
            });
        }
    }
    let store = store(calls);
    let findings =
        detectors::model_drift(&store, day(), Field::Route, &Thresholds::default()).unwrap();
    assert_eq!(subjects(&findings), ["route=/api/triage"]);
    assert_eq!(findings[0].evidence["model"], "gpt-4o");
    assert!((findings[0].evidence["share"].as_f64().unwrap() - 0.5).abs() < 1e-9);
}

#[test]
fn all_detectors_together_and_the_economics() {
    let mut calls = Vec::new();
    for (tenant, output) in [
        ("a", 1_000_000),
        ("b", 100_000),
        ("c", 100_000),
        ("d", 50_000),
    ] {
        calls.push(Call {
            tenant,
            output,
            cache_read: 500,
            ..Call::default()
        });
    }
    let store = store(calls);
    let findings = detectors::all(&store, day(), &Thresholds::default()).unwrap();
    assert!(
        findings.is_empty(),
        "one quiet day has nothing to report: {findings:?}"
    );
    let since = detectors_day_start();
    let until = since + chrono::Duration::days(1);
    let tail = long_tail(&store, &Dimension::Field(Field::Tenant), since, until, &[]).unwrap();
    assert_eq!(tail.members.len(), 4);
    assert_eq!(tail.members[0].name, "a");
    assert_eq!(tail.members_for_half, 1);
    assert!(
        tail.sentence()
            .starts_with("1 of 4 tenants — 25% of the book — consume")
    );
    let economics = cache_economics(&store, None, since, until).unwrap();
    assert_eq!(economics.len(), 1);
    let total = &economics[0];
    // Half of every input was read from the cache at half price: caching saved money, and a
    // naive dashboard over-reports.
    assert!(total.saved_usd > burnrate_model::Money::ZERO);
    assert!(total.over_report.unwrap() > 0.0);
    assert_eq!(total.cache_hit_rate, Some(0.5));
}

fn detectors_day_start() -> DateTime<Utc> {
    format!("{DAY}T00:00:00Z").parse().unwrap()
}

#[test]
fn baselines_compare_an_hour_with_the_same_hour_of_past_days() {
    use burnrate_insight::baseline::{Window, baselines};
    use burnrate_store::Metric;
    let mut calls = Vec::new();
    for back in 0..=7 {
        // Mornings are busy (100k then 120k output tokens), nights quiet; today's morning
        // doubles.
        let morning = if back == 0 {
            200_000
        } else {
            90_000 + back * 5_000
        };
        calls.push(Call {
            back,
            hour: 9,
            output: morning,
            ..Call::default()
        });
        calls.push(Call {
            back,
            hour: 3,
            output: 10_000,
            ..Call::default()
        });
    }
    let store = store(calls);
    let tenant = Dimension::Field(Field::Tenant);
    let nine = baselines(&store, &tenant, Metric::CostUsd, day(), Window::Hour(9), 7).unwrap();
    assert_eq!(nine.len(), 1);
    let acme = &nine[0];
    assert_eq!(acme.member, "acme");
    assert!((acme.value - 2.0).abs() < 0.02, "{acme:?}");
    // 0.95 .. 1.25 dollars, mean 1.10.
    assert!((acme.mean - 1.1).abs() < 0.02, "{acme:?}");
    assert!(acme.z.unwrap() > 8.0, "{acme:?}");
    // The night is what it always was: no variation, no z.
    let three = baselines(&store, &tenant, Metric::CostUsd, day(), Window::Hour(3), 7).unwrap();
    assert_eq!(three[0].z, None, "{:?}", three[0]);
    assert!((three[0].value - three[0].mean).abs() < 1e-9);
    // The whole day: the morning's jump diluted by nothing else that moved.
    let whole = baselines(&store, &tenant, Metric::CostUsd, day(), Window::Day, 7).unwrap();
    assert!((whole[0].value - 2.1).abs() < 0.02, "{:?}", whole[0]);
}

#[test]
fn each_contract_kind_bills_its_way_and_bad_contracts_are_named() {
    use burnrate_insight::margins::{self, Contract, Kind, revenue};
    use burnrate_model::Money;
    use rust_decimal::Decimal;
    let usd = |text: &str| text.parse::<Money>().unwrap();
    let contract = |kind, markup: Option<&str>, fee: Option<&str>, per: Option<&str>| Contract {
        tenant: "acme".into(),
        kind,
        markup: markup.map(|m| m.parse().unwrap()),
        monthly_fee_usd: fee.map(usd),
        included_usd: None,
        price_per_outcome_usd: per.map(usd),
        tier: None,
        signup: None,
    };
    let half = Decimal::new(5, 1);
    let pass = contract(Kind::PassThrough, Some("0.25"), None, None);
    assert_eq!(revenue(&pass, usd("80"), 0, half), usd("100"));
    let bundled = contract(Kind::Bundled, None, Some("300"), None);
    assert_eq!(revenue(&bundled, usd("80"), 0, half), usd("150"));
    // With an allowance of $100 a month (half: $50), $30 of the $80 is overage, marked up.
    let capped = Contract {
        included_usd: Some(usd("100")),
        markup: Some("0.5".parse().unwrap()),
        ..bundled.clone()
    };
    assert_eq!(revenue(&capped, usd("80"), 0, half), usd("195"));
    assert_eq!(revenue(&capped, usd("40"), 0, half), usd("150"));
    let outcome = contract(Kind::Outcome, None, None, Some("0.40"));
    assert_eq!(revenue(&outcome, usd("80"), 250, half), usd("100"));
    let broken = [
        contract(Kind::Bundled, None, None, None),
        contract(Kind::PassThrough, Some("-0.1"), None, None),
    ];
    let problems = margins::validate(&broken);
    assert!(
        problems
            .iter()
            .any(|p| p == "contracts[0].monthly_fee_usd: required for kind Bundled"),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("contracts[1].tenant: `acme` already")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("contracts[1]: prices")),
        "{problems:?}"
    );
}

#[test]
fn the_forecast_projects_the_last_weeks_pace_against_the_budget() {
    use burnrate_insight::forecast::forecasts;
    use burnrate_model::Money;
    // acme spends about $1 a day (100k output tokens of gpt-4o) from Nov 13 to Nov 20.
    let calls: Vec<Call> = (0..=7)
        .map(|back| Call {
            back,
            output: 100_000,
            input: 0,
            ..Call::default()
        })
        .collect();
    let store = store(calls);
    let budgets = [("acme".to_string(), "5".parse::<Money>().unwrap())].into();
    let forecast = forecasts(&store, day(), &budgets).unwrap();
    let acme = &forecast[0];
    assert!((acme.month_to_date_usd - 8.0).abs() < 1e-9, "{acme:?}");
    // Ten days left at $1 a day, no variation in the last week: no band.
    assert!((acme.projected_usd - 18.0).abs() < 1e-9, "{acme:?}");
    assert!((acme.high_usd - acme.low_usd).abs() < 1e-9, "{acme:?}");
    assert!(acme.over_budget);
    let generous = [("*".to_string(), "50".parse::<Money>().unwrap())].into();
    assert!(!forecasts(&store, day(), &generous).unwrap()[0].over_budget);
}
