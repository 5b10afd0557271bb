//! The ClickHouse ledger, over ClickHouse's HTTP interface (issue 8, first part: the
//! connection, versioned schema migrations and deduplicated appends; queries come next).
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

mod schema;

use std::collections::HashSet;
use std::time::Duration;

use burnrate_model::UsageEvent;
use chrono::NaiveDate;

use crate::duck::AppendOutcome;
use crate::error::StoreError;

pub use schema::MIGRATIONS;

/// Settings every statement runs with (18.x needs the first for `LowCardinality`; later
/// releases accept and ignore it).
const SETTINGS: &[(&str, &str)] = &[("allow_experimental_low_cardinality_type", "1")];

/// A ClickHouse ledger.
pub struct ClickHouse {
    http: reqwest::blocking::Client,
    /// `http://host:port/`.
    endpoint: String,
    database: String,
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
        let store = ClickHouse {
            http,
            endpoint: format!("http://{host}:{port}/"),
            database,
        };
        store.execute(&format!("CREATE DATABASE IF NOT EXISTS {}", store.database))?;
        store.migrate()?;
        Ok(store)
    }

    /// The database's name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Runs one statement and returns what ClickHouse answered (its error text on failure).
    pub fn execute(&self, sql: &str) -> Result<String, StoreError> {
        self.post(sql.as_bytes().to_vec(), None)
    }

    fn post(&self, body: Vec<u8>, query: Option<&str>) -> Result<String, StoreError> {
        let mut request = self.http.post(&self.endpoint).query(SETTINGS);
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
    /// in `events` (the first wins). A batch retried after a lost answer inserts nothing.
    pub fn append(&mut self, events: &[UsageEvent]) -> Result<AppendOutcome, StoreError> {
        let (Some(first), Some(last)) = (
            events.iter().map(|e| e.ts).min(),
            events.iter().map(|e| e.ts).max(),
        ) else {
            return Ok(AppendOutcome::default());
        };
        let existing = self.existing_ids(
            first.timestamp().saturating_sub(1),
            last.timestamp().saturating_add(1),
            events,
        )?;
        let mut seen = HashSet::with_capacity(events.len());
        let mut body = Vec::new();
        for event in events {
            let Some(id) = event.id else {
                return Err(StoreError::ClickHouse(
                    "an event without an id cannot be appended (ids make retries safe)".into(),
                ));
            };
            if existing.contains(&id) || !seen.insert(id) {
                continue;
            }
            serde_json::to_writer(&mut body, &schema::Row::of(event, id))
                .map_err(|error| StoreError::ClickHouse(error.to_string()))?;
            body.push(b'\n');
        }
        let inserted = seen.len() as u64;
        if inserted > 0 {
            let query = format!("INSERT INTO {}.events FORMAT JSONEachRow", self.database);
            self.post(body, Some(&query))?;
        }
        Ok(AppendOutcome {
            inserted,
            duplicates: events.len() as u64 - inserted,
        })
    }

    /// The ids of `events` the table holds, looking only at `[from, to]` (seconds).
    fn existing_ids(
        &self,
        from: i64,
        to: i64,
        events: &[UsageEvent],
    ) -> Result<HashSet<uuid::Uuid>, StoreError> {
        let ids: Vec<String> = events
            .iter()
            .filter_map(|e| e.id)
            .map(|id| format!("'{id}'"))
            .collect();
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let sql = format!(
            "SELECT DISTINCT toString(id) FROM {db}.events \
             WHERE ts BETWEEN toDateTime({from}) AND toDateTime({to}) \
             AND id IN (SELECT toUUID(arrayJoin([{list}])))",
            db = self.database,
            list = ids.join(",")
        );
        let text = self.execute(&sql)?;
        text.lines()
            .map(|line| {
                uuid::Uuid::parse_str(line.trim())
                    .map_err(|error| StoreError::ClickHouse(format!("stored id `{line}`: {error}")))
            })
            .collect()
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
