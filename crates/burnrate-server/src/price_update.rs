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

/// How many fields of a table were refused, with the first few reasons (a table whose
/// format changed could refuse thousands, every interval); `None` when none was.
fn refused_summary(refused: &[String]) -> Option<String> {
    const SHOWN: usize = 10;
    if refused.is_empty() {
        return None;
    }
    let mut summary = format!(
        "{} price fields refused: {}",
        refused.len(),
        refused[..refused.len().min(SHOWN)].join("; ")
    );
    if refused.len() > SHOWN {
        summary.push_str("; …");
    }
    Some(summary)
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
                // One bad entry does not hold back the table: its model keeps its prices.
                let refused = refused_summary(&table.refused);
                if let Some(refused) = &refused {
                    tracing::warn!(
                        %source,
                        %refused,
                        "price table entries refused; their models keep their current prices"
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
                    let mut detail = format!(
                        "price update from {source}: {} models changed from {today} on ({})",
                        changes.len(),
                        models.join(", ")
                    );
                    if let Some(refused) = &refused {
                        detail.push_str(&format!("; {refused}"));
                    }
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

#[cfg(test)]
mod tests {
    use super::refused_summary;

    #[test]
    fn refusals_are_counted_and_only_the_first_few_are_spelled_out() {
        assert_eq!(refused_summary(&[]), None);
        let one = refused_summary(&["`m`.input_cost_per_token: is negative".into()]).unwrap();
        assert_eq!(
            one,
            "1 price fields refused: `m`.input_cost_per_token: is negative"
        );
        let many: Vec<String> = (0..25).map(|n| format!("`m{n}`: bad")).collect();
        let summary = refused_summary(&many).unwrap();
        assert!(summary.starts_with("25 price fields refused: `m0`: bad; "));
        assert!(summary.contains("`m9`: bad; …") && !summary.contains("`m10`"));
    }
}
