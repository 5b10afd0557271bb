//! A marker in `meta` that the derived tables (the roll-ups, the run totals and the priced
//! user days) counted every event when the ledger was last written, so opening a ledger need not sum them to find out.
//!
//! Appends are not one transaction (see [`DuckStore::append_batches`]): a crash between the
//! events' append and the derived tables' leaves them behind. Every write that can stop
//! half-way like that removes the marker first and records it again, with the event count,
//! once it completed. Opening trusts the derived tables when the marker is there and names
//! the ledger's event count; otherwise it sums them against the events (0.09 s of every open
//! at 100M events), repairs what is behind and records the marker.

use super::DuckStore;
use crate::error::StoreError;

/// The `meta` key of the marker; its value is the event count the derived tables counted.
/// The key changes whenever a derived table is added, so a ledger appended to meanwhile by
/// an older burnrate (which records its own key and does not keep the new table) is taken
/// for complete only if it left the event count exactly as it was (say, archived a month
/// and then appended as many calls). `derived_complete_at`: before the priced user days.
pub(super) const META_COMPLETE: &str = "derived_complete_v2";

impl DuckStore {
    /// Whether the marker says the derived tables count every one of the ledger's events.
    pub(super) fn marked_complete(&self) -> Result<bool, StoreError> {
        let Some(marked) = self.meta_value(META_COMPLETE)? else {
            return Ok(false);
        };
        Ok(marked == self.event_count()?.to_string())
    }

    /// Removes the marker before a write that can stop with the derived tables behind the
    /// events (and an older burnrate's, which would otherwise outlive what it said).
    pub(super) fn unmark_complete(&self) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM meta WHERE key IN (?, 'derived_complete_at')",
            [META_COMPLETE],
        )?;
        Ok(())
    }

    /// Records the marker, when the roll-ups, the run totals and the priced user days are
    /// all in use (so they count every event) and this store writes the ledger.
    pub(super) fn mark_complete(&self) -> Result<(), StoreError> {
        if !self.rollup_valid
            || !self.run_totals.valid
            || !self.user_day_costs_valid
            || self.archive.is_some()
        {
            return Ok(());
        }
        // One statement (each costs a commit): the count as `event_count` writes it.
        self.conn.execute(
            "INSERT OR REPLACE INTO meta SELECT ?, CAST(count(*) AS VARCHAR) FROM events",
            [META_COMPLETE],
        )?;
        Ok(())
    }
}
