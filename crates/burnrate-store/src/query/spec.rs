//! The query spec (DESIGN.md, "Queries"): time range, bucket, group-by, filters, metrics,
//! order and top-N. Backends render it to their SQL.

use std::fmt;
use std::str::FromStr;

use burnrate_model::Dimension;
use burnrate_model::dimension::Field;
use chrono::{DateTime, Utc};

/// Time buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// One hour.
    Hour,
    /// One UTC day.
    Day,
    /// One ISO week, starting Monday.
    Week,
    /// One calendar month.
    Month,
}

impl Bucket {
    /// The bucket's name in specs and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
        }
    }
}

impl FromStr for Bucket {
    type Err = String;
    fn from_str(text: &str) -> Result<Bucket, String> {
        match text {
            "hour" => Ok(Bucket::Hour),
            "day" => Ok(Bucket::Day),
            "week" => Ok(Bucket::Week),
            "month" => Ok(Bucket::Month),
            other => Err(format!(
                "unknown bucket `{other}`; use hour, day, week or month"
            )),
        }
    }
}

/// How a metric's values are typed in results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A whole count.
    Count,
    /// Dollars, exact.
    Money,
    /// A number between 0 and 1.
    Ratio,
    /// Milliseconds.
    Millis,
    /// A multiple, such as the max/min ratio of run costs.
    Factor,
}

macro_rules! metrics {
    ($($variant:ident => $name:literal, $kind:ident;)*) => {
        /// The metrics a query can ask for, named as DESIGN.md names them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Metric {
            $(#[doc = concat!("`", $name, "`")] $variant,)*
        }

        impl Metric {
            /// Every metric.
            pub const ALL: &'static [Metric] = &[$(Metric::$variant,)*];

            /// The metric's name in specs and result rows.
            pub fn as_str(self) -> &'static str {
                match self { $(Metric::$variant => $name,)* }
            }

            /// How the metric's values are typed.
            pub fn kind(self) -> MetricKind {
                match self { $(Metric::$variant => MetricKind::$kind,)* }
            }
        }
    };
}

metrics! {
    Requests => "requests", Count;
    CostUsd => "cost_usd", Money;
    NaiveCostUsd => "naive_cost_usd", Money;
    InputTokens => "input_tokens", Count;
    UncachedInputTokens => "uncached_input_tokens", Count;
    CacheReadTokens => "cache_read_tokens", Count;
    CacheWriteTokens => "cache_write_tokens", Count;
    OutputTokens => "output_tokens", Count;
    ReasoningTokens => "reasoning_tokens", Count;
    CacheHitRate => "cache_hit_rate", Ratio;
    ToolCalls => "tool_calls", Count;
    Runs => "runs", Count;
    CostPerRunP50 => "cost_per_run_p50", Money;
    CostPerRunP90 => "cost_per_run_p90", Money;
    CostPerRunP99 => "cost_per_run_p99", Money;
    CostPerRunMin => "cost_per_run_min", Money;
    CostPerRunMax => "cost_per_run_max", Money;
    RunCostSpread => "run_cost_spread", Factor;
    RunCostShare => "run_cost_share", Ratio;
    ErrorRate => "error_rate", Ratio;
    LatencyP50Ms => "latency_p50_ms", Millis;
    LatencyP99Ms => "latency_p99_ms", Millis;
    ShareOfCost => "share_of_cost", Ratio;
    UnpricedRequests => "unpriced_requests", Count;
    PromptTokens => "prompt_tokens", Count;
    ToolTokens => "tool_tokens", Count;
    MemoryTokens => "memory_tokens", Count;
    PromptTokensPerCall => "prompt_tokens_per_call", Ratio;
    ToolTokensPerCall => "tool_tokens_per_call", Ratio;
    MemoryTokensPerCall => "memory_tokens_per_call", Ratio;
    Outcomes => "outcomes", Count;
    CostPerOutcome => "cost_per_outcome", Money;
}

impl Metric {
    /// True for metrics computed from per-run totals.
    pub fn needs_runs(self) -> bool {
        matches!(
            self,
            Metric::Runs
                | Metric::CostPerRunP50
                | Metric::CostPerRunP90
                | Metric::CostPerRunP99
                | Metric::CostPerRunMin
                | Metric::CostPerRunMax
                | Metric::RunCostSpread
                | Metric::RunCostShare
        )
    }

    /// The percentile of run cost the metric is, if it is one.
    pub fn run_quantile(self) -> Option<u32> {
        match self {
            Metric::CostPerRunP50 => Some(50),
            Metric::CostPerRunP90 => Some(90),
            Metric::CostPerRunP99 => Some(99),
            _ => None,
        }
    }

    /// True for metrics that need each call priced (money, shares of cost, runs' costs,
    /// calls without a price).
    pub fn needs_prices(self) -> bool {
        self.kind() == MetricKind::Money
            || self.needs_runs()
            || matches!(self, Metric::ShareOfCost | Metric::UnpricedRequests)
    }

    /// True for metrics computed from per-call latencies.
    pub fn needs_latency(self) -> bool {
        matches!(self, Metric::LatencyP50Ms | Metric::LatencyP99Ms)
    }

    /// True when the metric of a union of groups is the sum of the groups' values.
    pub fn is_additive(self) -> bool {
        matches!(self.kind(), MetricKind::Count | MetricKind::Money)
            && !self.needs_runs()
            && !self.needs_latency()
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(text: &str) -> Result<Metric, String> {
        Metric::ALL
            .iter()
            .copied()
            .find(|metric| metric.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown metric `{text}`; use one of {}", known.join(", "))
            })
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One filter: a dimension equal (or not) to one of some values; an empty value means absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Dimension filtered.
    pub dimension: Dimension,
    /// True for `!=`.
    pub negate: bool,
    /// Accepted values (any of them); `""` stands for "not set".
    pub values: Vec<String>,
}

impl Filter {
    /// The filter "the call belongs to an agent run".
    pub fn in_a_run() -> Filter {
        Filter::is_set(Field::AgentRun)
    }

    /// The filter "the call has `field` set".
    pub fn is_set(field: Field) -> Filter {
        Filter {
            dimension: Dimension::Field(field),
            negate: true,
            values: vec![String::new()],
        }
    }
}

impl FromStr for Filter {
    type Err = String;

    /// `tenant_id=acme`, `feature!=search`, `model=gpt-4.1,gpt-5`, `user_id=` (not set).
    fn from_str(text: &str) -> Result<Filter, String> {
        let (key, negate, value) = if let Some((key, value)) = text.split_once("!=") {
            (key, true, value)
        } else if let Some((key, value)) = text.split_once('=') {
            (key, false, value)
        } else {
            return Err(format!(
                "filter `{text}` must look like key=value or key!=value"
            ));
        };
        let dimension: Dimension = key.trim().parse().map_err(|e| format!("filter: {e}"))?;
        let values = value.split(',').map(|v| v.trim().to_owned()).collect();
        Ok(Filter {
            dimension,
            negate,
            values,
        })
    }
}

/// What to sort by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderKey {
    /// A metric.
    Metric(Metric),
    /// A dimension.
    Dimension(Dimension),
    /// The time bucket.
    Bucket,
}

/// Sort order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// What to sort by.
    pub key: OrderKey,
    /// True for descending.
    pub descending: bool,
}

impl FromStr for Order {
    type Err = String;

    /// `cost_usd` (descending), `cost_usd:asc`, `tenant_id:asc`, `bucket`.
    fn from_str(text: &str) -> Result<Order, String> {
        let (name, direction) = text.split_once(':').unwrap_or((text, ""));
        let key = if name == "bucket" {
            OrderKey::Bucket
        } else if let Ok(metric) = name.parse::<Metric>() {
            OrderKey::Metric(metric)
        } else if let Ok(dimension) = name.parse::<Dimension>() {
            OrderKey::Dimension(dimension)
        } else {
            return Err(format!(
                "cannot order by `{name}`: not a metric, a dimension or `bucket`"
            ));
        };
        let descending = match direction {
            "" => matches!(key, OrderKey::Metric(_)),
            "desc" => true,
            "asc" => false,
            other => return Err(format!("order direction `{other}`: use asc or desc")),
        };
        Ok(Order { key, descending })
    }
}

/// A query over the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySpec {
    /// Start, inclusive.
    pub since: DateTime<Utc>,
    /// End, exclusive.
    pub until: DateTime<Utc>,
    /// Time bucket, if any.
    pub bucket: Option<Bucket>,
    /// Dimensions to group by.
    pub group_by: Vec<Dimension>,
    /// Filters, all of which must hold.
    pub filters: Vec<Filter>,
    /// Metrics to compute.
    pub metrics: Vec<Metric>,
    /// Sort order; default: the first money metric (or the first metric), descending.
    pub order: Option<Order>,
    /// Keep only the top N groups (with a bucket: the N groups with most cost overall).
    pub top: Option<usize>,
}

/// Why a query spec cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

impl QuerySpec {
    /// A spec over `[since, until)` with the default metrics and nothing else.
    pub fn new(since: DateTime<Utc>, until: DateTime<Utc>) -> QuerySpec {
        QuerySpec {
            since,
            until,
            bucket: None,
            group_by: Vec::new(),
            filters: Vec::new(),
            metrics: vec![Metric::Requests, Metric::CostUsd],
            order: None,
            top: None,
        }
    }

    /// Checks the spec is coherent.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.since >= self.until {
            return Err(SpecError(format!(
                "since ({}) must be before until ({})",
                self.since, self.until
            )));
        }
        if self.metrics.is_empty() {
            return Err(SpecError("ask for at least one metric".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for dimension in &self.group_by {
            if !seen.insert(dimension) {
                return Err(SpecError(format!("`{dimension}` is grouped by twice")));
            }
        }
        if self.top == Some(0) {
            return Err(SpecError("--top must be at least 1".into()));
        }
        if let Some(order) = &self.order {
            match &order.key {
                OrderKey::Metric(metric) if !self.metrics.contains(metric) => {
                    return Err(SpecError(format!(
                        "cannot order by `{metric}`: it is not among the metrics asked for"
                    )));
                }
                OrderKey::Dimension(dimension) if !self.group_by.contains(dimension) => {
                    return Err(SpecError(format!(
                        "cannot order by `{dimension}`: the query does not group by it"
                    )));
                }
                OrderKey::Bucket if self.bucket.is_none() => {
                    return Err(SpecError("cannot order by bucket without --bucket".into()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The order to use: the given one, or the first money metric (else first metric) descending.
    pub fn effective_order(&self) -> Order {
        self.order.clone().unwrap_or_else(|| {
            let metric = self
                .metrics
                .iter()
                .copied()
                .find(|m| m.kind() == MetricKind::Money)
                .or_else(|| self.metrics.first().copied())
                .unwrap_or(Metric::Requests);
            Order {
                key: OrderKey::Metric(metric),
                descending: true,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_filters_orders_and_metrics() {
        let filter: Filter = "model=gpt-4.1, gpt-5".parse().unwrap();
        assert_eq!(filter.values, vec!["gpt-4.1", "gpt-5"]);
        assert!(!filter.negate);
        let filter: Filter = "feature!=search".parse().unwrap();
        assert!(filter.negate);
        assert!("feature".parse::<Filter>().is_err());
        assert!("colour=red".parse::<Filter>().is_err());
        let order: Order = "tenant_id".parse().unwrap();
        assert!(!order.descending);
        let order: Order = "cost_usd".parse().unwrap();
        assert!(order.descending);
        assert!("cost_usd:sideways".parse::<Order>().is_err());
        assert!("costs".parse::<Metric>().unwrap_err().contains("cost_usd"));
        for metric in Metric::ALL {
            assert_eq!(metric.as_str().parse::<Metric>().unwrap(), *metric);
        }
    }

    #[test]
    fn rejects_incoherent_specs() {
        let now = Utc::now();
        let mut spec = QuerySpec::new(now, now);
        assert!(spec.validate().is_err());
        spec.since = now - chrono::Duration::days(1);
        assert!(spec.validate().is_ok());
        spec.order = Some("error_rate".parse().unwrap());
        assert!(spec.validate().is_err());
        spec.order = Some("bucket".parse().unwrap());
        assert!(spec.validate().is_err());
        spec.order = None;
        spec.top = Some(0);
        assert!(spec.validate().is_err());
    }
}
