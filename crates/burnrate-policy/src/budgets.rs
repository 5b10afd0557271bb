//! Where the budgets stand now: each rule's cap next to the spend and reservations its
//! counter holds, for the dashboard and the budgets endpoint.

use burnrate_model::Money;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Mode, PolicyConfig, Scope};
use crate::engine::{Policy, rule_covers, state_id};
use crate::state::{StateError, keys};
use crate::{cost, period};

/// One budget rule's state for one subject in the current period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetState {
    /// `tenant`, `user` or `feature`.
    pub scope: &'static str,
    /// The subject: a tenant, user or feature id.
    pub id: String,
    /// The tenant the subject belongs to (for a user budget; the subject itself for a
    /// tenant budget; empty for a feature budget, which is global).
    pub tenant: String,
    /// `day` or `month`.
    pub period: &'static str,
    /// The period counted: `2026-11-23`, `2026-11`.
    pub period_label: String,
    /// The cap.
    pub limit_usd: Money,
    /// Settled spend in the period.
    pub spent_usd: Money,
    /// Held by calls in flight.
    pub reserved_usd: Money,
    /// Spent plus reserved over the cap.
    pub used: f64,
    /// True when the rule refuses calls (`false`: shadow mode).
    pub enforced: bool,
}

impl Policy {
    /// The state of every budget rule that covers one of `subjects` (`(scope, tenant, id)`)
    /// in the period holding `now`, fullest first. A subject no rule covers is left out.
    pub async fn budget_states(
        &self,
        config: &PolicyConfig,
        now: DateTime<Utc>,
        subjects: &[(Scope, String, String)],
    ) -> Result<Vec<BudgetState>, StateError> {
        let mut states = Vec::new();
        let mut keys = Vec::new();
        for rule in &config.budgets {
            let span = period::span(rule.period, now, config.timezone);
            for (scope, tenant, id) in subjects {
                if *scope != rule.scope || !rule_covers(rule, id) {
                    continue;
                }
                keys.push(keys::budget(
                    rule.scope,
                    &state_id(rule.scope, tenant, id),
                    rule.period.as_str(),
                    &span.label,
                ));
                states.push(BudgetState {
                    scope: rule.scope.as_str(),
                    id: id.clone(),
                    tenant: tenant.clone(),
                    period: rule.period.as_str(),
                    period_label: span.label.clone(),
                    limit_usd: rule.limit_usd,
                    spent_usd: Money::ZERO,
                    reserved_usd: Money::ZERO,
                    used: 0.0,
                    enforced: config.mode_of(rule.mode) == Mode::Enforce,
                });
            }
        }
        let levels = self.state().budget_levels(&keys).await?;
        for (state, level) in states.iter_mut().zip(levels) {
            state.spent_usd = cost::money(level.spent);
            state.reserved_usd = cost::money(level.reserved);
            let limit = cost::nanos(state.limit_usd);
            state.used = if limit > 0 {
                level.committed() as f64 / limit as f64
            } else {
                0.0
            };
        }
        states.sort_by(|a, b| b.used.total_cmp(&a.used).then(a.id.cmp(&b.id)));
        Ok(states)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::State;
    use crate::state::memory::MemoryState;

    #[tokio::test]
    async fn states_show_the_seeded_spend_against_each_covering_rule() {
        let config: PolicyConfig = toml::from_str(
            r#"
            mode = "shadow"
            [[budgets]]
            scope = "tenant"
            period = "day"
            limit_usd = "10"
            [[budgets]]
            scope = "tenant"
            id = "acme"
            period = "month"
            limit_usd = "100"
            [[budgets]]
            scope = "user"
            period = "day"
            limit_usd = "1"
            "#,
        )
        .unwrap();
        let policy = Policy::new(State::Memory(MemoryState::new()), &config);
        let now = Utc::now();
        let money = |text: &str| text.parse::<Money>().unwrap();
        let spent = [
            ("acme".to_string(), "acme".to_string(), money("7.5")),
            ("beta".to_string(), "beta".to_string(), money("1")),
        ];
        for period in [crate::config::Period::Day, crate::config::Period::Month] {
            policy
                .seed_budgets(&config, now, Scope::Tenant, period, &spent)
                .await
                .unwrap();
        }
        let subjects = [
            (Scope::Tenant, "acme".to_string(), "acme".to_string()),
            (Scope::Tenant, "beta".to_string(), "beta".to_string()),
            (Scope::User, "acme".to_string(), "u1".to_string()),
            (Scope::Feature, String::new(), "triage".to_string()),
        ];
        let states = policy.budget_states(&config, now, &subjects).await.unwrap();
        let summary: Vec<(&str, &str, &str, String, String)> = states
            .iter()
            .map(|s| {
                (
                    s.scope,
                    s.id.as_str(),
                    s.period,
                    s.spent_usd.to_string(),
                    format!("{:.3}", s.used),
                )
            })
            .collect();
        // Fullest first; the feature has no rule; the user's budget is untouched.
        assert_eq!(
            summary,
            [
                ("tenant", "acme", "day", "7.5".into(), "0.750".into()),
                ("tenant", "beta", "day", "1".into(), "0.100".into()),
                ("tenant", "acme", "month", "7.5".into(), "0.075".into()),
                ("user", "u1", "day", "0".into(), "0.000".into()),
            ]
        );
        assert!(
            states.iter().all(|s| !s.enforced),
            "shadow mode enforces nothing"
        );
    }
}
