//! burnrate's domain: the usage event, exact money and the effective-dated price book.
//!
//! Pure code with no I/O; every other crate builds on it.

pub mod dimension;
pub mod event;
pub mod money;
pub mod prices;
pub mod text;
pub mod when;

pub use dimension::Dimension;
pub use event::{EventError, Layers, Outcome, Status, ToolCall, Usage, UsageEvent};
pub use money::Money;
pub use prices::{PriceBook, Rates, ServiceTier, TokenClass};
