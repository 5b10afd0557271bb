//! Scheduled price table updates: every `[prices] update_interval_h`, read a newer LiteLLM
//! table from `[prices] update_from` (a URL or a file), record the models whose prices
//! changed from today on (history keeps its prices; cost is derived at query time), note it
//! on the audit trail, and price the gateway's reservations and live cost with it.

use std::sync::Arc;
use std::time::Duration;

use burnrate_audit::record::Kind;
use burnrate_model::PriceBook;
use burnrate_model::prices::litellm;
use chrono::Utc;

use crate::app::AppState;

/// Starts the updates when the configuration asks for them: the first at start, then one
/// per interval.
pub fn spawn_scheduler(state: Arc<AppState>) {
    let Some((from, every)) = state.config().price_update.clone() else {
        return;
    };
    let tasks = state.tasks.clone();
    tokio::spawn(async move {
        loop {
            match update_once(&state, &from).await {
                Ok(0) => tracing::debug!(%from, "price table checked: no price changed"),
                Ok(changed) => tracing::info!(%from, changed, "price table updated"),
                Err(error) => {
                    tracing::warn!(%from, %error, "price table update failed; the prices stay")
                }
            }
            if crate::app::stopping_after(&tasks, every).await {
                return;
            }
        }
    });
}

/// Reads a price table from an `http(s)://` URL or a file (blocking).
pub fn read_table(from: &str) -> Result<String, String> {
    if !(from.starts_with("http://") || from.starts_with("https://")) {
        return std::fs::read_to_string(from).map_err(|e| format!("cannot read {from}: {e}"));
    }
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| e.to_string())?
        .get(from)
        .send()
        .map_err(|e| format!("fetching {from}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("fetching {from}: the server answered {status}"));
    }
    response.text().map_err(|e| format!("reading {from}: {e}"))
}

/// Reads the table and records it when it changes a price; returns how many models changed.
pub async fn update_once(state: &AppState, from: &str) -> Result<usize, String> {
    let source = from.to_owned();
    let text = tokio::task::spawn_blocking(move || read_table(&source))
        .await
        .map_err(|e| e.to_string())??;
    let today = Utc::now().date_naive();
    let source = format!("{from}@{today}");
    let recorded = state
        .ledger
        .with_parts(
            move |store, audit| -> Result<(usize, Option<PriceBook>), String> {
                let table = litellm::read(&text).map_err(|e| e.to_string())?;
                if !table.refused.is_empty() {
                    // One bad entry does not hold back the table: its model keeps its prices.
                    tracing::warn!(
                        %source,
                        refused = %table.refused.join("; "),
                        "price table entries refused; those models keep the prices they had"
                    );
                }
                let changes = store.prices().changes(&table.models, today);
                if changes.is_empty() {
                    return Ok((0, None));
                }
                store
                    .import_litellm(table.models, Some(today), today, &source)
                    .map_err(|e| e.to_string())?;
                if let Some(trail) = audit {
                    let models: Vec<&str> = changes.iter().map(|c| c.model.as_str()).collect();
                    let detail = format!(
                        "price update from {source}: {} models changed from {today} on ({})",
                        changes.len(),
                        models.join(", ")
                    );
                    trail
                        .decision(crate::audit::decision(Kind::PriceChange, None, detail))
                        .map_err(|e| e.to_string())?;
                }
                Ok((changes.len(), Some(store.prices().clone())))
            },
        )
        .await
        .map_err(|e| e.to_string())??;
    let (changed, book) = recorded;
    if let Some(book) = book {
        state.prices.replace(book);
    }
    Ok(changed)
}
