//! What every dashboard page and view endpoint is about: a time range and filters, read
//! from the query string, and written back into the links that drill down.

use burnrate_model::dimension::{Dimension, Field};
use burnrate_store::Filter;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;

/// The dimensions a page can be filtered by, in the order the filter bar shows them.
pub const FILTER_FIELDS: [Field; 6] = [
    Field::Tenant,
    Field::User,
    Field::Feature,
    Field::Model,
    Field::Route,
    Field::Deployment,
];

/// The ranges the picker offers, as `range=` values.
pub const PRESETS: [(&str, &str); 4] = [
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("90d", "last 90 days"),
];

/// The query string of a page or view (every key optional; empty values count as absent,
/// as a submitted form sends them).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// A preset: `24h`, `7d`, `30d`, `90d`.
    pub range: Option<String>,
    /// Start: a date (`2026-11-01`, midnight UTC) or RFC 3339.
    pub since: Option<String>,
    /// End (exclusive): a date (the day is included) or RFC 3339.
    pub until: Option<String>,
    /// Filter: tenant.
    pub tenant: Option<String>,
    /// Filter: user.
    pub user: Option<String>,
    /// Filter: feature.
    pub feature: Option<String>,
    /// Filter: model.
    pub model: Option<String>,
    /// Filter: route.
    pub route: Option<String>,
    /// Filter: deployment.
    pub deployment: Option<String>,
    /// The dimension a chart splits or ranks by (`tenant_id`, `feature`, `label.team`).
    pub by: Option<String>,
    /// The day a page looks at (anomalies), `YYYY-MM-DD`.
    pub day: Option<String>,
}

/// A validated range and filters.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// Start, inclusive.
    pub since: DateTime<Utc>,
    /// End, exclusive.
    pub until: DateTime<Utc>,
    /// The preset chosen, if the range is one.
    pub preset: Option<String>,
    /// `(field, value)` equality filters.
    pub filters: Vec<(Field, String)>,
    /// The split or ranking dimension, if one was asked for.
    pub by: Option<Dimension>,
    /// The day asked for, if one was.
    pub day: Option<NaiveDate>,
}

impl Scope {
    /// Reads a query string; `now` ends the presets. The error names the key and the reason.
    pub fn from_query(query: &PageQuery, now: DateTime<Utc>) -> Result<Scope, String> {
        let given = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
        };
        let (since, until, preset) = match (given(&query.since), given(&query.until)) {
            (None, None) => {
                let preset = given(&query.range).unwrap_or_else(|| "7d".into());
                let length = preset_length(&preset)?;
                (now - length, now, Some(preset))
            }
            (since, until) => {
                let until = match until {
                    Some(text) => instant("until", &text, true)?,
                    None => now,
                };
                let since = match since {
                    Some(text) => instant("since", &text, false)?,
                    None => until - Duration::days(7),
                };
                (since, until, None)
            }
        };
        if since >= until {
            return Err(format!("since: {since} is not before until ({until})"));
        }
        let values = [
            &query.tenant,
            &query.user,
            &query.feature,
            &query.model,
            &query.route,
            &query.deployment,
        ];
        let filters = FILTER_FIELDS
            .iter()
            .zip(values)
            .filter_map(|(field, value)| given(value).map(|value| (*field, value)))
            .collect();
        let by = given(&query.by)
            .map(|name| name.parse::<Dimension>())
            .transpose()
            .map_err(|error| format!("by: {error}"))?;
        let day = given(&query.day)
            .map(|text| {
                text.parse::<NaiveDate>()
                    .map_err(|_| format!("day: `{text}` is not a date like 2026-11-23"))
            })
            .transpose()?;
        Ok(Scope {
            since,
            until,
            preset,
            filters,
            by,
            day,
        })
    }

    /// The filters as the query spec takes them.
    pub fn spec_filters(&self) -> Vec<Filter> {
        self.filters
            .iter()
            .map(|(field, value)| Filter {
                dimension: Dimension::Field(*field),
                negate: false,
                values: vec![value.clone()],
            })
            .collect()
    }

    /// The filters' value for `field`.
    pub fn filter(&self, field: Field) -> Option<&str> {
        self.filters
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, value)| value.as_str())
    }

    /// This scope with `field = value` added (or replaced).
    pub fn with_filter(&self, field: Field, value: &str) -> Scope {
        let mut scope = self.clone();
        scope.filters.retain(|(f, _)| *f != field);
        scope.filters.push((field, value.to_owned()));
        scope.filters.sort_by_key(|(f, _)| filter_position(*f));
        scope
    }

    /// This scope without the filter on `field`.
    pub fn without_filter(&self, field: Field) -> Scope {
        let mut scope = self.clone();
        scope.filters.retain(|(f, _)| *f != field);
        scope
    }

    /// The query string that gives this scope back (range and filters; `by` and `day`
    /// stay with the page that set them), URL-encoded, without the `?`.
    pub fn query_string(&self) -> String {
        let mut pairs = url_pairs();
        match &self.preset {
            Some(preset) => {
                pairs.append_pair("range", preset);
            }
            None => {
                pairs.append_pair("since", &self.since.to_rfc3339());
                pairs.append_pair("until", &self.until.to_rfc3339());
            }
        }
        for (field, value) in &self.filters {
            pairs.append_pair(filter_key(*field), value);
        }
        pairs.finish()
    }

    /// `path?query` for this scope, with `extra` pairs appended.
    pub fn link(&self, path: &str, extra: &[(&str, &str)]) -> String {
        let mut query = self.query_string();
        if !extra.is_empty() {
            let mut pairs = url_pairs();
            for (key, value) in extra {
                pairs.append_pair(key, value);
            }
            query.push('&');
            query.push_str(&pairs.finish());
        }
        format!("{path}?{query}")
    }

    /// The range in words.
    pub fn describe(&self) -> String {
        match self.preset.as_deref().and_then(preset_label) {
            Some(label) => label.to_owned(),
            None => format!(
                "{} to {}",
                self.since.format("%Y-%m-%d %H:%M"),
                self.until.format("%Y-%m-%d %H:%M UTC")
            ),
        }
    }
}

/// The query-string key of a filter field.
pub fn filter_key(field: Field) -> &'static str {
    match field {
        Field::Tenant => "tenant",
        Field::User => "user",
        Field::Feature => "feature",
        Field::Model => "model",
        Field::Route => "route",
        Field::Deployment => "deployment",
        other => other.as_str(),
    }
}

fn filter_position(field: Field) -> usize {
    FILTER_FIELDS
        .iter()
        .position(|f| *f == field)
        .unwrap_or(FILTER_FIELDS.len())
}

fn url_pairs() -> form_urlencoded::Serializer<'static, String> {
    form_urlencoded::Serializer::new(String::new())
}

fn preset_label(preset: &str) -> Option<&'static str> {
    PRESETS
        .iter()
        .find(|(key, _)| *key == preset)
        .map(|(_, label)| *label)
}

fn preset_length(preset: &str) -> Result<Duration, String> {
    match preset {
        "24h" => Ok(Duration::hours(24)),
        "7d" => Ok(Duration::days(7)),
        "30d" => Ok(Duration::days(30)),
        "90d" => Ok(Duration::days(90)),
        other => Err(format!(
            "range: `{other}` is not one of 24h, 7d, 30d, 90d (or give since and until)"
        )),
    }
}

/// A date (midnight UTC; for an end, the midnight after it, so the day is included) or an
/// RFC 3339 time.
fn instant(key: &str, text: &str, end: bool) -> Result<DateTime<Utc>, String> {
    if let Ok(day) = text.parse::<NaiveDate>() {
        let day = if end {
            day.succ_opt().unwrap_or(day)
        } else {
            day
        };
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| format!("{key}: `{text}` is not a date (2026-11-23) or an RFC 3339 time"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn presets_dates_and_filters_read_and_write_back() {
        let query = PageQuery {
            range: Some("30d".into()),
            tenant: Some("acme & co".into()),
            feature: Some(String::new()),
            ..PageQuery::default()
        };
        let scope = Scope::from_query(&query, now()).unwrap();
        assert_eq!(scope.until - scope.since, Duration::days(30));
        assert_eq!(scope.filters, [(Field::Tenant, "acme & co".to_string())]);
        assert_eq!(scope.query_string(), "range=30d&tenant=acme+%26+co");

        let dated = PageQuery {
            since: Some("2026-11-01".into()),
            until: Some("2026-11-02".into()),
            ..PageQuery::default()
        };
        let scope = Scope::from_query(&dated, now()).unwrap();
        assert_eq!(scope.until - scope.since, Duration::days(2));
        let again = Scope::from_query(
            &page_query(&scope.with_filter(Field::Model, "gpt-5").query_string()),
            now(),
        )
        .unwrap();
        assert_eq!(again.since, scope.since);
        assert_eq!(again.filter(Field::Model), Some("gpt-5"));
    }

    /// A query string read as the handlers read it.
    fn page_query(text: &str) -> PageQuery {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(text.as_bytes())
            .into_owned()
            .collect();
        let object: serde_json::Map<String, serde_json::Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        serde_json::from_value(serde_json::Value::Object(object)).unwrap()
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            (
                PageQuery {
                    range: Some("3w".into()),
                    ..PageQuery::default()
                },
                "range:",
            ),
            (
                PageQuery {
                    since: Some("yesterday".into()),
                    ..PageQuery::default()
                },
                "since:",
            ),
            (
                PageQuery {
                    since: Some("2026-11-05".into()),
                    until: Some("2026-11-01".into()),
                    ..PageQuery::default()
                },
                "since:",
            ),
            (
                PageQuery {
                    by: Some("colour".into()),
                    ..PageQuery::default()
                },
                "by:",
            ),
            (
                PageQuery {
                    day: Some("23/11".into()),
                    ..PageQuery::default()
                },
                "day:",
            ),
        ];
        for (query, key) in cases {
            let error = Scope::from_query(&query, now()).unwrap_err();
            assert!(error.starts_with(key), "{error}");
        }
    }
}
