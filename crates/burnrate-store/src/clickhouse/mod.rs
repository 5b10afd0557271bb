//! The ClickHouse ledger, over ClickHouse's HTTP interface: versioned schema migrations,
//! deduplicated appends, the price book (`prices`), the query spec and reports rendered to
//! SQL (`sql`, `reports`), the detectors' queries (`analytics`) and retention (`archive`).
//!
//! Everything here keeps to SQL that ClickHouse 18.16 (Debian's package) understands, so it
//! runs on every later release too: `LowCardinality` behind its 18.x setting, no `TTL`, no
//! `DateTime64` (the exact time is `ts_us`, microseconds since the epoch; `ts` in seconds
//! partitions and prunes), tools as two parallel arrays (18.16 reads no tuples from
//! `JSONEachRow`).
//!
//! Deduplication is at insert: a batch first asks which of its ids the table holds, in the
//! batch's own time range (so only its partitions are read), and inserts the rest. The table
//! is a `ReplacingMergeTree` on a key ending in the id as a backstop for two replicas racing
//! on the same event; queries of exact totals therefore never need `FINAL`.

mod analytics;
mod archive;
mod prices;
mod reports;
mod schema;
pub mod sql;

use std::collections::HashSet;
use std::time::Duration;

use burnrate_model::{PriceBook, UsageEvent};
use chrono::NaiveDate;

use crate::error::StoreError;
use crate::query::result::{QueryResult, Unpriced, column_kinds};
use crate::query::spec::QuerySpec;

pub use schema::MIGRATIONS;

/// Settings every statement runs with, where the server knows them: 18.x needs the first for
/// `LowCardinality` (current releases reject it as unknown, having made it the default); the
/// second keeps 64-bit integers in `JSONEachRow` answers unquoted.
const SETTINGS: &[(&str, &str)] = &[
    ("allow_experimental_low_cardinality_type", "1"),
    ("output_format_json_quote_64bit_integers", "0"),
];

/// A ClickHouse ledger.
pub struct ClickHouse {
    http: reqwest::blocking::Client,
    /// `http://host:port/`.
    endpoint: String,
    database: String,
    /// The [`SETTINGS`] this server knows.
    settings: Vec<(&'static str, &'static str)>,
    /// The price book of generation `generation` (see `prices`).
    book: PriceBook,
    generation: u64,
    fingerprint: String,
    thresholds: Vec<u64>,
    /// Provider + model pairs known to be in `models_seen`.
    known_models: HashSet<(String, String)>,
}

impl ClickHouse {
    /// Connects to `clickhouse://host:port/database` (or `http://…`), creates the database
    /// when absent and brings its schema to the latest version.
    pub fn connect(url: &str) -> Result<ClickHouse, StoreError> {
        let parsed = reqwest::Url::parse(url).map_err(|error| {
            StoreError::ClickHouse(format!(
                "`{url}` is not a URL like clickhouse://127.0.0.1:8123/burnrate ({error})"
            ))
        })?;
        let host = parsed.host_str().ok_or_else(|| {
            StoreError::ClickHouse(format!(
                "`{url}` names no host, e.g. clickhouse://127.0.0.1:8123/burnrate"
            ))
        })?;
        let port = parsed.port().unwrap_or(8123);
        let database = parsed.path().trim_matches('/').to_owned();
        let database = if database.is_empty() {
            "burnrate".to_owned()
        } else {
            database
        };
        if !database
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::ClickHouse(format!(
                "database `{database}`: use letters, digits and _ only"
            )));
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|error| StoreError::ClickHouse(error.to_string()))?;
        let mut store = ClickHouse {
            http,
            endpoint: format!("http://{host}:{port}/"),
            database,
            settings: Vec::new(),
            book: PriceBook::default(),
            generation: 0,
            fingerprint: String::new(),
            thresholds: Vec::new(),
            known_models: HashSet::new(),
        };
        let names: Vec<String> = SETTINGS.iter().map(|(name, _)| sql::quote(name)).collect();
        let known = store.execute(&format!(
            "SELECT name FROM system.settings WHERE name IN ({})",
            names.join(", ")
        ))?;
        store.settings = SETTINGS
            .iter()
            .filter(|(name, _)| known.lines().any(|line| line.trim() == *name))
            .copied()
            .collect();
        store.execute(&format!("CREATE DATABASE IF NOT EXISTS {}", store.database))?;
        store.migrate()?;
        store.load_prices()?;
        Ok(store)
    }

    /// Runs one statement and returns what ClickHouse answered (its error text on failure).
    pub fn execute(&self, sql: &str) -> Result<String, StoreError> {
        self.post(sql.as_bytes().to_vec(), None)
    }

    /// Inserts `JSONEachRow` lines into `table`.
    fn insert(&self, table: &str, body: Vec<u8>) -> Result<(), StoreError> {
        if body.is_empty() {
            return Ok(());
        }
        let query = format!("INSERT INTO {}.{table} FORMAT JSONEachRow", self.database);
        self.post(body, Some(&query)).map(drop)
    }

    /// Runs a `SELECT` and parses its `TabSeparated` answer of `width` columns.
    fn select(&self, sql: &str, width: usize) -> Result<Vec<Vec<Option<String>>>, StoreError> {
        let text = self.execute(&format!("{sql} FORMAT TabSeparated"))?;
        sql::tsv_rows(&text, width)
    }

    /// The price book the ledger prices with.
    pub fn prices(&self) -> &PriceBook {
        &self.book
    }

    /// What pricing in SQL needs, with the models seen resolved under the current book.
    fn pricing(&self) -> Result<sql::Pricing<'_>, StoreError> {
        Ok(sql::Pricing {
            db: &self.database,
            generation: self.generation,
            thresholds: &self.thresholds,
            key_expr: sql::key_expr(&self.model_keys()?),
        })
    }

    /// The SQL [`ClickHouse::query`] runs for `spec` (without its `FORMAT` clause).
    pub fn render(&self, spec: &QuerySpec) -> Result<String, StoreError> {
        spec.validate()?;
        Ok(sql::render(spec, &self.pricing()?).sql)
    }

    /// Runs a query spec.
    pub fn query(&self, spec: &QuerySpec) -> Result<QueryResult, StoreError> {
        spec.validate()?;
        let pricing = self.pricing()?;
        let rendered = sql::render(spec, &pricing);
        let mut result = QueryResult::new(rendered.columns, column_kinds(spec));
        for row in self.select(&rendered.sql, result.columns.len())? {
            result.push_text_row(row)?;
        }
        let unpriced = self.unpriced_in(spec, &pricing)?;
        result.note_unpriced(unpriced);
        Ok(result)
    }

    /// Calls in the spec's range and filters whose model has no price.
    fn unpriced_in(
        &self,
        spec: &QuerySpec,
        pricing: &sql::Pricing<'_>,
    ) -> Result<Unpriced, StoreError> {
        let rows = self.select(
            &format!(
                "SELECT sum(c), sum(i), sum(o) FROM (SELECT count() AS c, \
                 sum(input_tokens) AS i, sum(output_tokens) AS o FROM {}.events \
                 WHERE {} AND {} = '' GROUP BY provider, model \
                 HAVING sum(input_tokens) + sum(output_tokens) > 0)",
                self.database,
                sql::where_clause(spec),
                pricing.key_expr
            ),
            3,
        )?;
        let number = |index: usize| -> u64 {
            rows.first()
                .and_then(|row| row.get(index).cloned().flatten())
                .and_then(|text| text.parse().ok())
                .unwrap_or(0)
        };
        Ok(Unpriced {
            requests: number(0),
            input_tokens: number(1),
            output_tokens: number(2),
        })
    }

    fn post(&self, body: Vec<u8>, query: Option<&str>) -> Result<String, StoreError> {
        let mut request = self.http.post(&self.endpoint).query(&self.settings);
        if let Some(query) = query {
            request = request.query(&[("query", query)]);
        }
        let response = request.body(body).send().map_err(|error| {
            StoreError::ClickHouse(format!(
                "{} is unreachable ({error}); the journal keeps the events until it answers",
                self.endpoint
            ))
        })?;
        let status = response.status();
        let text = response
            .text()
            .map_err(|error| StoreError::ClickHouse(error.to_string()))?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(StoreError::ClickHouse(text.trim().to_owned()))
        }
    }

    /// The schema version in the database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let text = self.execute(&format!(
            "SELECT max(version) FROM {}.schema_migrations",
            self.database
        ))?;
        text.trim()
            .parse()
            .map_err(|_| StoreError::ClickHouse(format!("schema version `{}`", text.trim())))
    }

    /// Applies the migrations the database has not seen, in order, each recorded once done.
    pub fn migrate(&self) -> Result<u32, StoreError> {
        self.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {}.schema_migrations (version UInt32, applied DateTime) \
             ENGINE = TinyLog",
            self.database
        ))?;
        let mut version = self.schema_version()?;
        for (number, statements) in MIGRATIONS {
            if *number <= version {
                continue;
            }
            for statement in *statements {
                self.execute(&statement.replace("{db}", &self.database))?;
            }
            self.execute(&format!(
                "INSERT INTO {}.schema_migrations VALUES ({number}, now())",
                self.database
            ))?;
            version = *number;
        }
        Ok(version)
    }

    /// Appends events (each must carry an id), skipping ids the table holds and ids repeated
    /// in `events` (the first wins), and says, event by event, whether it was new; a batch
    /// retried after a lost answer inserts nothing ([`crate::Store::append`] counts it). New
    /// provider + model pairs are recorded first, so no stored event has a model queries
    /// cannot price.
    pub fn append_new(&mut self, events: &[UsageEvent]) -> Result<Vec<bool>, StoreError> {
        let (Some(first), Some(last)) = (
            events.iter().map(|e| e.ts).min(),
            events.iter().map(|e| e.ts).max(),
        ) else {
            return Ok(Vec::new());
        };
        let existing = self.existing_ids(
            first.timestamp().saturating_sub(1),
            last.timestamp().saturating_add(1),
            events,
        )?;
        let mut seen = HashSet::with_capacity(events.len());
        let mut fresh = Vec::with_capacity(events.len());
        let mut body = Vec::new();
        let mut models = HashSet::new();
        for event in events {
            let Some(id) = event.id else {
                return Err(StoreError::ClickHouse(
                    "an event without an id cannot be appended (ids make retries safe)".into(),
                ));
            };
            let new = !existing.contains(&id) && seen.insert(id);
            fresh.push(new);
            if !new {
                continue;
            }
            let pair = (event.provider.as_str(), event.model.as_str());
            if !self
                .known_models
                .contains(&(pair.0.to_owned(), pair.1.to_owned()))
            {
                models.insert(pair);
            }
            serde_json::to_writer(&mut body, &schema::Row::of(event, id))
                .map_err(|error| StoreError::ClickHouse(error.to_string()))?;
            body.push(b'\n');
        }
        if !models.is_empty() {
            let mut lines = Vec::new();
            for (provider, model) in &models {
                serde_json::to_writer(
                    &mut lines,
                    &serde_json::json!({"provider": provider, "model": model}),
                )
                .map_err(|error| StoreError::ClickHouse(error.to_string()))?;
                lines.push(b'\n');
            }
            self.insert("models_seen", lines)?;
        }
        self.insert("events", body)?;
        self.known_models.extend(
            models
                .into_iter()
                .map(|(provider, model)| (provider.to_owned(), model.to_owned())),
        );
        Ok(fresh)
    }

    /// The ids of `events` the table holds, looking only at `[from, to]` (seconds). Asked in
    /// chunks, so a large backlog's batch stays under the server's `max_query_size`.
    fn existing_ids(
        &self,
        from: i64,
        to: i64,
        events: &[UsageEvent],
    ) -> Result<HashSet<uuid::Uuid>, StoreError> {
        /// Ids per question: 39 bytes each keeps the text near 160 KB (the default limit is
        /// 256 KiB).
        const CHUNK: usize = 4_096;
        let ids: Vec<String> = events
            .iter()
            .filter_map(|e| e.id)
            .map(|id| format!("'{id}'"))
            .collect();
        let mut existing = HashSet::new();
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT DISTINCT toString(id) FROM {db}.events \
                 WHERE ts BETWEEN toDateTime({from}) AND toDateTime({to}) \
                 AND id IN (SELECT toUUID(arrayJoin([{list}])))",
                db = self.database,
                list = chunk.join(",")
            );
            for line in self.execute(&sql)?.lines() {
                existing.insert(uuid::Uuid::parse_str(line.trim()).map_err(|error| {
                    StoreError::ClickHouse(format!("stored id `{line}`: {error}"))
                })?);
            }
        }
        Ok(existing)
    }

    /// The months the table holds events for (their first days), oldest first.
    pub fn months(&self) -> Result<Vec<NaiveDate>, StoreError> {
        let text = self.execute(&format!(
            "SELECT DISTINCT partition FROM system.parts WHERE database = '{}' \
             AND table = 'events' AND active ORDER BY partition",
            self.database
        ))?;
        text.lines()
            .map(|line| {
                NaiveDate::parse_from_str(&format!("{}01", line.trim()), "%Y%m%d").map_err(|_| {
                    StoreError::ClickHouse(format!("partition `{line}` is not a month YYYYMM"))
                })
            })
            .collect()
    }

    /// Drops a month's events at once (its partition): retention's last step, after the
    /// month is archived.
    pub fn drop_month(&self, month: NaiveDate) -> Result<(), StoreError> {
        self.execute(&format!(
            "ALTER TABLE {}.events DROP PARTITION {}",
            self.database,
            month.format("%Y%m")
        ))
        .map(drop)
    }

    /// Number of events in the table.
    pub fn event_count(&self) -> Result<u64, StoreError> {
        let text = self.execute(&format!("SELECT count() FROM {}.events", self.database))?;
        text.trim()
            .parse()
            .map_err(|_| StoreError::ClickHouse(format!("count `{}`", text.trim())))
    }
}
