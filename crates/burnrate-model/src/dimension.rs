//! The dimensions events are attributed, grouped and filtered by.

use std::fmt;
use std::str::FromStr;

/// A dimension of the usage event: a column to group or filter by, or one label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// A built-in dimension, named as in the usage event.
    Field(Field),
    /// `label.<name>`: one of the event's free-form labels.
    Label(String),
}

macro_rules! fields {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// The built-in dimensions, named as the usage event names them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field {
            $(#[doc = concat!("`", $name, "`")] $variant,)*
        }

        impl Field {
            /// Every built-in dimension.
            pub const ALL: &'static [Field] = &[$(Field::$variant,)*];

            /// The dimension's name in events, queries and result rows.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Field::$variant => $name,)*
                }
            }
        }
    };
}

fields! {
    Tenant => "tenant_id",
    User => "user_id",
    Feature => "feature",
    Task => "task_id",
    Route => "route",
    AgentRun => "agent_run_id",
    ParentRun => "parent_run_id",
    AgentName => "agent_name",
    SpanDepth => "span_depth",
    Session => "session_id",
    Deployment => "deployment",
    PromptVersion => "prompt_version",
    Effort => "effort",
    Provider => "provider",
    Model => "model",
    RequestedModel => "requested_model",
    Operation => "operation",
    ServiceTier => "service_tier",
    Source => "source",
    Status => "status",
    OutcomeName => "outcome_name",
}

impl Field {
    /// True for dimensions stored as integers rather than text.
    pub fn is_integer(self) -> bool {
        self == Field::SpanDepth
    }
}

/// Why a dimension name is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dimension `{0}`; use one of {known} or label.<name>", known = known_names())]
pub struct UnknownDimension(pub String);

fn known_names() -> String {
    Field::ALL
        .iter()
        .map(|field| field.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Dimension {
    type Err = UnknownDimension;

    fn from_str(text: &str) -> Result<Dimension, UnknownDimension> {
        if let Some(label) = text.strip_prefix("label.") {
            let valid = !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
            return if valid {
                Ok(Dimension::Label(label.to_owned()))
            } else {
                Err(UnknownDimension(text.to_owned()))
            };
        }
        Field::ALL
            .iter()
            .find(|field| field.as_str() == text)
            .map(|field| Dimension::Field(*field))
            .ok_or_else(|| UnknownDimension(text.to_owned()))
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dimension::Field(field) => f.write_str(field.as_str()),
            Dimension::Label(name) => write!(f, "label.{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for field in Field::ALL {
            let dimension: Dimension = field.as_str().parse().unwrap();
            assert_eq!(dimension.to_string(), field.as_str());
        }
        assert_eq!(
            "label.team".parse::<Dimension>().unwrap(),
            Dimension::Label("team".into())
        );
        assert!("label.".parse::<Dimension>().is_err());
        assert!("label.a'b".parse::<Dimension>().is_err());
        let error = "tenant".parse::<Dimension>().unwrap_err().to_string();
        assert!(error.contains("tenant_id"), "{error}");
    }
}
