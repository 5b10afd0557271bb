//! Invoices: a month's lines per tenant from its contract, each traceable to the ledger (the
//! calls, tokens and cost behind it, the price table used, and the query that reproduces it).

use std::collections::BTreeMap;

use burnrate_model::Money;
use burnrate_model::dimension::{Dimension, Field};
use burnrate_store::{Cell, Filter, Metric, QuerySpec, Store, StoreError};
use chrono::{Months, NaiveDate};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::margins::{Contract, Kind, overage};

/// One invoice line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InvoiceLine {
    /// The tenant billed.
    pub tenant: String,
    /// The month, `YYYY-MM`.
    pub month: String,
    /// The contract kind.
    pub contract: Kind,
    /// What the line bills.
    pub item: &'static str,
    /// How many units (calls, outcomes, months).
    pub quantity: u64,
    /// The price of one unit, when the line has one.
    pub unit_price_usd: Option<Money>,
    /// The amount billed.
    pub amount_usd: Money,
    /// The tenant's calls in the month.
    pub calls: u64,
    /// Their input tokens.
    pub input_tokens: u64,
    /// Their output tokens.
    pub output_tokens: u64,
    /// Their model cost.
    pub cost_usd: Money,
    /// Their successful outcomes.
    pub outcomes: u64,
    /// The date of the price table the cost was computed with.
    pub prices_as_of: Option<NaiveDate>,
    /// The query that gives the usage columns from the ledger.
    pub query: String,
    /// Their calls to models with no price that used tokens: counted as $0 in `cost_usd`
    /// (and in an amount billed at cost) until the model's price is added. Last, so CSV
    /// readers by position keep their columns.
    pub unpriced_calls: u64,
}

/// A tenant's month of usage.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    calls: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost: Money,
    unpriced_calls: u64,
    outcomes: u64,
}

/// The invoice lines of `month` (its first day) for every contract, or only `tenant`'s.
pub fn invoice(
    store: &dyn Store,
    contracts: &[Contract],
    month: NaiveDate,
    tenant: Option<&str>,
) -> Result<Vec<InvoiceLine>, StoreError> {
    let at = |day: NaiveDate| day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let next = month + Months::new(1);
    let mut spec = QuerySpec::new(at(month), at(next));
    spec.group_by = vec![Dimension::Field(Field::Tenant)];
    spec.metrics = vec![
        Metric::Requests,
        Metric::InputTokens,
        Metric::OutputTokens,
        Metric::CostUsd,
        Metric::Outcomes,
    ];
    if let Some(tenant) = tenant {
        spec.filters = vec![Filter {
            dimension: Dimension::Field(Field::Tenant),
            negate: false,
            values: vec![tenant.to_owned()],
        }];
    }
    let result = store.query(&spec)?;
    let count = |cell: &Cell| cell.as_count().unwrap_or(0);
    let mut usage: BTreeMap<String, Usage> = BTreeMap::new();
    for row in &result.rows {
        if let [Cell::Text(name), calls, input, output, cost, outcomes] = row.as_slice() {
            usage.insert(
                name.clone(),
                Usage {
                    calls: count(calls),
                    input_tokens: count(input),
                    output_tokens: count(output),
                    cost: cost.as_money().unwrap_or(Money::ZERO),
                    unpriced_calls: 0,
                    outcomes: count(outcomes),
                },
            );
        }
    }
    // Calls to models with no price, per tenant and model: a model whose calls used no
    // tokens (refused before any provider) costs nothing with or without a price, as in
    // the ledger's own unpriced warning.
    spec.group_by = [Field::Tenant, Field::Provider, Field::Model]
        .map(Dimension::Field)
        .to_vec();
    spec.metrics = vec![
        Metric::UnpricedRequests,
        Metric::InputTokens,
        Metric::OutputTokens,
    ];
    for row in &store.query(&spec)?.rows {
        if let [Cell::Text(name), _, _, unpriced, input, output] = row.as_slice()
            && count(input).saturating_add(count(output)) > 0
            && let Some(used) = usage.get_mut(name)
        {
            used.unpriced_calls += count(unpriced);
        }
    }
    let label = month.format("%Y-%m").to_string();
    let mut lines = Vec::new();
    for contract in contracts {
        if tenant.is_some_and(|t| t != contract.tenant) || !contract.in_force_before(at(next)) {
            continue;
        }
        let used = usage.get(&contract.tenant).copied().unwrap_or_default();
        let line = |item, quantity, unit_price_usd, amount_usd| InvoiceLine {
            tenant: contract.tenant.clone(),
            month: label.clone(),
            contract: contract.kind,
            item,
            quantity,
            unit_price_usd,
            amount_usd,
            calls: used.calls,
            input_tokens: used.input_tokens,
            output_tokens: used.output_tokens,
            cost_usd: used.cost,
            unpriced_calls: used.unpriced_calls,
            outcomes: used.outcomes,
            prices_as_of: store.prices().as_of,
            query: format!(
                "burnrate query --since {month} --until {next} --filter tenant_id={} \
                 --metrics requests,input_tokens,output_tokens,cost_usd,outcomes",
                contract.tenant
            ),
        };
        match contract.kind {
            Kind::PassThrough => {
                let markup = contract.markup.unwrap_or_default();
                let amount = Money::from_decimal(used.cost.as_decimal() * (Decimal::ONE + markup));
                lines.push(line(
                    "model usage at cost plus markup",
                    used.calls,
                    None,
                    amount,
                ));
            }
            Kind::Bundled => {
                let fee = contract.monthly_fee_usd.unwrap_or(Money::ZERO);
                lines.push(line("monthly fee", 1, Some(fee), fee));
                let over = overage(contract, used.cost, Decimal::ONE);
                if contract.included_usd.is_some() {
                    lines.push(line(
                        "usage above the included allowance",
                        used.calls,
                        None,
                        over,
                    ));
                }
            }
            Kind::Outcome => {
                let price = contract.price_per_outcome_usd.unwrap_or(Money::ZERO);
                lines.push(line(
                    "successful outcomes",
                    used.outcomes,
                    Some(price),
                    price.times(used.outcomes),
                ));
            }
        }
    }
    Ok(lines)
}
