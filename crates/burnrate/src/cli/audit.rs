//! `burnrate audit verify|heads|export|erase`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use burnrate_audit::export::{self, Filter, Format};
use burnrate_audit::{AuditLog, verify};
use burnrate_server::audit::AuditTrail;
use burnrate_server::config::Storage;
use chrono::Utc;

use super::time::parse_time;
use crate::{AuditCommand, AuditExportArgs, AuditPaths};

/// The trail's folders as the command line names them.
struct Folders {
    audit: burnrate_server::audit::AuditConfig,
    archive: PathBuf,
}

fn folders(paths: &AuditPaths) -> anyhow::Result<Folders> {
    let storage = match (&paths.config, &paths.dir) {
        (Some(config), _) => Storage::load(config)?,
        (None, Some(dir)) => {
            let mut storage = Storage::beside(&dir.join("..").join("burnrate.duckdb"));
            storage.audit.dir.clone_from(dir);
            storage
        }
        (None, None) => anyhow::bail!(
            "name the trail: --config FILE (the gateway's configuration) or --dir AUDIT_DIR"
        ),
    };
    Ok(Folders {
        archive: paths
            .archive_dir
            .clone()
            .unwrap_or(storage.retention.archive_dir),
        audit: storage.audit,
    })
}

/// Runs an audit command.
pub fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            paths,
            include_archive,
        } => {
            let folders = folders(&paths)?;
            let dir = &folders.audit.dir;
            if !dir.is_dir() {
                anyhow::bail!(
                    "no audit trail at {}: the folder does not exist (relative paths in a \
                     configuration are read from the folder the command runs in)",
                    dir.display()
                );
            }
            if include_archive {
                let mut records = 0u64;
                let check = export::walk(&folders.audit.dir, Some(&folders.archive), |_, _| {
                    records += 1;
                    Ok(())
                })?;
                return Ok(match check.problem {
                    None => {
                        outln!("ok: {records} records, archive and segments");
                        ExitCode::SUCCESS
                    }
                    Some(problem) => {
                        eprintln!("BROKEN: {problem}");
                        ExitCode::FAILURE
                    }
                });
            }
            match verify(&folders.audit.dir) {
                Ok(verified) if verified.segments == 0 => anyhow::bail!(
                    "no audit records in {}: nothing to verify (a trail retention has archived \
                     is verified with --include-archive)",
                    dir.display()
                ),
                Ok(verified) => {
                    outln!(
                        "ok: {} records in {} segment(s); last hash {}",
                        verified.records,
                        verified.segments,
                        verified.last_hash
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(broken) => {
                    eprintln!("BROKEN: {broken}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Heads { paths } => {
            for head in AuditLog::heads(&folders(&paths)?.audit.dir)? {
                outln!("{}", serde_json::to_string(&head)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export(args) => run_export(&args),
        AuditCommand::Erase { paths, user } => {
            let folders = folders(&paths)?;
            let mut trail = AuditTrail::open(&folders.audit, "")
                .with_context(|| format!("opening the trail in {}", folders.audit.dir.display()))?;
            let erased = trail.erase_user(&user, &folders.archive)?;
            outln!(
                "erased the content of {} captured call(s) of user {user} ({} file(s) deleted); \
                 recorded as record {}",
                erased.captured,
                erased.files_deleted,
                erased.record
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_export(args: &AuditExportArgs) -> anyhow::Result<ExitCode> {
    let folders = folders(&args.paths)?;
    let now = Utc::now();
    let filter = Filter {
        tenant: args.tenant.clone(),
        user: args.user.clone(),
        since: args
            .since
            .as_deref()
            .map(|text| parse_time(text, now))
            .transpose()
            .context("--since")?,
        until: args
            .until
            .as_deref()
            .map(|text| parse_time(text, now))
            .transpose()
            .context("--until")?,
    };
    let format: Format = args
        .format
        .parse()
        .map_err(|error| anyhow::anyhow!("--format: {error}"))?;
    let archive = args.include_archive.then_some(folders.archive.as_path());
    let manifest = export::export(&folders.audit.dir, archive, &filter, format, &args.out)?;
    outln!(
        "{} records written to {} (manifest {})",
        manifest.records,
        args.out.display(),
        export::manifest_path(&args.out).display()
    );
    match manifest.chain.problem {
        None => {
            outln!(
                "chain ok: {} records checked",
                manifest.chain.records_checked
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(problem) => {
            eprintln!("BROKEN chain (the export is written; the manifest says where): {problem}");
            Ok(ExitCode::FAILURE)
        }
    }
}
