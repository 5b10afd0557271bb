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
