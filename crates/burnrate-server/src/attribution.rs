//! Attribution from the `X-Attribution-*` headers (DESIGN.md, "Attribution headers"). The
//! headers are read here and never forwarded upstream; a virtual key's tenant wins over the
//! tenant header.

use std::collections::BTreeMap;

use burnrate_model::UsageEvent;
use burnrate_model::event::MAX_TEXT_LEN;
use http::HeaderMap;

use crate::config::Untagged;
use crate::error::ApiError;
use crate::keys::KeyBinding;

/// Prefix of every attribution header (lowercase, as `http` stores names).
pub const PREFIX: &str = "x-attribution-";

/// Value recorded for a required dimension a call did not carry, with `untagged = "tag"`.
pub const UNTAGGED: &str = "untagged";

/// Header suffix → dimension name, for the fixed dimensions.
const HEADERS: [(&str, &str); 12] = [
    ("tenant-id", "tenant_id"),
    ("user-id", "user_id"),
    ("feature", "feature"),
    ("task-id", "task_id"),
    ("route", "route"),
    ("agent-run-id", "agent_run_id"),
    ("parent-run-id", "parent_run_id"),
    ("agent-name", "agent_name"),
    ("session-id", "session_id"),
    ("deployment", "deployment"),
    ("prompt-version", "prompt_version"),
    ("effort", "effort"),
];

/// The dimensions a call carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// Values by dimension name (`tenant_id`, ...).
    dims: BTreeMap<&'static str, String>,
    /// `X-Attribution-Label-<name>` values.
    labels: BTreeMap<String, String>,
}

impl Attribution {
    /// Reads the attribution headers; a value that is not UTF-8, too long or has control
    /// characters is a 400 naming the header.
    pub fn from_headers(headers: &HeaderMap) -> Result<Attribution, ApiError> {
        let mut attribution = Attribution::default();
        for (name, value) in headers {
            let Some(suffix) = name.as_str().strip_prefix(PREFIX) else {
                continue;
            };
            let bad = |reason: &str| ApiError::BadRequest {
                field: header_name(suffix),
                reason: reason.to_string(),
            };
            let text = std::str::from_utf8(value.as_bytes())
                .map_err(|_| bad("is not valid UTF-8"))?
                .trim();
            if text.len() > MAX_TEXT_LEN {
                return Err(bad(&format!("is longer than {MAX_TEXT_LEN} bytes")));
            }
            if text.chars().any(char::is_control) {
                return Err(bad("must not contain control characters"));
            }
            if text.is_empty() {
                continue;
            }
            if let Some(label) = suffix.strip_prefix("label-") {
                if label.is_empty() {
                    return Err(bad("needs a label name after X-Attribution-Label-"));
                }
                attribution
                    .labels
                    .insert(label.to_string(), text.to_string());
            } else if let Some((_, dim)) = HEADERS.iter().find(|(header, _)| *header == suffix) {
                attribution.dims.insert(dim, text.to_string());
            } else {
                return Err(bad(
                    "is not an attribution header (see DESIGN.md: Tenant-ID, User-ID, Feature, \
                     Task-ID, Route, Agent-Run-ID, Parent-Run-ID, Agent-Name, Session-ID, \
                     Deployment, Prompt-Version, Effort, Label-<name>)",
                ));
            }
        }
        Ok(attribution)
    }

    /// Fixes the tenant to the key's: a header cannot override it.
    pub fn bind_key(&mut self, key: &KeyBinding) {
        self.dims.insert("tenant_id", key.tenant_id.clone());
    }

    /// The value of a dimension.
    pub fn get(&self, dim: &str) -> Option<&str> {
        self.dims.get(dim).map(String::as_str)
    }

    /// Applies `[attribution] require`: with `Reject`, an error naming every missing header;
    /// with `Tag`, missing dimensions are recorded as `untagged`.
    pub fn require(
        &mut self,
        require: &[&'static str],
        untagged: Untagged,
    ) -> Result<(), ApiError> {
        let missing: Vec<&'static str> = require
            .iter()
            .copied()
            .filter(|dim| !self.dims.contains_key(dim))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        match untagged {
            Untagged::Reject => Err(ApiError::MissingAttribution(
                missing.iter().map(|dim| dimension_header(dim)).collect(),
            )),
            Untagged::Tag => {
                for dim in missing {
                    self.dims.insert(dim, UNTAGGED.to_string());
                }
                Ok(())
            }
        }
    }

    /// Writes the dimensions and labels into an event.
    pub fn apply(&self, event: &mut UsageEvent) {
        for (dim, value) in &self.dims {
            let slot = match *dim {
                "tenant_id" => &mut event.tenant_id,
                "user_id" => &mut event.user_id,
                "feature" => &mut event.feature,
                "task_id" => &mut event.task_id,
                "route" => &mut event.route,
                "agent_run_id" => &mut event.agent_run_id,
                "parent_run_id" => &mut event.parent_run_id,
                "agent_name" => &mut event.agent_name,
                "session_id" => &mut event.session_id,
                "deployment" => &mut event.deployment,
                "prompt_version" => &mut event.prompt_version,
                "effort" => &mut event.effort,
                _ => continue,
            };
            *slot = Some(value.clone());
        }
        event.labels.extend(
            self.labels
                .iter()
                .map(|(name, value)| (name.clone(), value.clone())),
        );
    }
}

/// `X-Attribution-User-ID` for `user_id`.
pub fn dimension_header(dim: &str) -> String {
    HEADERS
        .iter()
        .find(|(_, name)| *name == dim)
        .map_or_else(|| dim.to_string(), |(suffix, _)| header_name(suffix))
}

/// The canonical spelling of an attribution header from its lowercase suffix.
fn header_name(suffix: &str) -> String {
    let words: Vec<String> = suffix
        .split('-')
        .map(|word| match word {
            "id" => "ID".to_string(),
            word => {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_uppercase().chain(chars).collect()
                })
            }
        })
        .collect();
    format!("X-Attribution-{}", words.join("-"))
}

#[cfg(test)]
mod tests;
