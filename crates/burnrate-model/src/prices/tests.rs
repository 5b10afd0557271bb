//! Cost maths checked against hand-computed cases on the real (bundled) price table.

use chrono::NaiveDate;

use super::*;

fn book() -> PriceBook {
    PriceBook::bundled().unwrap()
}

fn usd(text: &str) -> Money {
    text.parse().unwrap()
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn usage(input: u64, read: u64, write: u64, write_1h: u64, output: u64, reasoning: u64) -> Usage {
    Usage {
        input_tokens: input,
        cache_read_tokens: read,
        cache_write_tokens: write,
        cache_write_1h_tokens: write_1h,
        output_tokens: output,
        reasoning_tokens: reasoning,
    }
}

fn cost(book: &PriceBook, provider: &str, model: &str, tier: ServiceTier, u: Usage) -> Money {
    let key = book.resolve(provider, model).unwrap();
    book.cost(&key, day("2026-11-20"), tier, &u).unwrap()
}

#[test]
fn openai_gpt41_every_class_and_tier() {
    let book = book();
    // Recorded call: 1144 input of which 1024 cached, 2 output.
    // 120 × 2e-6 + 1024 × 5e-7 + 2 × 8e-6 = 0.00024 + 0.000512 + 0.000016
    let u = usage(1144, 1024, 0, 0, 2, 0);
    assert_eq!(
        cost(
            &book,
            "openai",
            "gpt-4.1-2025-04-14",
            ServiceTier::Standard,
            u
        ),
        usd("0.000768")
    );
    // Batch: input 1e-6, output 4e-6; no batch cache-read price, so the standard 5e-7.
    // 120 × 1e-6 + 1024 × 5e-7 + 2 × 4e-6 = 0.00012 + 0.000512 + 0.000008
    assert_eq!(
        cost(&book, "openai", "gpt-4.1-2025-04-14", ServiceTier::Batch, u),
        usd("0.00064")
    );
    // Priority: input 3.5e-6, cache read 8.75e-7, output 1.4e-5.
    // 120 × 3.5e-6 + 1024 × 8.75e-7 + 2 × 1.4e-5 = 0.00042 + 0.000896 + 0.000028
    assert_eq!(
        cost(
            &book,
            "openai",
            "gpt-4.1-2025-04-14",
            ServiceTier::Priority,
            u
        ),
        usd("0.001344")
    );
    // OpenAI lists no cache-write price: writes cost the input price (4012 × 2e-6 + 8 × 2e-6).
    let writes = usage(4020, 0, 4012, 0, 4, 0);
    assert_eq!(
        cost(&book, "openai", "gpt-4.1", ServiceTier::Standard, writes),
        usd("0.008072")
    );
}

#[test]
fn openai_gpt5_flex_and_reasoning_at_output_price() {
    let book = book();
    // gpt-5 flex: input 6.25e-7, cache read 6.25e-8, output 5e-6; reasoning has no own price.
    // 213 × 6.25e-7 + 1280 × 6.25e-8 + 61 × 5e-6 + 64 × 5e-6
    //   = 0.000133125 + 0.00008 + 0.000305 + 0.00032
    let u = usage(1493, 1280, 0, 0, 125, 64);
    assert_eq!(
        cost(&book, "openai", "gpt-5-2025-08-07", ServiceTier::Flex, u),
        usd("0.000838125")
    );
    let rates = book
        .version_at("gpt-5", None)
        .unwrap()
        .prices
        .rates(ServiceTier::Flex, 1493);
    assert_eq!(rates.reasoning, rates.output);
}

#[test]
fn reasoning_uses_its_own_price_when_given() {
    let book = book();
    // dashscope/qwen-turbo: input 5e-8, output 2e-7, reasoning 5e-7.
    // 1000 × 5e-8 + 100 × 2e-7 + 400 × 5e-7 = 0.00005 + 0.00002 + 0.0002
    let u = usage(1000, 0, 0, 0, 500, 400);
    assert_eq!(
        cost(&book, "dashscope", "qwen-turbo", ServiceTier::Standard, u),
        usd("0.00027")
    );
}

#[test]
fn anthropic_sonnet45_cache_reads_and_both_write_ttls() {
    let book = book();
    // input 3e-6, 5m write 3.75e-6, 1h write 6e-6, read 3e-7, output 1.5e-5.
    // Anthropic's own counts: input 3, read 1111, write 418 (5m) → event input 1532.
    // 3 × 3e-6 + 1111 × 3e-7 + 418 × 3.75e-6 + 33 × 1.5e-5
    //   = 0.000009 + 0.0003333 + 0.0015675 + 0.000495
    let u = usage(1532, 1111, 418, 0, 33, 0);
    assert_eq!(
        cost(
            &book,
            "anthropic",
            "claude-sonnet-4-5-20250929",
            ServiceTier::Standard,
            u
        ),
        usd("0.0024048")
    );
    // 1h writes: 13 uncached + 3913 written with a 1-hour TTL, 4 output.
    // 13 × 3e-6 + 3913 × 6e-6 + 4 × 1.5e-5 = 0.000039 + 0.023478 + 0.00006
    let u = usage(3926, 0, 3913, 3913, 4, 0);
    assert_eq!(
        cost(
            &book,
            "anthropic",
            "claude-sonnet-4-6",
            ServiceTier::Standard,
            u
        ),
        usd("0.023577")
    );
    // Batch: input 1.5e-6, 5m write 1.875e-6, read 1.5e-7, output 7.5e-6.
    // 3 × 1.5e-6 + 1111 × 1.5e-7 + 418 × 1.875e-6 + 33 × 7.5e-6
    //   = 0.0000045 + 0.00016665 + 0.00078375 + 0.0002475
    let u = usage(1532, 1111, 418, 0, 33, 0);
    assert_eq!(
        cost(
            &book,
            "anthropic",
            "claude-sonnet-4-5-20250929",
            ServiceTier::Batch,
            u
        ),
        usd("0.0012024")
    );
}

#[test]
fn anthropic_above_200k_tier_chosen_by_total_input() {
    let book = book();
    let key = "anthropic.claude-sonnet-4-5-20250929-v1:0";
    let prices = &book.version_at(key, None).unwrap().prices;
    // 200,000 input tokens is not above 200k: base prices.
    let base = prices.rates(ServiceTier::Standard, 200_000);
    assert_eq!(base.input, usd("0.000003"));
    // 150k uncached + 60k cache read + 10k 1h writes = 220k total: the above-200k band.
    // 150000 × 6e-6 + 60000 × 6e-7 + 10000 × 1.2e-5 + 1000 × 2.25e-5
    //   = 0.9 + 0.036 + 0.12 + 0.0225
    let u = usage(220_000, 60_000, 10_000, 10_000, 1000, 0);
    assert_eq!(
        book.cost(key, day("2026-11-20"), ServiceTier::Standard, &u),
        Some(usd("1.0785"))
    );
    // 5m writes above 200k: 7.5e-6.
    let high = prices.rates(ServiceTier::Standard, 200_001);
    assert_eq!(high.cache_write_5m, usd("0.0000075"));
}

#[test]
fn google_gemini_tiers_and_service_tiers() {
    let book = book();
    // gemini/gemini-2.5-pro (AI Studio), not the Vertex entry of the same bare name.
    assert_eq!(
        book.resolve("gemini", "gemini-2.5-pro").as_deref(),
        Some("gemini/gemini-2.5-pro")
    );
    // Base band: input 1.25e-6, read 1.25e-7, output 1e-5.
    // 9000 × 1.25e-6 + 1000 × 1.25e-7 + 500 × 1e-5 = 0.01125 + 0.000125 + 0.005
    let small = usage(10_000, 1000, 0, 0, 500, 0);
    assert_eq!(
        cost(
            &book,
            "gemini",
            "gemini-2.5-pro",
            ServiceTier::Standard,
            small
        ),
        usd("0.016375")
    );
    // Above 200k: input 2.5e-6, read 2.5e-7, output 1.5e-5.
    // 240000 × 2.5e-6 + 10000 × 2.5e-7 + 1000 × 1.5e-5 = 0.6 + 0.0025 + 0.015
    let large = usage(250_000, 10_000, 0, 0, 1000, 0);
    assert_eq!(
        cost(
            &book,
            "gemini",
            "gemini-2.5-pro",
            ServiceTier::Standard,
            large
        ),
        usd("0.6175")
    );
    // Priority above 200k: input 4.5e-6, read 4.5e-7, output 2.7e-5.
    // 240000 × 4.5e-6 + 10000 × 4.5e-7 + 1000 × 2.7e-5 = 1.08 + 0.0045 + 0.027
    assert_eq!(
        cost(
            &book,
            "gemini",
            "gemini-2.5-pro",
            ServiceTier::Priority,
            large
        ),
        usd("1.1115")
    );
    // Batch base: input 6.25e-7, read 1.25e-7, output 5e-6.
    // 9000 × 6.25e-7 + 1000 × 1.25e-7 + 500 × 5e-6 = 0.005625 + 0.000125 + 0.0025
    assert_eq!(
        cost(&book, "gemini", "gemini-2.5-pro", ServiceTier::Batch, small),
        usd("0.00825")
    );
    // Flex above 200k has no price of its own: the standard above-200k price applies.
    assert_eq!(
        cost(&book, "gemini", "gemini-2.5-pro", ServiceTier::Flex, large),
        usd("0.6175")
    );
}

#[test]
fn naive_cost_ignores_cache_discounts() {
    let book = book();
    let rates = book
        .version_at("gpt-4.1", None)
        .unwrap()
        .prices
        .rates(ServiceTier::Standard, 0);
    // 1144 × 2e-6 + 2 × 8e-6
    assert_eq!(
        rates.naive_cost(&usage(1144, 1024, 0, 0, 2, 0)),
        usd("0.002304")
    );
}

#[test]
fn model_resolution_order() {
    let book = book();
    // The table lists some dated names itself; those win over the undated entry.
    assert_eq!(
        book.resolve("openai", "gpt-4.1-2025-04-14").as_deref(),
        Some("gpt-4.1-2025-04-14")
    );
    // Otherwise the date suffix is dropped.
    assert_eq!(
        book.resolve("openai", "gpt-4.1-2099-01-01").as_deref(),
        Some("gpt-4.1")
    );
    assert_eq!(
        book.resolve("anthropic", "claude-haiku-4-5-20991231")
            .as_deref(),
        Some("claude-haiku-4-5")
    );
    assert_eq!(
        book.resolve("openai", "gpt-4.1").as_deref(),
        Some("gpt-4.1")
    );
    assert_eq!(
        book.resolve("anthropic", "claude-sonnet-4-5-20250929")
            .as_deref(),
        Some("claude-sonnet-4-5-20250929")
    );
    assert_eq!(book.resolve("openai", "no-such-model-2025-01-01"), None);
    assert_eq!(book.resolve("selfhosted", "acme-llm-v1"), None);
}

#[test]
fn effective_dated_overrides_keep_history() {
    let mut book = book();
    let overrides = overrides::parse(
        r#"
        [[price]]
        model = "gpt-4.1"
        effective_from = "2026-12-01"
        input_cost_per_token = "0.0000018"

        [[price]]
        model = "acme-llm-v1"
        provider = "selfhosted"
        input_cost_per_token = "0.000001"
        output_cost_per_token = 2e-6
        "#,
    )
    .unwrap();
    overrides::apply(&mut book, &overrides, "overrides.toml");
    let u = usage(1000, 0, 0, 0, 100, 0);
    // Before the override: 1000 × 2e-6 + 100 × 8e-6; from it: 1000 × 1.8e-6 + 100 × 8e-6.
    assert_eq!(
        book.cost("gpt-4.1", day("2026-11-30"), ServiceTier::Standard, &u),
        Some(usd("0.0028"))
    );
    assert_eq!(
        book.cost("gpt-4.1", day("2026-12-01"), ServiceTier::Standard, &u),
        Some(usd("0.0026"))
    );
    assert_eq!(book.history("gpt-4.1").len(), 2);
    assert_eq!(
        book.resolve("selfhosted", "acme-llm-v1").as_deref(),
        Some("acme-llm-v1")
    );
    assert_eq!(
        book.cost("acme-llm-v1", day("2020-01-01"), ServiceTier::Standard, &u),
        Some(usd("0.0012"))
    );
}

#[test]
fn override_errors_name_entry_and_key() {
    let error = overrides::parse(
        r#"
        [[price]]
        model = "m"
        effective_from = "soon"
        input_cost_per_tokn = "1"
        output_cost_per_token = "-1"
        max_input_tokens = -5
        [[price]]
        input_cost_per_token = "1"
        "#,
    )
    .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("price[0].effective_from"), "{text}");
    assert!(text.contains("price[0].input_cost_per_tokn"), "{text}");
    assert!(text.contains("price[0].output_cost_per_token"), "{text}");
    assert!(text.contains("price[1].model"), "{text}");
    assert!(
        text.contains("price[0].max_input_tokens: expected a positive whole number"),
        "{text}"
    );
}

#[test]
fn overrides_set_context_limits_and_later_versions_keep_them() {
    let mut book = book();
    let overrides = overrides::parse(
        r#"
        [[price]]
        model = "acme-llm-v1"
        input_cost_per_token = "0.000001"
        max_input_tokens = 32000
        max_output_tokens = 4096
        [[price]]
        model = "acme-llm-v1"
        effective_from = "2026-12-01"
        input_cost_per_token = "0.0000005"
        "#,
    )
    .unwrap();
    overrides::apply(&mut book, &overrides, "overrides.toml");
    for date in ["2026-11-01", "2026-12-02"] {
        let prices = &book
            .version_at("acme-llm-v1", Some(day(date)))
            .unwrap()
            .prices;
        assert_eq!(prices.max_input_tokens, Some(32_000), "{date}");
        assert_eq!(prices.max_output_tokens, Some(4_096), "{date}");
    }
    let gpt = &book.version_at("gpt-4o", None).unwrap().prices;
    assert_eq!(gpt.max_input_tokens, Some(128_000));
}

#[test]
fn stale_tables_are_reported() {
    let book = book();
    let taken = book.as_of.unwrap();
    assert_eq!(book.stale_by(taken + chrono::Days::new(30), 30), None);
    assert_eq!(book.stale_by(taken + chrono::Days::new(45), 30), Some(45));
}

#[test]
fn reimporting_an_unchanged_table_adds_no_history() {
    let mut book = book();
    let table = litellm::parse(BUNDLED_LITELLM_JSON).unwrap();
    let changed = book.add_table(
        table,
        Some(day("2026-12-15")),
        "litellm:again",
        day("2026-12-15"),
    );
    assert_eq!(changed, 0);
    assert_eq!(book.history("gpt-4.1").len(), 1);
}

#[test]
fn absurd_prices_are_refused_by_name_instead_of_overflowing_a_cost() {
    let table = r#"{"m": {"litellm_provider": "p", "input_cost_per_token": 1e28, "output_cost_per_token": 1e-6}}"#;
    let outcome = std::panic::catch_unwind(|| {
        let parsed = litellm::parse(table);
        if let Ok(models) = &parsed {
            let usage = usage(1_000_000, 0, 0, 0, 1, 0);
            let _ = models["m"]
                .rates(ServiceTier::Standard, 1_000_000)
                .cost(&usage);
        }
        parsed
    });
    let error = outcome
        .expect("no panic")
        .expect_err("the price is refused");
    let text = error.to_string();
    assert!(text.contains("`m`.input_cost_per_token"), "{text}");
    let overrides = "[[price]]\nmodel = \"m\"\noutput_cost_per_token = \"5000\"\n";
    let text = overrides::parse(overrides).unwrap_err().to_string();
    assert!(text.contains("output_cost_per_token"), "{text}");
    // The dearest real price, and a dollar per token, still read.
    assert!(
        litellm::parse(r#"{"m": {"input_cost_per_token": 1, "output_cost_per_token": 0.00971}}"#)
            .is_ok()
    );
}
