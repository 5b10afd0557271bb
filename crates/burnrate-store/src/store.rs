//! The ledger as a trait: what the gateway, the reports and the CLI need from a backend, so
//! they run the same on the embedded DuckDB file and on ClickHouse.

use std::collections::BTreeMap;
use std::path::Path;

use burnrate_model::prices::ModelPrices;
use burnrate_model::{PriceBook, UsageEvent};
use chrono::{DateTime, NaiveDate, Utc};

use crate::clickhouse::ClickHouse;
use crate::duck::{
    AppendOutcome, DuckStore, MonthArchive, SessionGrowth, ToolRepeat, UnpricedModel,
};
use crate::error::StoreError;
use crate::query::bins::{self, RunCostBin};
use crate::query::result::QueryResult;
use crate::query::runs::{self, RunsOverview};
use crate::query::spec::QuerySpec;
use crate::reports::{Report, ReportParams};

/// A ledger backend.
pub trait Store: Send {
    /// Appends events (each with an id), skipping ids the ledger holds and ids repeated in
    /// `events`; says, event by event, whether it was new.
    fn append_new(&mut self, events: &[UsageEvent]) -> Result<Vec<bool>, StoreError>;

    /// Appends events like [`Store::append_new`] and counts what it did.
    fn append(&mut self, events: &[UsageEvent]) -> Result<AppendOutcome, StoreError> {
        let fresh = self.append_new(events)?;
        let inserted = fresh.iter().filter(|new| **new).count() as u64;
        Ok(AppendOutcome {
            inserted,
            duplicates: events.len() as u64 - inserted,
        })
    }

    /// Runs a query spec.
    fn query(&self, spec: &QuerySpec) -> Result<QueryResult, StoreError>;

    /// Runs a named report.
    fn report(&self, report: Report, params: &ReportParams) -> Result<QueryResult, StoreError>;

    /// Number of events in the ledger.
    fn event_count(&self) -> Result<u64, StoreError>;

    /// The price book the ledger prices with.
    fn prices(&self) -> &PriceBook;

    /// Records the models of a LiteLLM price table (read by
    /// [`burnrate_model::prices::litellm::read`]) whose prices apply from `effective_from`
    /// (`None`: since the beginning). Returns how many models changed; history is kept.
    fn import_litellm(
        &mut self,
        models: BTreeMap<String, ModelPrices>,
        effective_from: Option<NaiveDate>,
        as_of: NaiveDate,
        source: &str,
    ) -> Result<usize, StoreError>;

    /// Imports a TOML file of overrides and contract prices. Returns how many entries it held.
    fn import_overrides(&mut self, text: &str, source: &str) -> Result<usize, StoreError>;

    /// Models in the ledger with no price, with their usage.
    fn unpriced_models(&self) -> Result<Vec<UnpricedModel>, StoreError>;

    /// Recent sessions whose memory-layer tokens grew more than their route's past sessions'
    /// 99th percentile (see [`DuckStore::memory_growth`]).
    fn memory_growth(
        &self,
        since: DateTime<Utc>,
        recent: DateTime<Utc>,
        until: DateTime<Utc>,
        min_calls: u64,
        min_past: u64,
    ) -> Result<Vec<SessionGrowth>, StoreError>;

    /// Runs that asked for one tool with the same arguments at least `min_calls` times.
    fn tool_repeats(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        min_calls: u64,
    ) -> Result<Vec<ToolRepeat>, StoreError>;

    /// The calls in `[since, until)` of the runs in `runs` and of their direct sub-agent runs
    /// (events whose `agent_run_id` or `parent_run_id` is one of them), oldest first.
    fn run_events(
        &self,
        runs: &[String],
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<UsageEvent>, StoreError>;

    /// Runs per cost bin for each value of `spec`'s first dimension, over the runs in its
    /// range and filters ([`crate::query::bins`]). By default from every run's cost; a
    /// backend may bin in its own SQL instead.
    fn run_cost_bins(&self, spec: &QuerySpec) -> Result<Vec<RunCostBin>, StoreError> {
        let per_run = self.query(&bins::per_run_spec(spec))?;
        Ok(bins::bins_of_runs(&per_run))
    }

    /// The runs in `spec`'s range and filters per value of its first dimension, with the
    /// `top` costliest ([`RunsOverview`]). By default from three queries; a backend may keep
    /// per-run totals to answer faster.
    fn runs_overview(&self, spec: &QuerySpec, top: usize) -> Result<RunsOverview, StoreError> {
        runs::overview_by_queries(self, spec, top)
    }

    /// Moves every month before `cutoff` (a first day) to `<dir>/ledger/YYYY-MM.parquet`,
    /// each checked against the ledger before its events leave it.
    fn archive_before(
        &mut self,
        cutoff: NaiveDate,
        dir: &Path,
    ) -> Result<Vec<MonthArchive>, StoreError>;

    /// Makes what was appended durable where the backend needs a step for it.
    fn checkpoint(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Lets each statement run on up to `threads` threads, for a backend that runs them in
    /// this process (DuckDB); a server backend has nothing to set.
    fn set_threads(&self, _threads: usize) -> Result<(), StoreError> {
        Ok(())
    }

    /// Picks up changes other processes made to shared state (the price book), for a
    /// backend several processes write.
    fn refresh(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The stale-prices warning, when the table is older than `max_age_days` on `today`.
    fn stale_warning(&self, max_age_days: i64, today: NaiveDate) -> Option<String> {
        let book = self.prices();
        let age = book.stale_by(today, max_age_days)?;
        let taken = book.as_of.map(|d| d.to_string()).unwrap_or_default();
        Some(format!(
            "the price table is {age} days old (taken {taken}; limit {max_age_days}): costs may be \
             wrong. Refresh it with `burnrate prices import --db LEDGER model_prices_and_context_window.json`"
        ))
    }

    /// Adds the stale-prices warning to `result` once the table is older than
    /// `max_age_days` on `today`.
    fn warn_if_stale(&self, result: &mut QueryResult, max_age_days: i64, today: NaiveDate) {
        if let Some(warning) = self.stale_warning(max_age_days, today) {
            result.warnings.insert(0, warning);
        }
    }
}

/// Implements [`Store`] for a type whose inherent methods of the same names do the work.
/// Items after the type go into the impl as they are.
macro_rules! store_by_inherent_methods {
    ($type:ty $(, $extra:item)*) => {
        impl Store for $type {
            $($extra)*
            fn append_new(&mut self, events: &[UsageEvent]) -> Result<Vec<bool>, StoreError> {
                <$type>::append_new(self, events)
            }
            fn query(&self, spec: &QuerySpec) -> Result<QueryResult, StoreError> {
                <$type>::query(self, spec)
            }
            fn report(
                &self,
                report: Report,
                params: &ReportParams,
            ) -> Result<QueryResult, StoreError> {
                <$type>::report(self, report, params)
            }
            fn event_count(&self) -> Result<u64, StoreError> {
                <$type>::event_count(self)
            }
            fn prices(&self) -> &PriceBook {
                <$type>::prices(self)
            }
            fn import_litellm(
                &mut self,
                models: BTreeMap<String, ModelPrices>,
                effective_from: Option<NaiveDate>,
                as_of: NaiveDate,
                source: &str,
            ) -> Result<usize, StoreError> {
                <$type>::import_litellm(self, models, effective_from, as_of, source)
            }
            fn import_overrides(&mut self, text: &str, source: &str) -> Result<usize, StoreError> {
                <$type>::import_overrides(self, text, source)
            }
            fn unpriced_models(&self) -> Result<Vec<UnpricedModel>, StoreError> {
                <$type>::unpriced_models(self)
            }
            fn memory_growth(
                &self,
                since: DateTime<Utc>,
                recent: DateTime<Utc>,
                until: DateTime<Utc>,
                min_calls: u64,
                min_past: u64,
            ) -> Result<Vec<SessionGrowth>, StoreError> {
                <$type>::memory_growth(self, since, recent, until, min_calls, min_past)
            }
            fn tool_repeats(
                &self,
                since: DateTime<Utc>,
                until: DateTime<Utc>,
                min_calls: u64,
            ) -> Result<Vec<ToolRepeat>, StoreError> {
                <$type>::tool_repeats(self, since, until, min_calls)
            }
            fn run_events(
                &self,
                runs: &[String],
                since: DateTime<Utc>,
                until: DateTime<Utc>,
            ) -> Result<Vec<UsageEvent>, StoreError> {
                <$type>::run_events(self, runs, since, until)
            }
            fn archive_before(
                &mut self,
                cutoff: NaiveDate,
                dir: &Path,
            ) -> Result<Vec<MonthArchive>, StoreError> {
                <$type>::archive_before(self, cutoff, dir)
            }
        }
    };
}

store_by_inherent_methods!(
    DuckStore,
    fn checkpoint(&self) -> Result<(), StoreError> {
        DuckStore::checkpoint(self)
    },
    fn set_threads(&self, threads: usize) -> Result<(), StoreError> {
        DuckStore::set_threads(self, threads)
    },
    fn run_cost_bins(&self, spec: &QuerySpec) -> Result<Vec<RunCostBin>, StoreError> {
        DuckStore::run_cost_bins(self, spec)
    },
    fn runs_overview(&self, spec: &QuerySpec, top: usize) -> Result<RunsOverview, StoreError> {
        DuckStore::runs_overview(self, spec, top)
    }
);
store_by_inherent_methods!(
    ClickHouse,
    fn refresh(&mut self) -> Result<(), StoreError> {
        self.refresh_prices()
    }
);
