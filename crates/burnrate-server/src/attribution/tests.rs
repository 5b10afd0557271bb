//! Attribution headers: parsing, key binding, required dimensions.

use http::HeaderValue;

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

fn key(tenant: &str) -> KeyBinding {
    KeyBinding {
        id: "k".into(),
        tenant_id: tenant.into(),
        users: vec![],
        features: vec![],
        models: vec![],
    }
}

#[test]
fn every_header_lands_in_its_dimension() {
    let attribution = Attribution::from_headers(&headers(&[
        ("X-Attribution-Tenant-ID", "acme"),
        ("X-Attribution-User-ID", "u1"),
        ("X-Attribution-Feature", "triage"),
        ("X-Attribution-Task-ID", "t1"),
        ("X-Attribution-Route", "/api/x"),
        ("X-Attribution-Agent-Run-ID", "run-1"),
        ("X-Attribution-Parent-Run-ID", "run-0"),
        ("X-Attribution-Agent-Name", "coordinator"),
        ("X-Attribution-Session-ID", "s1"),
        ("X-Attribution-Deployment", "production"),
        ("X-Attribution-Prompt-Version", "v2"),
        ("X-Attribution-Effort", "high"),
        ("X-Attribution-Label-Team", "core"),
        ("Authorization", "Bearer not-attribution"),
    ]))
    .unwrap();
    let mut event: UsageEvent = serde_json::from_value(serde_json::json!({
        "ts": "2026-11-20T10:00:00Z", "provider": "openai", "model": "gpt-4.1", "usage": {}
    }))
    .unwrap();
    attribution.apply(&mut event);
    assert_eq!(event.tenant_id.as_deref(), Some("acme"));
    assert_eq!(event.user_id.as_deref(), Some("u1"));
    assert_eq!(event.feature.as_deref(), Some("triage"));
    assert_eq!(event.task_id.as_deref(), Some("t1"));
    assert_eq!(event.route.as_deref(), Some("/api/x"));
    assert_eq!(event.agent_run_id.as_deref(), Some("run-1"));
    assert_eq!(event.parent_run_id.as_deref(), Some("run-0"));
    assert_eq!(event.agent_name.as_deref(), Some("coordinator"));
    assert_eq!(event.session_id.as_deref(), Some("s1"));
    assert_eq!(event.deployment.as_deref(), Some("production"));
    assert_eq!(event.prompt_version.as_deref(), Some("v2"));
    assert_eq!(event.effort.as_deref(), Some("high"));
    assert_eq!(event.labels.get("team").map(String::as_str), Some("core"));
    event.validate().unwrap();
}

#[test]
fn the_key_fixes_the_tenant() {
    let mut attribution =
        Attribution::from_headers(&headers(&[("X-Attribution-Tenant-ID", "someone-else")]))
            .unwrap();
    attribution.bind_key(&key("acme"));
    assert_eq!(attribution.get("tenant_id"), Some("acme"));
}

#[test]
fn missing_required_headers_are_named_or_tagged() {
    let mut attribution =
        Attribution::from_headers(&headers(&[("X-Attribution-Feature", "triage")])).unwrap();
    attribution.bind_key(&key("acme"));
    let require = ["tenant_id", "user_id", "feature"];
    let error = attribution
        .clone()
        .require(&require, Untagged::Reject)
        .unwrap_err();
    assert_eq!(
        error,
        ApiError::MissingAttribution(vec!["X-Attribution-User-ID".into()])
    );
    attribution.require(&require, Untagged::Tag).unwrap();
    assert_eq!(attribution.get("user_id"), Some(UNTAGGED));
    assert_eq!(attribution.get("feature"), Some("triage"));
}

#[test]
fn bad_header_values_name_the_header() {
    let mut map = HeaderMap::new();
    map.insert(
        "x-attribution-user-id",
        HeaderValue::from_bytes(b"caf\xe9").unwrap(),
    );
    let error = Attribution::from_headers(&map).unwrap_err();
    assert_eq!(
        error,
        ApiError::BadRequest {
            field: "X-Attribution-User-ID".into(),
            reason: "is not valid UTF-8".into(),
        }
    );
    let error =
        Attribution::from_headers(&headers(&[("X-Attribution-Colour", "blue")])).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("X-Attribution-Colour: is not an attribution header"),
        "{error}"
    );
}
