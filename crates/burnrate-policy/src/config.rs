//! The `[policy]` table: what is enforced, and how. Parsed with serde (unknown keys are
//! errors), then [`PolicyConfig::validate`] checks what types alone cannot, naming each key.

use std::collections::BTreeMap;

use burnrate_model::Money;
use burnrate_model::prices::ServiceTier;
use chrono_tz::Tz;
use serde::Deserialize;

/// Whether a rule refuses calls or only records what it would have refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Refuse what breaks the rule.
    #[default]
    Enforce,
    /// Evaluate and record every decision, refuse nothing.
    Shadow,
}

/// Whose calls a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The call's tenant.
    Tenant,
    /// The call's user.
    User,
    /// The call's feature.
    Feature,
    /// The virtual key the call used.
    Key,
}

impl Scope {
    /// The scope's name in keys, errors and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Tenant => "tenant",
            Scope::User => "user",
            Scope::Feature => "feature",
            Scope::Key => "key",
        }
    }
}

/// A calendar period a budget resets on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// From midnight to midnight in the policy's time zone.
    Day,
    /// From the first of the month to the first of the next, in the policy's time zone.
    Month,
}

impl Period {
    /// The period's name in keys, errors and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }
}

/// The whole `[policy]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// `enforce` (default) or `shadow` for every rule.
    pub mode: Mode,
    /// IANA time zone the day and month budgets follow (default `UTC`).
    pub timezone: Tz,
    /// What to do with a call under a budget whose model has no price: refuse it (default),
    /// since its cost cannot be reserved, or let it through uncounted.
    pub unpriced: Unpriced,
    /// The tier a call that names none (or `auto`) is reserved at: `priority` (default),
    /// because a project whose default tier is priority bills such calls there; `standard`
    /// when every project behind the gateway is known to default to standard.
    pub auto_tier: AutoTier,
    /// How long a budget reservation holds without settlement (default 3600 s). A call that
    /// never settles (a lost reply, a crashed replica) stops blocking its budget after this;
    /// a call still running after it keeps its spend but no longer its reservation, so it
    /// must exceed the longest call (`server.upstream_timeout_s` and the longest stream).
    pub reservation_ttl_s: i64,
    /// `[[policy.rate_limits]]`.
    pub rate_limits: Vec<RateLimitRule>,
    /// `[[policy.budgets]]`.
    pub budgets: Vec<BudgetRule>,
    /// `[policy.ladder]`: degradation as a budget nears its cap.
    pub ladder: Ladder,
    /// `[policy.fallbacks]`: model → cheaper model for the ladder's first rung.
    pub fallbacks: BTreeMap<String, String>,
    /// `[policy.upgrade]`: what a quota error tells the caller to do.
    pub upgrade: Upgrade,
    /// `[policy.kill_switch]`.
    pub kill_switch: KillSwitch,
    /// `[policy.runs]`: agent-run limits.
    pub runs: RunLimits,
}

impl Default for PolicyConfig {
    fn default() -> PolicyConfig {
        PolicyConfig {
            mode: Mode::Enforce,
            timezone: Tz::UTC,
            unpriced: Unpriced::Refuse,
            auto_tier: AutoTier::Priority,
            reservation_ttl_s: 3_600,
            rate_limits: Vec::new(),
            budgets: Vec::new(),
            ladder: Ladder::default(),
            fallbacks: BTreeMap::new(),
            upgrade: Upgrade::default(),
            kill_switch: KillSwitch::default(),
            runs: RunLimits::default(),
        }
    }
}

/// What a budget does with a model it cannot price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unpriced {
    /// Refuse the call, naming the model (add a price override to allow it).
    Refuse,
    /// Let the call through without counting it against the budget.
    Allow,
}

/// The tier budgets reserve for calls that leave the tier to the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoTier {
    /// Reserve at priority prices (standard where a model has none).
    Priority,
    /// Reserve at standard prices.
    Standard,
}

impl PolicyConfig {
    /// The tier a call asking for `requested` (its `service_tier`, if any) is reserved at:
    /// the tier it names, or for none and `auto` the one [`PolicyConfig::auto_tier`] says.
    pub fn reservation_tier(&self, requested: Option<&str>) -> ServiceTier {
        match requested {
            None | Some("auto") if self.auto_tier == AutoTier::Priority => ServiceTier::Priority,
            other => ServiceTier::from_event(other),
        }
    }
}

/// One `[[policy.rate_limits]]` rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitRule {
    /// `tenant`, `user` or `key`.
    pub scope: Scope,
    /// One id, or `*` for a separate limit for each id.
    #[serde(default = "every_id")]
    pub id: String,
    /// Requests per minute.
    pub requests_per_minute: Option<u64>,
    /// Tokens per minute: the input bound plus the output reserve up front, corrected after.
    pub tokens_per_minute: Option<u64>,
    /// Overrides the policy's mode for this rule.
    pub mode: Option<Mode>,
}

/// One `[[policy.budgets]]` rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetRule {
    /// `tenant`, `user` or `feature`.
    pub scope: Scope,
    /// One id, or `*` for a separate budget for each id.
    #[serde(default = "every_id")]
    pub id: String,
    /// `day` or `month`.
    pub period: Period,
    /// The hard cap in dollars (a decimal string, `"250"`).
    pub limit_usd: Money,
    /// Overrides the policy's mode for this rule.
    pub mode: Option<Mode>,
}

fn every_id() -> String {
    "*".into()
}

/// `[policy.ladder]`: the rungs before a quota error, as fractions of a budget's cap.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ladder {
    /// From this share of a cap (spent plus reserved), calls go to the fallback model.
    pub fallback_at: f64,
    /// From this share of a cap, a repeated identical request is answered from the cache.
    pub cache_at: f64,
    /// How long a cached answer stays usable, in seconds (0 turns the cache off).
    pub cache_ttl_s: u64,
    /// Memory the answer cache may use, in MiB.
    pub cache_max_mib: u64,
    /// After a tenant crosses a daily cap its rate limits shrink to this share until the day ends.
    pub capped_rate_fraction: f64,
}

impl Default for Ladder {
    fn default() -> Ladder {
        Ladder {
            fallback_at: 0.8,
            cache_at: 0.9,
            cache_ttl_s: 3600,
            cache_max_mib: 64,
            capped_rate_fraction: 0.1,
        }
    }
}

/// `[policy.upgrade]`: the way out a quota error offers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Upgrade {
    /// Shown to the caller.
    pub message: String,
    /// Where to raise the limit, if anywhere.
    pub url: Option<String>,
}

impl Default for Upgrade {
    fn default() -> Upgrade {
        Upgrade {
            message: "Contact your administrator to raise the budget.".into(),
            url: None,
        }
    }
}

/// `[policy.kill_switch]`: pauses a tenant whose hourly spend is far above its own baseline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KillSwitch {
    /// On by default.
    pub enabled: bool,
    /// z-score of this hour's spend against the same hour on earlier days that pauses.
    pub z_threshold: f64,
    /// Earlier days the baseline covers (at least 7); a tenant with less history is never
    /// paused automatically.
    pub baseline_days: u32,
    /// Spend this hour below this never pauses (keeps pennies from paging anyone).
    pub min_hour_spend_usd: Money,
    /// Lower bound of the baseline's standard deviation, so a flat baseline does not turn
    /// every cent above it into an infinite z-score.
    pub min_stddev_usd: Money,
    /// Overrides the policy's mode for this rule.
    pub mode: Option<Mode>,
}

impl Default for KillSwitch {
    fn default() -> KillSwitch {
        KillSwitch {
            enabled: true,
            z_threshold: 4.0,
            baseline_days: 7,
            min_hour_spend_usd: Money::from_decimal(1.into()),
            min_stddev_usd: Money::from_decimal(rust_decimal::Decimal::new(1, 2)),
            mode: None,
        }
    }
}

/// `[policy.runs]`: limits per `agent_run_id`; a sub-agent's tokens and tool calls count for
/// its own run and every run above it (through `parent_run_id`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunLimits {
    /// Input plus output tokens over the whole run, its sub-agents' included.
    pub max_tokens: u64,
    /// Tool calls the model asked for over the whole run, its sub-agents' included.
    pub max_tool_calls: u64,
    /// Sub-agent depth through `parent_run_id` (a run without a parent is depth 0).
    pub max_depth: u64,
    /// The loop detector: the same tool with the same normalised arguments this many times
    /// in one run stops it.
    pub loop_repeats: u64,
    /// A run idle this long is forgotten, in seconds.
    pub idle_ttl_s: u64,
    /// The adaptive limit: stop a run once it has cost this many times the median run of
    /// its feature over the last `adaptive_days` (off when unset).
    pub adaptive_multiple: Option<f64>,
    /// Days of history the median is taken over.
    pub adaptive_days: u64,
    /// A feature needs this many runs in that history before its runs are limited.
    pub adaptive_min_runs: u64,
    /// Overrides the policy's mode for this rule.
    pub mode: Option<Mode>,
}

impl Default for RunLimits {
    fn default() -> RunLimits {
        RunLimits {
            max_tokens: 500_000,
            max_tool_calls: 50,
            max_depth: 3,
            loop_repeats: 5,
            idle_ttl_s: 86_400,
            adaptive_multiple: None,
            adaptive_days: 7,
            adaptive_min_runs: 20,
            mode: None,
        }
    }
}

impl PolicyConfig {
    /// The mode a rule runs in: its own, else the policy's.
    pub fn mode_of(&self, rule: Option<Mode>) -> Mode {
        if self.mode == Mode::Shadow {
            return Mode::Shadow;
        }
        rule.unwrap_or(self.mode)
    }

    /// Every problem the types cannot catch, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (index, rule) in self.rate_limits.iter().enumerate() {
            let at = format!("policy.rate_limits[{index}]");
            if rule.scope == Scope::Feature {
                problems.push(format!(
                    "{at}.scope: rate limits apply to tenant, user or key"
                ));
            }
            if rule.requests_per_minute.is_none() && rule.tokens_per_minute.is_none() {
                problems.push(format!(
                    "{at}: set requests_per_minute, tokens_per_minute or both"
                ));
            }
            for (name, value) in [
                ("requests_per_minute", rule.requests_per_minute),
                ("tokens_per_minute", rule.tokens_per_minute),
            ] {
                if value == Some(0) {
                    problems.push(format!("{at}.{name}: must be at least 1"));
                }
            }
            check_id(&mut problems, &at, &rule.id);
        }
        for (index, rule) in self.budgets.iter().enumerate() {
            let at = format!("policy.budgets[{index}]");
            if rule.scope == Scope::Key {
                problems.push(format!(
                    "{at}.scope: budgets apply to tenant, user or feature"
                ));
            }
            if rule.limit_usd <= Money::ZERO {
                problems.push(format!("{at}.limit_usd: must be more than zero"));
            }
            check_id(&mut problems, &at, &rule.id);
        }
        if self.reservation_ttl_s < 60 {
            problems.push(format!(
                "policy.reservation_ttl_s: must be at least 60 seconds (and longer than the \
                 longest call), not {}",
                self.reservation_ttl_s
            ));
        }
        let ladder = &self.ladder;
        for (name, value) in [
            ("fallback_at", ladder.fallback_at),
            ("cache_at", ladder.cache_at),
            ("capped_rate_fraction", ladder.capped_rate_fraction),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                problems.push(format!(
                    "policy.ladder.{name}: must be a share above 0 and at most 1, not {value}"
                ));
            }
        }
        for (from, to) in &self.fallbacks {
            if from == to || to.trim().is_empty() {
                problems.push(format!(
                    "policy.fallbacks.{from}: must name a different model"
                ));
            }
        }
        let kill = &self.kill_switch;
        if kill.baseline_days < 7 {
            problems.push(format!(
                "policy.kill_switch.baseline_days: must be at least 7, not {}",
                kill.baseline_days
            ));
        }
        if !(kill.z_threshold.is_finite() && kill.z_threshold > 0.0) {
            problems.push("policy.kill_switch.z_threshold: must be above 0".into());
        }
        if kill.min_stddev_usd <= Money::ZERO {
            problems.push("policy.kill_switch.min_stddev_usd: must be more than zero".into());
        }
        let runs = &self.runs;
        for (name, value) in [
            ("max_tokens", runs.max_tokens),
            ("max_tool_calls", runs.max_tool_calls),
            ("loop_repeats", runs.loop_repeats),
            ("idle_ttl_s", runs.idle_ttl_s),
            ("adaptive_days", runs.adaptive_days),
        ] {
            if value == 0 {
                problems.push(format!("policy.runs.{name}: must be at least 1"));
            }
        }
        if let Some(multiple) = runs.adaptive_multiple
            && !(multiple.is_finite() && multiple > 1.0)
        {
            problems.push(format!(
                "policy.runs.adaptive_multiple: {multiple} must be above 1 (3 stops a run at \
                 three times its feature's median run)"
            ));
        }
        problems
    }
}

fn check_id(problems: &mut Vec<String>, at: &str, id: &str) {
    if id.trim().is_empty() {
        problems.push(format!("{at}.id: must be an id or `*`"));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn parse(text: &str) -> Result<PolicyConfig, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = parse("").unwrap();
        assert_eq!(config.mode, Mode::Enforce);
        assert_eq!(config.runs.max_tokens, 500_000);
        assert_eq!(config.runs.max_tool_calls, 50);
        assert_eq!(config.runs.max_depth, 3);
        assert_eq!(config.runs.loop_repeats, 5);
        assert_eq!(config.kill_switch.z_threshold, 4.0);
        assert_eq!(config.kill_switch.baseline_days, 7);
        assert!(config.validate().is_empty());
    }

    #[test]
    fn rules_parse_with_their_time_zone() {
        let config = parse(
            r#"
            mode = "shadow"
            timezone = "Europe/Berlin"
            [[rate_limits]]
            scope = "tenant"
            requests_per_minute = 5
            [[budgets]]
            scope = "tenant"
            id = "acme"
            period = "day"
            limit_usd = "1.00"
            mode = "enforce"
            [fallbacks]
            "gpt-4o" = "gpt-4o-mini"
            "#,
        )
        .unwrap();
        assert_eq!(config.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(config.rate_limits[0].id, "*");
        assert_eq!(config.budgets[0].limit_usd.to_string(), "1");
        // The policy's shadow mode wins over a rule's enforce.
        assert_eq!(config.mode_of(config.budgets[0].mode), Mode::Shadow);
        assert!(config.validate().is_empty());
    }

    #[test]
    fn problems_name_their_keys() {
        let config = parse(
            r#"
            [[rate_limits]]
            scope = "feature"
            [[budgets]]
            scope = "key"
            period = "month"
            limit_usd = "0"
            [ladder]
            cache_at = 1.5
            [kill_switch]
            baseline_days = 3
            "#,
        )
        .unwrap();
        let problems = config.validate().join("\n");
        for expected in [
            "policy.rate_limits[0].scope",
            "policy.rate_limits[0]: set requests_per_minute",
            "policy.budgets[0].scope",
            "policy.budgets[0].limit_usd",
            "policy.ladder.cache_at",
            "policy.kill_switch.baseline_days",
        ] {
            assert!(
                problems.contains(expected),
                "{expected} missing in {problems}"
            );
        }
        assert!(parse("timezone = \"Mars/Olympus\"").is_err());
        assert!(parse("colour = 1").is_err());
    }
}
