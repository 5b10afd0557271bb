//! Any bytes as a LiteLLM price table (`burnrate prices import`, `[prices] update_from`) or a
//! TOML overrides file: never a panic, and every price that reads can cost even `u64::MAX`
//! tokens of each class (more than an event may record) without overflowing.
#![no_main]

use burnrate_model::prices::{litellm, overrides};
use burnrate_model::{PriceBook, ServiceTier, Usage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let most = Usage {
        input_tokens: u64::MAX,
        cache_read_tokens: u64::MAX / 2,
        cache_write_tokens: u64::MAX / 4,
        cache_write_1h_tokens: u64::MAX / 8,
        output_tokens: u64::MAX,
        reasoning_tokens: u64::MAX,
    };
    if let Ok(table) = litellm::parse(text) {
        for prices in table.values() {
            for tier in [
                ServiceTier::Standard,
                ServiceTier::Batch,
                ServiceTier::Flex,
                ServiceTier::Priority,
            ] {
                let _ = prices.rates(tier, u64::MAX).cost(&most);
                let _ = prices.rates(tier, 0).naive_cost(&most);
            }
        }
    }
    if let Ok(parsed) = overrides::parse(text) {
        let mut book = PriceBook::default();
        overrides::apply(&mut book, &parsed, "fuzz.toml");
        for (_, version) in book.versions() {
            let _ = version
                .prices
                .rates(ServiceTier::Priority, u64::MAX)
                .cost(&most);
        }
    }
});
