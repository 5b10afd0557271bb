//! The audit trail beside the ledger: one record per model call and per policy decision, in
//! append-only segment files where every record carries the hash of the one before it, so
//! that altering, removing or reordering a record breaks the chain at that spot.
//!
//! A segment is a text file of lines `JSON<TAB>SHA256\n`: the record as compact JSON (with
//! its sequence number and the previous record's hash in it) and the SHA-256 of exactly those
//! JSON bytes. [`verify`] recomputes every hash and follows the chain across segments.

pub mod log;
pub mod record;
pub mod verify;

pub use log::{AuditLog, SegmentHead};
pub use record::{AuditRecord, Kind};
pub use verify::{Break, Verified, verify};
