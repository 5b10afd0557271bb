//! `burnrate audit verify|heads`.

use std::process::ExitCode;

use burnrate_audit::{AuditLog, verify};

use crate::AuditCommand;

/// Runs an audit command.
pub fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { dir } => match verify(&dir) {
            Ok(verified) => {
                println!(
                    "ok: {} records in {} segment(s); last hash {}",
                    verified.records, verified.segments, verified.last_hash
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(broken) => {
                eprintln!("BROKEN: {broken}");
                Ok(ExitCode::FAILURE)
            }
        },
        AuditCommand::Heads { dir } => {
            for head in AuditLog::heads(&dir)? {
                println!("{}", serde_json::to_string(&head)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
