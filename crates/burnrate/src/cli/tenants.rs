//! `burnrate tenants pause|resume|paused` and `burnrate reload`: operator actions on a
//! running gateway, through its admin API.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use super::remote;
use crate::{ServerArgs, TenantsCommand};

/// Runs a `tenants` subcommand.
pub fn run(command: TenantsCommand) -> anyhow::Result<ExitCode> {
    match command {
        TenantsCommand::Pause { id, reason, server } => {
            let body = json!({"reason": reason});
            let path = format!("/api/v1/admin/tenants/{}/pause", encode(&id));
            let answer = call(&server, Method::POST, &path, Some(&body))?;
            if answer["changed"] == Value::Bool(true) {
                outln!("tenant {id} paused: every call is refused with tenant_paused");
            } else {
                outln!("tenant {id} was already paused");
            }
            if answer["bound_to_a_key"] == Value::Bool(false) {
                eprintln!(
                    "WARNING: no key in the gateway's configuration is bound to tenant `{id}`, \
                     so no call can be of it and this pause refuses nothing: check the name \
                     (`burnrate tenants resume {id}` undoes it)"
                );
            }
        }
        TenantsCommand::Resume { id, server } => {
            let path = format!("/api/v1/admin/tenants/{}/resume", encode(&id));
            let answer = call(&server, Method::POST, &path, None)?;
            if answer["changed"] == Value::Bool(true) {
                outln!("tenant {id} resumed");
            } else {
                outln!("tenant {id} was not paused");
            }
        }
        TenantsCommand::Paused { server } => {
            let answer = call(&server, Method::GET, "/api/v1/admin/tenants/paused", None)?;
            let paused = answer["paused"].as_array().cloned().unwrap_or_default();
            if paused.is_empty() {
                outln!("no tenant is paused");
            } else {
                let mut table = super::output::new_table();
                table.set_header(["tenant", "reason"]);
                for pause in paused {
                    table.add_row([
                        pause["tenant_id"].as_str().unwrap_or_default(),
                        pause["reason"].as_str().unwrap_or_default(),
                    ]);
                }
                outln!("{table}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `burnrate reload`.
pub fn reload(server: &ServerArgs) -> anyhow::Result<ExitCode> {
    let answer = call(server, Method::POST, "/api/v1/admin/reload", None)?;
    outln!("configuration reloaded");
    for key in answer["needs_restart"].as_array().into_iter().flatten() {
        outln!(
            "  {} changed but takes effect only after a restart",
            key.as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn call(
    server: &ServerArgs,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    remote::call(
        &server.server,
        server.admin_token.as_deref(),
        method,
        path,
        body,
    )
}

/// A tenant id as one URL path segment.
fn encode(id: &str) -> String {
    id.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}
