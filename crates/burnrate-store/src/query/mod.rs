//! Queries: the spec, its SQL and typed results.

pub mod bins;
pub mod result;
pub mod runs;
pub mod spec;
pub mod sql;
