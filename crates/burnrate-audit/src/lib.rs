//! The audit trail beside the ledger: one record per model call and per policy decision, in
//! append-only segment files where every record carries the hash of the one before it, so
//! that altering, removing or reordering a record breaks the chain at that spot.
//!
//! A segment is a text file of lines `JSON<TAB>SHA256\n`: the record as compact JSON (with
//! its sequence number and the previous record's hash in it) and the SHA-256 of exactly those
//! JSON bytes. [`verify`] recomputes every hash and follows the chain across segments.

pub mod archive;
pub mod content;
pub mod export;
pub mod log;
pub mod record;
pub mod redact;
pub mod verify;

pub use content::{ContentError, ContentRef, ContentStore};
pub use log::{Anchor, AuditError, AuditLog, SegmentHead};
pub use record::{AuditRecord, Kind};
pub use redact::{REDACTED, RedactError, Redactor};
pub use verify::{Break, Chain, Verified, verify};
