//! The commands behind the CLI, one module each, plus shared time parsing and output.

pub mod audit;
pub mod compare;
pub mod export;
pub mod generate;
pub mod import;
pub mod insight;
pub mod invoice;
pub mod migrate;
pub mod output;
pub mod prices;
pub mod query;
pub mod remote;
pub mod reports;
pub mod retention;
pub mod serve;
pub mod tenants;
pub mod time;
