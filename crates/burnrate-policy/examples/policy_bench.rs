//! What enforcement costs per call, in process: `Policy::admit` then `Policy::settle` for a
//! stream of calls (varying users, features and agent runs), with the rules of a policy file,
//! in memory or in Redis.
//!
//! `cargo run --release --example policy_bench -p burnrate-policy -- POLICY.toml [REDIS_URL]`
//! (the `[policy]` table of POLICY.toml; bench/policy/memory.toml is the gateway benchmark's).
//! Prints per-call percentiles of admission, settlement and the answer-cache key.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark program")]

use std::time::Instant;

use burnrate_model::{Money, PriceBook, ServiceTier};
use burnrate_policy::state::memory::MemoryState;
use burnrate_policy::state::redis::RedisState;
use burnrate_policy::{Admission, CallFacts, Outcome, Policy, PolicyConfig, State};

const CALLS: usize = 50_000;

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    policy: PolicyConfig,
}

fn percentile(sorted: &[u128], p: usize) -> u128 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn report(name: &str, mut nanos: Vec<u128>) {
    nanos.sort_unstable();
    let mean = nanos.iter().sum::<u128>() / nanos.len() as u128;
    println!(
        "| {name} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs |",
        mean as f64 / 1e3,
        percentile(&nanos, 50) as f64 / 1e3,
        percentile(&nanos, 99) as f64 / 1e3,
        percentile(&nanos, 100) as f64 / 1e3
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: policy_bench POLICY.toml [REDIS_URL]");
    let file: File = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let config = file.policy;
    let state = match args.next() {
        Some(url) => State::Redis(RedisState::connect(&url).await.unwrap()),
        None => State::Memory(MemoryState::new()),
    };
    let backend = if matches!(state, State::Redis(_)) {
        "redis"
    } else {
        "memory"
    };
    let policy = Policy::new(state, &config);
    let book = PriceBook::bundled().unwrap();
    let body = include_str!("request.json").as_bytes();
    let cost: Money = "0.000123".parse().unwrap();

    let (mut admit, mut settle, mut key, mut scan) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in 0..CALLS {
        let user = format!("u_{}", n % 500);
        let run = format!("run-{}", n / 8);
        let started = Instant::now();
        let cache_key = burnrate_policy::request_key("bench-tenant", "chat", body);
        key.push(started.elapsed().as_nanos());
        let started = Instant::now();
        let input = burnrate_policy::input_shape(body);
        scan.push(started.elapsed().as_nanos());
        let call = CallFacts {
            now: chrono::Utc::now(),
            tenant: "bench-tenant",
            user: Some(&user),
            feature: Some(["inbox-triage", "search", "summarise"][n % 3]),
            key_id: "bench",
            run: Some(&run),
            parent_run: None,
            provider: "openai",
            model: "gpt-4.1-mini",
            tier: ServiceTier::Standard,
            body_bytes: body.len() as u64,
            input,
            max_output: Some(64),
            choices: 1,
            cache_key,
        };
        let started = Instant::now();
        let admission = policy.admit(&config, &book, &call).await.unwrap();
        admit.push(started.elapsed().as_nanos());
        let Admission::Proceed(ticket) = admission else {
            panic!("the benchmark's limits must let every call through");
        };
        let outcome = Outcome {
            cost: Some(cost),
            tokens: 300,
            tool_calls: 1,
            tools: vec![format!("get_order:{n:x}")],
            usage_known: true,
        };
        let started = Instant::now();
        policy
            .settle(&config, &ticket, call.now, &outcome)
            .await
            .unwrap();
        settle.push(started.elapsed().as_nanos());
    }
    println!("{CALLS} calls, state in {backend}, policy {path}");
    println!();
    println!("| step | mean | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    report("admit", admit);
    report("settle", settle);
    report("answer-cache key (671 B body)", key);
    report("input scan (671 B body)", scan);
}
