//! Usage as CloudEvents: one event per tenant, meter and day, the JSON that metering and
//! billing systems ingest (CloudEvents 1.0, structured mode; a batch is a JSON array).

use burnrate_model::dimension::{Dimension, Field};
use burnrate_store::query::spec::{Order, OrderKey};
use burnrate_store::{Bucket, Cell, Metric, QuerySpec, Store, StoreError};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The CloudEvents `type` of a usage event.
pub const EVENT_TYPE: &str = "dev.burnrate.usage.v1";

/// The meters exported, with their units.
const METERS: &[(Metric, &str)] = &[
    (Metric::Requests, "calls"),
    (Metric::InputTokens, "tokens"),
    (Metric::CacheReadTokens, "tokens"),
    (Metric::CacheWriteTokens, "tokens"),
    (Metric::OutputTokens, "tokens"),
    (Metric::ReasoningTokens, "tokens"),
    (Metric::CostUsd, "usd"),
];

/// The usage events of `[since, until)`, by tenant and UTC day, oldest first; `source` names
/// the deployment (a URI reference, e.g. `/burnrate/prod`). Calls without a tenant are not
/// billed to anyone and are counted in the second value instead.
pub fn usage_events(
    store: &dyn Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    source: &str,
) -> Result<(Vec<Value>, u64), StoreError> {
    let mut spec = QuerySpec::new(since, until);
    spec.group_by = vec![Dimension::Field(Field::Tenant)];
    spec.bucket = Some(Bucket::Day);
    spec.metrics = METERS.iter().map(|(metric, _)| *metric).collect();
    spec.order = Some(Order {
        key: OrderKey::Bucket,
        descending: false,
    });
    let result = store.query(&spec)?;
    let mut events = Vec::new();
    let mut untagged = 0;
    for row in &result.rows {
        let (Some(Cell::Text(day)), tenant) = (row.get(1), row.first()) else {
            continue;
        };
        let Some(Cell::Text(tenant)) = tenant else {
            if let Some(Cell::Count(calls)) = row.get(2) {
                untagged += u64::try_from(*calls).unwrap_or(0);
            }
            continue;
        };
        for (index, (metric, unit)) in METERS.iter().enumerate() {
            let value = match row.get(2 + index) {
                Some(Cell::Count(count)) => json!(count),
                // Money as a decimal string, exact.
                Some(Cell::Money(money)) => json!(money.to_string()),
                _ => continue,
            };
            let date = &day[..10];
            events.push(json!({
                "specversion": "1.0",
                "type": EVENT_TYPE,
                "source": source,
                // The same tenant, meter and day always has the same id, so a re-export is
                // deduplicated downstream.
                "id": format!("{tenant}/{}/{date}", metric.as_str()),
                "time": day,
                "subject": tenant,
                "datacontenttype": "application/json",
                "data": {
                    "tenant_id": tenant,
                    "meter": metric.as_str(),
                    "unit": unit,
                    "day": date,
                    "value": value,
                },
            }));
        }
    }
    Ok((events, untagged))
}
