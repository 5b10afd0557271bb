//! Margins: what each tenant pays under its contract against what its calls cost, per tenant
//! and for the portfolio, and the segment each tenant falls in.
//!
//! Contracts come from the `[[contracts]]` tables of the configuration:
//!
//! ```toml
//! [[contracts]]
//! tenant = "acme"
//! kind = "bundled"                 # pass_through | bundled | outcome
//! monthly_fee_usd = "4500"         # bundled: a fixed fee a month
//! # included_usd = "3000"          # bundled: model cost the fee covers; above it, overage
//! # markup = "0.25"                # pass_through: cost × (1 + markup); bundled: on overage
//! # price_per_outcome_usd = "0.40" # outcome: per successful outcome
//! tier = "growth"                  # optional: the segment table groups by it
//! ```

use std::collections::BTreeMap;

use burnrate_model::Money;
use burnrate_model::dimension::{Dimension, Field};
use burnrate_store::{Cell, Metric, QuerySpec, Store, StoreError};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::detectors::Finding;
use crate::series::month_of;

/// How a tenant pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Its model cost with a markup.
    PassThrough,
    /// A fixed monthly fee, whatever it uses.
    Bundled,
    /// A price per successful outcome.
    Outcome,
}

/// One `[[contracts]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// The tenant id.
    pub tenant: String,
    /// How it pays.
    pub kind: Kind,
    /// `pass_through`: the markup on cost (`"0.25"` bills cost × 1.25).
    pub markup: Option<Decimal>,
    /// `bundled`: the monthly fee.
    pub monthly_fee_usd: Option<Money>,
    /// `bundled`: the model cost a month's fee includes; cost above it is billed as overage,
    /// with `markup` when given (no allowance: the fee covers everything).
    #[serde(default)]
    pub included_usd: Option<Money>,
    /// `outcome`: the price of one successful outcome.
    pub price_per_outcome_usd: Option<Money>,
    /// A label to group tenants by (plan, tier, region).
    pub tier: Option<String>,
    /// The month the tenant signed up, `YYYY-MM`: its cohort.
    #[serde(default)]
    pub signup: Option<String>,
}

impl Contract {
    /// When the contract starts: the first day of its `signup` month, if it has one.
    pub fn starts(&self) -> Option<DateTime<Utc>> {
        let signup = self.signup.as_ref()?;
        chrono::NaiveDate::parse_from_str(&format!("{signup}-01"), "%Y-%m-%d")
            .ok()
            .map(|first| first.and_time(chrono::NaiveTime::MIN).and_utc())
    }

    /// Whether the contract is in force at some time before `until` (a tenant pays no fee
    /// before it signed up).
    pub fn in_force_before(&self, until: DateTime<Utc>) -> bool {
        self.starts().is_none_or(|start| start < until)
    }
}

/// Checks contracts, naming each problem by its place (`contracts[2].markup`).
pub fn validate(contracts: &[Contract]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = BTreeMap::new();
    for (index, contract) in contracts.iter().enumerate() {
        let at = format!("contracts[{index}]");
        if contract.tenant.trim().is_empty() {
            problems.push(format!("{at}.tenant: must name a tenant"));
        }
        if let Some(first) = seen.insert(contract.tenant.clone(), index) {
            problems.push(format!(
                "{at}.tenant: `{}` already has a contract (contracts[{first}])",
                contract.tenant
            ));
        }
        let (needed, given) = match contract.kind {
            Kind::PassThrough => ("markup", contract.markup.is_some()),
            Kind::Bundled => ("monthly_fee_usd", contract.monthly_fee_usd.is_some()),
            Kind::Outcome => (
                "price_per_outcome_usd",
                contract.price_per_outcome_usd.is_some(),
            ),
        };
        if !given {
            problems.push(format!(
                "{at}.{needed}: required for kind {:?}",
                contract.kind
            ));
        }
        if let Some(signup) = &contract.signup
            && chrono::NaiveDate::parse_from_str(&format!("{signup}-01"), "%Y-%m-%d").is_err()
        {
            problems.push(format!("{at}.signup: `{signup}` is not a month YYYY-MM"));
        }
        if contract.included_usd.is_some() && contract.kind != Kind::Bundled {
            problems.push(format!(
                "{at}.included_usd: only a bundled contract has an included allowance"
            ));
        }
        let negative = contract.markup.is_some_and(|m| m.is_sign_negative())
            || contract.included_usd.is_some_and(Money::is_negative)
            || contract.monthly_fee_usd.is_some_and(Money::is_negative)
            || contract
                .price_per_outcome_usd
                .is_some_and(Money::is_negative);
        if negative {
            problems.push(format!("{at}: prices and markups must not be negative"));
        }
    }
    problems
}

/// Where a tenant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Margin at or above the power-user threshold.
    Healthy,
    /// Margin below the threshold from ordinary use: should move up a tier.
    PowerUser,
    /// Margin below the runaway threshold with a detector finding behind it: a bug burning
    /// money, not a customer to upsell.
    Runaway,
    /// No contract in the configuration.
    NoContract,
}

/// Margin thresholds for the segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentRules {
    /// Below this gross margin a tenant is not healthy.
    pub power_user_below: f64,
    /// Below this gross margin, with a finding, a tenant is a runaway.
    pub runaway_below: f64,
}

impl Default for SegmentRules {
    fn default() -> SegmentRules {
        SegmentRules {
            power_user_below: 0.5,
            runaway_below: 0.5,
        }
    }
}

/// One tenant's margin over a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantMargin {
    /// The tenant.
    pub tenant: String,
    /// Its contract's kind, if it has one.
    pub kind: Option<Kind>,
    /// Its contract's tier label.
    pub tier: Option<String>,
    /// Revenue over the range.
    pub revenue_usd: Money,
    /// Model cost over the range.
    pub cost_usd: Money,
    /// Revenue minus cost.
    pub margin_usd: Money,
    /// Margin over revenue (`None` without revenue).
    pub margin: Option<f64>,
    /// Calls and successful outcomes.
    pub requests: u64,
    /// Successful outcomes.
    pub outcomes: u64,
    /// Users seen.
    pub users: u64,
    /// Its segment.
    pub segment: Segment,
    /// The detector findings behind a runaway.
    pub findings: Vec<String>,
}

/// Every tenant's margin, and the portfolio's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Margins {
    /// Tenants, lowest margin first.
    pub tenants: Vec<TenantMargin>,
    /// Total revenue.
    pub revenue_usd: Money,
    /// Total cost.
    pub cost_usd: Money,
    /// Portfolio gross margin.
    pub margin: Option<f64>,
}

impl Margins {
    /// The tenants of one segment.
    pub fn in_segment(&self, segment: Segment) -> Vec<&str> {
        self.tenants
            .iter()
            .filter(|t| t.segment == segment)
            .map(|t| t.tenant.as_str())
            .collect()
    }
}

/// The share of a month `[since, until)` covers, for prorating monthly fees.
fn month_share(since: DateTime<Utc>, until: DateTime<Utc>) -> Decimal {
    let (first, next) = month_of(since.date_naive());
    let month_s = (next - first).num_seconds().max(1);
    let span_s = (until - since).num_seconds().clamp(0, month_s);
    Decimal::from(span_s) / Decimal::from(month_s)
}

/// Margins over `[since, until)` (a bundled fee is prorated by the share of the month the
/// range covers), with `findings` of the range deciding which low-margin tenants are runaways.
pub fn margins(
    store: &dyn Store,
    contracts: &[Contract],
    findings: &[Finding],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    rules: SegmentRules,
) -> Result<Margins, StoreError> {
    let mut spec = QuerySpec::new(since, until);
    spec.group_by = vec![Dimension::Field(Field::Tenant)];
    spec.metrics = vec![Metric::CostUsd, Metric::Requests, Metric::Outcomes];
    let result = store.query(&spec)?;
    let mut usage: BTreeMap<String, (Money, u64, u64)> = BTreeMap::new();
    for row in &result.rows {
        if let [Cell::Text(tenant), cost, requests, outcomes] = row.as_slice() {
            let count = |cell: &Cell| cell.as_count().unwrap_or(0);
            let cost = cost.as_money().unwrap_or(Money::ZERO);
            usage.insert(tenant.clone(), (cost, count(requests), count(outcomes)));
        }
    }
    let users = distinct_users(store, since, until)?;
    // A contract that starts after the range (its signup month) bills nothing in it.
    let in_force: Vec<&Contract> = contracts
        .iter()
        .filter(|c| c.in_force_before(until))
        .collect();
    let by_tenant: BTreeMap<&str, &Contract> =
        in_force.iter().map(|c| (c.tenant.as_str(), *c)).collect();
    let share = month_share(since, until);
    let mut names: Vec<String> = usage.keys().cloned().collect();
    for contract in in_force {
        if !usage.contains_key(&contract.tenant) {
            names.push(contract.tenant.clone());
        }
    }
    let mut tenants = Vec::new();
    for tenant in names {
        let (cost, requests, outcomes) = usage.get(&tenant).copied().unwrap_or_default();
        let contract = by_tenant.get(tenant.as_str());
        // A contract that starts within the range bills its fee from its start.
        let revenue = contract.map_or(Money::ZERO, |c| {
            let share = match c.starts() {
                Some(start) if start > since => month_share(start, until),
                _ => share,
            };
            revenue(c, cost, outcomes, share)
        });
        let margin_usd = revenue - cost;
        let margin = margin_usd.ratio(revenue);
        let tenant_findings: Vec<String> = findings
            .iter()
            .filter(|f| finding_tenant(f).as_deref() == Some(tenant.as_str()))
            .map(|f| format!("{}: {}", f.detector, f.summary))
            .collect();
        let segment = match (contract, margin) {
            (None, _) => Segment::NoContract,
            (Some(_), Some(m)) if m < rules.runaway_below && !tenant_findings.is_empty() => {
                Segment::Runaway
            }
            (Some(_), Some(m)) if m < rules.power_user_below => Segment::PowerUser,
            (Some(_), None) if cost > Money::ZERO && !tenant_findings.is_empty() => {
                Segment::Runaway
            }
            (Some(_), None) if cost > Money::ZERO => Segment::PowerUser,
            (Some(_), _) => Segment::Healthy,
        };
        tenants.push(TenantMargin {
            kind: contract.map(|c| c.kind),
            tier: contract.and_then(|c| c.tier.clone()),
            revenue_usd: revenue,
            cost_usd: cost,
            margin_usd,
            margin,
            requests,
            outcomes,
            users: users.get(&tenant).copied().unwrap_or(0),
            segment,
            findings: tenant_findings,
            tenant,
        });
    }
    tenants.sort_by(|a, b| {
        let m = |t: &TenantMargin| t.margin.unwrap_or(f64::NEG_INFINITY);
        m(a).total_cmp(&m(b)).then(a.tenant.cmp(&b.tenant))
    });
    let revenue_usd: Money = tenants.iter().map(|t| t.revenue_usd).sum();
    let cost_usd: Money = tenants.iter().map(|t| t.cost_usd).sum();
    Ok(Margins {
        margin: (revenue_usd - cost_usd).ratio(revenue_usd),
        tenants,
        revenue_usd,
        cost_usd,
    })
}

/// What a contract bills for `cost` and `outcomes` over `share` of a month.
pub fn revenue(contract: &Contract, cost: Money, outcomes: u64, share: Decimal) -> Money {
    match contract.kind {
        Kind::PassThrough => Money::from_decimal(
            cost.as_decimal() * (Decimal::ONE + contract.markup.unwrap_or_default()),
        ),
        Kind::Bundled => {
            let fee = contract.monthly_fee_usd.unwrap_or(Money::ZERO).as_decimal() * share;
            Money::from_decimal(fee) + overage(contract, cost, share)
        }
        Kind::Outcome => contract
            .price_per_outcome_usd
            .unwrap_or(Money::ZERO)
            .times(outcomes),
    }
}

/// What a bundled contract bills above its included allowance (prorated by `share` of the
/// month): the cost beyond it with the markup; zero without an allowance.
pub fn overage(contract: &Contract, cost: Money, share: Decimal) -> Money {
    let Some(included) = contract.included_usd else {
        return Money::ZERO;
    };
    let above = cost.as_decimal() - included.as_decimal() * share;
    if above <= Decimal::ZERO {
        return Money::ZERO;
    }
    Money::from_decimal(above * (Decimal::ONE + contract.markup.unwrap_or_default()))
}

/// The tenant a finding is about, from its subject or its evidence.
pub(crate) fn finding_tenant(finding: &Finding) -> Option<String> {
    if let Some(tenant) = finding.subject.strip_prefix("tenant_id=") {
        return Some(tenant.to_owned());
    }
    finding.evidence["tenant_id"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            finding.evidence["sessions"][0]["tenant_id"]
                .as_str()
                .map(str::to_owned)
        })
}

fn distinct_users(
    store: &dyn Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut spec = QuerySpec::new(since, until);
    spec.group_by = vec![
        Dimension::Field(Field::Tenant),
        Dimension::Field(Field::User),
    ];
    spec.metrics = vec![Metric::Requests];
    let result = store.query(&spec)?;
    let mut users: BTreeMap<String, u64> = BTreeMap::new();
    for row in &result.rows {
        if let [Cell::Text(tenant), Cell::Text(_user), ..] = row.as_slice() {
            *users.entry(tenant.clone()).or_default() += 1;
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundled fee is prorated by the part of the range the contract is in force: from
    /// its signup month's first day when that falls inside the range.
    #[test]
    fn a_fee_starts_with_its_contract() {
        let store = burnrate_store::DuckStore::open_in_memory().unwrap();
        let contract = |tenant: &str, signup: Option<&str>| Contract {
            tenant: tenant.into(),
            kind: Kind::Bundled,
            markup: None,
            monthly_fee_usd: Some(Money::from_decimal(Decimal::from(100))),
            included_usd: None,
            price_per_outcome_usd: None,
            tier: None,
            signup: signup.map(Into::into),
        };
        let contracts = [
            contract("old", None),
            contract("new", Some("2026-10")),
            contract("later", Some("2026-11")),
        ];
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        // Seven days, from 29 September: two in September (30 days), five in October.
        let result = margins(
            &store,
            &contracts,
            &[],
            at("2026-09-29T00:00:00Z"),
            at("2026-10-06T00:00:00Z"),
            SegmentRules::default(),
        )
        .unwrap();
        let revenue = |tenant: &str| {
            result
                .tenants
                .iter()
                .find(|t| t.tenant == tenant)
                .map(|t| t.revenue_usd)
        };
        // As the fee is prorated: by seconds.
        let fee = |days: i64, month_days: i64| {
            Money::from_decimal(
                Decimal::from(100)
                    * (Decimal::from(days * 86_400) / Decimal::from(month_days * 86_400)),
            )
        };
        assert_eq!(revenue("old"), Some(fee(7, 30)));
        assert_eq!(revenue("new"), Some(fee(5, 31)));
        assert_eq!(revenue("later"), None, "not in force in the range");
    }
}
