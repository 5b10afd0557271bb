//! Enforcement for the burnrate gateway: rate limits, budgets that concurrent calls cannot
//! overshoot, kill switches for runaway tenants, agent-run limits with a loop detector, and
//! graceful degradation (a cheaper model, a cached answer, a clear quota error).
//!
//! The engine ([`Policy`]) is pure decision logic over a [`State`] backend: in memory for
//! one gateway, or Redis for several replicas sharing one set of limits, reservations, run
//! state and pauses. The server calls [`Policy::admit`] before forwarding a call and
//! [`Policy::settle`] when its usage is known.

mod budgets;
pub mod cache;
pub mod config;
pub mod cost;
mod engine;
pub mod gcra;
pub mod input;
pub mod killswitch;
pub mod period;
pub mod state;

pub use budgets::BudgetState;
pub use cache::request_key;
pub use config::{Mode, PolicyConfig};
pub use engine::{
    Admission, Alert, CallFacts, Degraded, Outcome, Policy, RateHeaders, Refusal, Ticket,
};
pub use input::{InputShape, input_shape};
pub use state::{State, StateError};
