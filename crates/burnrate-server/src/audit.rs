//! The gateway's audit trail: one record per model call (written by the ledger thread as it
//! moves journaled events into the store, so every event in the ledger has its record) and
//! one per policy decision (pauses, resumes, reloads, price changes, erasures, retention
//! runs), plus the captured content of the calls the `[[audit.capture]]` rules name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burnrate_audit::content::ContentStore;
use burnrate_audit::redact::Redactor;
use burnrate_audit::{AuditError, AuditLog, AuditRecord, Kind};
use burnrate_model::{Status, UsageEvent};
use chrono::{DateTime, SubsecRound, Utc};
use serde::Deserialize;

/// burnrate's version, stamped on every record.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `[audit]`: the trail and content capture.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Write the trail (on by default).
    pub enabled: bool,
    /// The segment files' folder (empty: `audit` beside the store file).
    pub dir: PathBuf,
    /// A segment is closed once it would pass this size (MiB); a new month starts one too.
    pub segment_mb: u64,
    /// Where captured request and response bodies go, gzip, one file per call (empty:
    /// `content` beside the store file).
    pub content_dir: PathBuf,
    /// Whose calls have their content captured; none: no content is kept.
    pub capture: Vec<CaptureRule>,
    /// What is removed from captured content before it touches disk.
    pub redact: RedactConfig,
}

impl Default for AuditConfig {
    fn default() -> AuditConfig {
        AuditConfig {
            enabled: true,
            dir: PathBuf::new(),
            segment_mb: 64,
            content_dir: PathBuf::new(),
            capture: Vec::new(),
            redact: RedactConfig::default(),
        }
    }
}

/// One `[[audit.capture]]` rule: calls of this tenant and/or feature keep their content.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CaptureRule {
    /// The tenant (`*` or absent: any).
    pub tenant: Option<String>,
    /// The feature (`*` or absent: any).
    pub feature: Option<String>,
}

impl CaptureRule {
    fn matches(&self, tenant: Option<&str>, feature: Option<&str>) -> bool {
        let fits = |rule: &Option<String>, value: Option<&str>| match rule.as_deref() {
            None | Some("*") => true,
            Some(wanted) => value == Some(wanted),
        };
        fits(&self.tenant, tenant) && fits(&self.feature, feature)
    }
}

/// `[audit.redact]`: regular expressions and JSON paths whose matches are replaced by
/// `[REDACTED]` in captured content.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RedactConfig {
    /// Regular expressions (Rust `regex` syntax), applied to every string.
    pub patterns: Vec<String>,
    /// JSON paths (RFC 9535), e.g. `$.metadata.user_email`.
    pub json_paths: Vec<String>,
}

/// Content capture as the gateway runs it: the rules and the compiled redaction.
#[derive(Clone)]
pub struct Capture {
    rules: Arc<[CaptureRule]>,
    redactor: Arc<Redactor>,
    store: Arc<ContentStore>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl AuditConfig {
    /// Problems with the table, each naming its key; the compiled capture when none.
    pub fn compile(&self) -> Result<Option<Capture>, Vec<String>> {
        let mut problems = Vec::new();
        if self.segment_mb == 0 {
            problems.push("audit.segment_mb: must be above zero".into());
        }
        for (index, rule) in self.capture.iter().enumerate() {
            if rule.tenant.is_none() && rule.feature.is_none() {
                problems.push(format!(
                    "audit.capture[{index}]: name a tenant or a feature (\"*\" for all)"
                ));
            }
        }
        let redactor = Redactor::new(&self.redact.patterns, &self.redact.json_paths)
            .map_err(|error| problems.push(error.to_string()))
            .ok();
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(match (self.enabled && !self.capture.is_empty(), redactor) {
            (true, Some(redactor)) => Some(Capture {
                rules: self.capture.clone().into(),
                redactor: Arc::new(redactor),
                store: Arc::new(ContentStore::new(&self.content_dir)),
            }),
            _ => None,
        })
    }
}

impl Capture {
    /// Whether a call of `tenant` and `feature` keeps its content.
    pub fn wants(&self, tenant: Option<&str>, feature: Option<&str>) -> bool {
        self.rules.iter().any(|rule| rule.matches(tenant, feature))
    }

    /// Redacts and stores a call's request and response under its event's id and day
    /// (blocking: run it on the blocking pool). Redaction happens here, before anything is
    /// written.
    pub fn store(
        &self,
        id: &str,
        day: chrono::NaiveDate,
        request: &[u8],
        response: &[u8],
    ) -> Result<(), String> {
        let document = serde_json::json!({
            "request": self.redactor.request(request),
            "response": self.redactor.response(response),
        });
        self.store
            .write(id, day, &document)
            .map(drop)
            .map_err(|error| error.to_string())
    }
}

/// The trail as the ledger thread writes it.
pub struct AuditTrail {
    log: AuditLog,
    content: ContentStore,
    /// The configuration hashes in force, oldest first, with when each took over.
    config_hashes: Vec<(DateTime<Utc>, String)>,
}

impl AuditTrail {
    /// Opens the trail of `config` (taking its folder's lock); `config_hash` is the
    /// gateway's configuration (empty from the CLI, which runs without one).
    pub fn open(config: &AuditConfig, config_hash: &str) -> Result<AuditTrail, AuditError> {
        let config_hashes = match config_hash.is_empty() {
            true => Vec::new(),
            false => vec![(DateTime::<Utc>::MIN_UTC, config_hash.to_owned())],
        };
        Ok(AuditTrail {
            log: AuditLog::open(&config.dir, config.segment_mb.saturating_mul(1 << 20))?,
            content: ContentStore::new(&config.content_dir),
            config_hashes,
        })
    }

    /// The trail's folder.
    pub fn dir(&self) -> &Path {
        self.log.dir()
    }

    /// The captured-content store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The configuration hash in force from `at` on (after a reload).
    pub fn config_changed(&mut self, at: DateTime<Utc>, hash: &str) {
        self.config_hashes.push((at, hash.to_owned()));
    }

    fn config_hash_at(&self, at: DateTime<Utc>) -> Option<&str> {
        self.config_hashes
            .iter()
            .rev()
            .find(|(since, _)| *since <= at)
            .or(self.config_hashes.first())
            .map(|(_, hash)| hash.as_str())
    }

    /// Appends the records of `events` and syncs them to disk. Events whose id the trail's
    /// last segments already hold (written before a crash) are skipped when `dedupe`.
    pub fn calls(&mut self, events: &[UsageEvent], dedupe: bool) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        let seen = if dedupe {
            self.log.recent_event_ids()?
        } else {
            Default::default()
        };
        // No content folder, no captured content: spare a lookup per call.
        let captures = self.content.dir().exists();
        for event in events {
            let id = event.id.map(|id| id.to_string());
            if id.as_ref().is_some_and(|id| seen.contains(id)) {
                continue;
            }
            let content_sha256 = match &id {
                Some(id) if captures => self.content.hash(id, event.ts.date_naive()).ok().flatten(),
                _ => None,
            };
            let record = AuditRecord {
                config_hash: self.config_hash_at(event.ts).map(str::to_owned),
                content_sha256,
                ..record_of(event)
            };
            self.log.append(record)?;
        }
        self.log.sync()
    }

    /// Appends a decision record (stamped with the version and the configuration in force)
    /// and syncs it to disk.
    pub fn decision(&mut self, mut record: AuditRecord) -> Result<u64, AuditError> {
        let now = Utc::now();
        record
            .burnrate_version
            .get_or_insert_with(|| VERSION.into());
        if record.config_hash.is_none() {
            record.config_hash = self.config_hash_at(now).map(str::to_owned);
        }
        record.start.get_or_insert(now);
        let (seq, _) = self.log.append(record)?;
        self.log.sync()?;
        Ok(seq)
    }
}

/// What an erasure did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Erased {
    /// The user.
    pub user_id: String,
    /// Calls of the user whose content was captured.
    pub captured: u64,
    /// Content files deleted (hot and archived).
    pub files_deleted: u64,
    /// The sequence number of the erasure's own record.
    pub record: u64,
}

impl AuditTrail {
    /// Deletes the captured content of every call of `user` (in the hot store and the
    /// archive under `archive_root`). The records stay, with the hash of what was erased,
    /// so the chain still verifies; the erasure is recorded too.
    pub fn erase_user(&mut self, user: &str, archive_root: &Path) -> Result<Erased, AuditError> {
        let archived = ContentStore::new(&archive_root.join("content"));
        let mut erased = Erased {
            user_id: user.to_owned(),
            ..Erased::default()
        };
        let mut targets = Vec::new();
        let archive = archive_root.exists().then_some(archive_root);
        burnrate_audit::export::walk(self.dir(), archive, |record, _| {
            if record.user_id.as_deref() == Some(user)
                && record.content_sha256.is_some()
                && let (Some(id), Some(start)) = (&record.event_id, record.start)
            {
                targets.push((id.clone(), start.date_naive()));
            }
            Ok(())
        })?;
        for (id, day) in &targets {
            erased.captured += 1;
            for store in [&self.content, &archived] {
                if store.erase(id, *day).map_err(|error| AuditError::Corrupt {
                    path: store.dir().display().to_string(),
                    line: 0,
                    reason: error.to_string(),
                })? {
                    erased.files_deleted += 1;
                }
            }
        }
        let record = AuditRecord {
            user_id: Some(user.to_owned()),
            ..decision(
                Kind::Erasure,
                None,
                format!(
                    "content of {} captured call(s) erased ({} file(s) deleted); the records keep \
                     the hash of what was erased",
                    erased.captured, erased.files_deleted
                ),
            )
        };
        erased.record = self.decision(record)?;
        Ok(erased)
    }
}

/// A decision record of `kind` about `tenant`, with what happened in words.
pub fn decision(kind: Kind, tenant: Option<&str>, detail: impl Into<String>) -> AuditRecord {
    AuditRecord {
        kind: Some(kind),
        tenant_id: tenant.map(str::to_owned),
        status: Some("ok".into()),
        detail: Some(detail.into()),
        ..AuditRecord::default()
    }
}

/// The record of one call: refusals and degradations are decisions about a call, so they
/// carry its attribution too.
pub fn record_of(event: &UsageEvent) -> AuditRecord {
    let degraded = event.labels.get("burnrate.degraded");
    let kind = match (event.status, degraded) {
        (Status::Blocked, _) => Kind::Refusal,
        (_, Some(_)) => Kind::Degradation,
        _ => Kind::Call,
    };
    let detail = match kind {
        Kind::Degradation => degraded.map(|how| match &event.error {
            Some(error) => format!("degraded: {how}; {error}"),
            None => format!("degraded: {how}"),
        }),
        _ => event.error.clone(),
    };
    // The ledger keeps microseconds: so does the record, so the two match exactly.
    let start = event.ts.trunc_subsecs(6);
    let end = event
        .duration_ms
        .and_then(|ms| i64::try_from(ms).ok())
        .and_then(|ms| start.checked_add_signed(chrono::Duration::milliseconds(ms)));
    let usage = &event.usage;
    AuditRecord {
        kind: Some(kind),
        start: Some(start),
        end,
        tenant_id: event.tenant_id.clone(),
        user_id: event.user_id.clone(),
        feature: event.feature.clone(),
        agent_run_id: event.agent_run_id.clone(),
        deployment: event.deployment.clone(),
        burnrate_version: Some(VERSION.into()),
        prompt_version: event.prompt_version.clone(),
        provider: Some(event.provider.clone()),
        requested_model: event
            .requested_model
            .clone()
            .or_else(|| Some(event.model.clone())),
        model: Some(event.model.clone()),
        input_tokens: Some(usage.input_tokens),
        cache_read_tokens: Some(usage.cache_read_tokens),
        cache_write_tokens: Some(usage.cache_write_tokens),
        output_tokens: Some(usage.output_tokens),
        reasoning_tokens: Some(usage.reasoning_tokens),
        service_tier: event.service_tier.clone(),
        status: Some(event.status.as_str().into()),
        detail,
        event_id: event.id.map(|id| id.to_string()),
        ..AuditRecord::default()
    }
}

/// Writes a price-change record when the price table (the bundled snapshot and the override
/// file) differs from the one the trail last noted (kept in `prices.sha256` in its folder).
pub fn note_prices(
    trail: &mut AuditTrail,
    overrides_path: Option<&Path>,
    overrides: &str,
) -> Result<(), AuditError> {
    let snapshot = burnrate_model::prices::BUNDLED_SNAPSHOT_DATE;
    let fingerprint =
        burnrate_audit::log::sha256_hex(format!("{snapshot}\n{overrides}").as_bytes());
    let noted = trail.dir().join("prices.sha256");
    if std::fs::read_to_string(&noted).is_ok_and(|text| text.trim() == fingerprint) {
        return Ok(());
    }
    let detail = match overrides_path {
        Some(path) => format!(
            "price table {fingerprint}: LiteLLM snapshot {snapshot}, overrides {} (sha256 {})",
            path.display(),
            burnrate_audit::log::sha256_hex(overrides.as_bytes())
        ),
        None => format!("price table {fingerprint}: LiteLLM snapshot {snapshot}, no overrides"),
    };
    trail.decision(decision(Kind::PriceChange, None, detail))?;
    std::fs::write(&noted, format!("{fingerprint}\n")).map_err(|source| AuditError::Io {
        path: noted.display().to_string(),
        source,
    })
}
