//! Queries and reports answered by a running `burnrate serve` (`--server URL`).

use anyhow::{Context, anyhow};
use burnrate_store::QueryResult;
use serde_json::Value;

/// POSTs `request` to the server's admin API and rebuilds the typed result.
pub fn post(
    server: &str,
    token: Option<&str>,
    path: &str,
    request: &Value,
) -> anyhow::Result<QueryResult> {
    let answer = call(server, token, reqwest::Method::POST, path, Some(request))?;
    Ok(QueryResult::from_wire_json(&answer)?)
}

/// Calls the server's admin API and returns its JSON answer.
pub fn call(
    server: &str,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    request: Option<&Value>,
) -> anyhow::Result<Value> {
    let token = token.ok_or_else(|| {
        anyhow!("--server needs the admin token: pass --admin-token or set BURNRATE_ADMIN_TOKEN")
    })?;
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        return Err(anyhow!(
            "--server `{server}`: give the gateway's URL, e.g. http://127.0.0.1:8790"
        ));
    }
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let answer: Value = runtime.block_on(async {
        let mut builder = reqwest::Client::new()
            .request(method, &url)
            .bearer_auth(token);
        if let Some(request) = request {
            builder = builder.json(request);
        }
        let response = builder
            .send()
            .await
            .with_context(|| format!("cannot reach {url}: is `burnrate serve` running there?"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("{url} did not answer JSON"))?;
        if !status.is_success() {
            let message = body["error"].as_str().unwrap_or("no reason given");
            // A refused reload lists the configuration's problems beside its message.
            let problems: Vec<&str> = body["problems"]
                .as_array()
                .map(|problems| problems.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !problems.is_empty() {
                return Err(anyhow!(
                    "{url} answered {status}: {message}:\n  - {}",
                    problems.join("\n  - ")
                ));
            }
            return Err(anyhow!("{url} answered {status}: {message}"));
        }
        Ok(body)
    })?;
    Ok(answer)
}
