//! Times `layers::estimate` on the recorded request bodies and prints the figures.
//!
//! `cargo run --release -p burnrate-wire --example layers_bench [RECORDINGS_DIR]`
//!
//! The directory defaults to `$BURNRATE_FIXTURES`, then `fixtures/recordings` in the repository,
//! then `/work/shared/fixtures/recordings`. "cold" is a body whose texts the count cache has not
//! seen (each round prefixes every string with a new marker); "warm" is the same body again.

#![allow(
    clippy::print_stdout,
    reason = "a benchmark program prints its numbers"
)]

use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use burnrate_wire::{Api, layers};
use serde_json::Value;

const ROUNDS: u32 = 50;

fn main() -> Result<(), Box<dyn Error>> {
    let dir = recordings_dir().ok_or("no recordings directory: pass one as the first argument")?;
    let started = Instant::now();
    layers::warm_up();
    println!("tokenizer build (warm_up): {:?}", started.elapsed());

    let index = std::fs::read_to_string(dir.join("INDEX.tsv"))?;
    println!(
        "{:<58} {:>7} {:>9} {:>9} {:>24} {:>8}",
        "request", "bytes", "cold µs", "warm µs", "estimate p/t/m", "input"
    );
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(name), Some(provider), Some(api)) = (cols.first(), cols.get(1), cols.get(2))
        else {
            continue;
        };
        let count = |i: usize| cols.get(i).and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
        // The event's input: Anthropic's `input_tokens` leaves out cache reads and writes.
        let input = match *provider {
            "anthropic" => count(8) + count(10) + count(11),
            _ => count(8),
        };
        let api = match *api {
            "chat_completions" => Api::ChatCompletions,
            "responses" => Api::Responses,
            "embeddings" => Api::Embeddings,
            _ => Api::Messages,
        };
        let body = std::fs::read(dir.join(format!("{name}.request.json")))?;
        let request: Value = serde_json::from_slice(&body)?;

        let mut cold = Duration::ZERO;
        for round in 0..ROUNDS {
            let mut variant = request.clone();
            mark_strings(&mut variant, &format!("r{round}x{name} "));
            let variant = serde_json::to_vec(&variant)?;
            let started = Instant::now();
            layers::estimate(api, &variant)?;
            cold += started.elapsed();
        }
        let estimate = layers::estimate(api, &body)?;
        let started = Instant::now();
        for _ in 0..ROUNDS {
            layers::estimate(api, &body)?;
        }
        let warm = started.elapsed();
        println!(
            "{:<58} {:>7} {:>9.1} {:>9.1} {:>24} {:>8}",
            name,
            body.len(),
            micros(cold),
            micros(warm),
            format!("{}/{}/{}", estimate.prompt, estimate.tool, estimate.memory),
            input
        );
    }
    Ok(())
}

/// Mean microseconds per round.
fn micros(total: Duration) -> f64 {
    total.as_secs_f64() * 1e6 / f64::from(ROUNDS)
}

/// Prefixes every string of `value` with `marker`, so no text is in the count cache.
fn mark_strings(value: &mut Value, marker: &str) {
    match value {
        Value::String(text) => text.insert_str(0, marker),
        Value::Array(items) => items.iter_mut().for_each(|item| mark_strings(item, marker)),
        Value::Object(fields) => {
            for (key, item) in fields.iter_mut() {
                // Keep roles and types, which the classification reads.
                if key != "role" && key != "type" {
                    mark_strings(item, marker);
                }
            }
        }
        _ => {}
    }
}

fn recordings_dir() -> Option<PathBuf> {
    let candidates = [
        std::env::args_os().nth(1).map(PathBuf::from),
        std::env::var_os("BURNRATE_FIXTURES").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/recordings")),
        Some(PathBuf::from("/work/shared/fixtures/recordings")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|dir| dir.join("INDEX.tsv").is_file())
}
