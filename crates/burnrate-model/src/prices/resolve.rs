//! Model resolution: from the name a provider reports to a key of the price book.

use super::PriceBook;

/// The prefixes and LiteLLM provider names an event's provider may be listed under.
fn provider_aliases(provider: &str) -> Vec<&str> {
    match provider {
        "google" | "gemini" | "google_ai_studio" => vec!["gemini"],
        "vertex" | "vertex_ai" | "google_vertex" => vec!["vertex_ai"],
        "azure" | "azure_openai" => vec!["azure"],
        "bedrock" | "aws_bedrock" | "aws.bedrock" => vec!["bedrock"],
        other => vec![other],
    }
}

/// Removes a trailing date from a model name: `-2025-04-14`, `-20250929`, `@20250929`.
/// Returns `None` when the name carries no date.
pub fn strip_date_suffix(model: &str) -> Option<&str> {
    let bytes = model.as_bytes();
    let all_digits = |text: &[u8]| text.iter().all(u8::is_ascii_digit);
    // `-YYYY-MM-DD`
    if bytes.len() > 11 {
        let (head, tail) = bytes.split_at(bytes.len() - 11);
        if tail[0] == b'-'
            && all_digits(&tail[1..5])
            && tail[5] == b'-'
            && all_digits(&tail[6..8])
            && tail[8] == b'-'
            && all_digits(&tail[9..11])
            && tail[1] == b'2'
        {
            return std::str::from_utf8(head).ok();
        }
    }
    // `-YYYYMMDD` or `@YYYYMMDD`
    if bytes.len() > 9 {
        let (head, tail) = bytes.split_at(bytes.len() - 9);
        if (tail[0] == b'-' || tail[0] == b'@') && all_digits(&tail[1..]) && tail[1] == b'2' {
            return std::str::from_utf8(head).ok();
        }
    }
    None
}

pub(super) fn resolve(book: &PriceBook, provider: &str, model: &str) -> Option<String> {
    let aliases = provider_aliases(provider);
    let listed_under_provider = |key: &str| {
        book.version_at(key, None).is_some_and(|version| {
            version.prices.provider.as_deref().is_none_or(|listed| {
                aliases
                    .iter()
                    .any(|alias| listed == *alias || listed.starts_with(&format!("{alias}-")))
            })
        })
    };
    let try_name = |name: &str| -> Option<String> {
        if listed_under_provider(name) {
            return Some(name.to_owned());
        }
        for alias in &aliases {
            let qualified = format!("{alias}/{name}");
            if book.contains(&qualified) {
                return Some(qualified);
            }
        }
        book.contains(name).then(|| name.to_owned())
    };
    try_name(model).or_else(|| strip_date_suffix(model).and_then(try_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_date_forms_providers_use() {
        assert_eq!(strip_date_suffix("gpt-4.1-2025-04-14"), Some("gpt-4.1"));
        assert_eq!(
            strip_date_suffix("claude-sonnet-4-5-20250929"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            strip_date_suffix("claude-3-5-sonnet@20240620"),
            Some("claude-3-5-sonnet")
        );
        assert_eq!(strip_date_suffix("gpt-4.1"), None);
        assert_eq!(strip_date_suffix("gpt-4-0613"), None);
        assert_eq!(strip_date_suffix("x-2025-4-14"), None);
    }
}
