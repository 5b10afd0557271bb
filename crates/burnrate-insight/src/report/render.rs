//! Rendering a report as Markdown or as one standalone HTML page with inline SVG charts.
//!
//! The SVG bar charts and the HTML escaping are written here by hand: each is a few lines,
//! and a charting or templating crate would bring far more than a report of tables and bars
//! needs (and nothing may load from a CDN at run time).

use std::fmt::Write;

use super::{Chart, Report};

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Escapes a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Whether a column holds numbers (right-aligned): every non-empty cell starts like one.
fn numeric(rows: &[Vec<String>], column: usize) -> bool {
    rows.iter().all(|row| {
        row.get(column)
            .is_none_or(|text| text.is_empty() || is_numeric_cell(text))
    })
}

/// Whether a table cell reads as a number (`$12.50`, `-3%`, `1,024`, `—`).
pub fn is_numeric_cell(text: &str) -> bool {
    let text = text.trim_start_matches(['$', '+', '-', '−']);
    text.starts_with(|c: char| c.is_ascii_digit()) || text == "—"
}

impl Report {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!("# {}\n\n", self.title);
        for warning in &self.warnings {
            let _ = writeln!(out, "> **Warning:** {warning}\n");
        }
        for section in &self.sections {
            let _ = writeln!(out, "## {}\n", section.title);
            if let Some(lead) = &section.lead {
                let _ = writeln!(out, "{lead}\n");
            }
            if let Some(table) = &section.table {
                if table.rows.is_empty() {
                    out.push_str("_none_\n\n");
                    continue;
                }
                let _ = writeln!(
                    out,
                    "| {} |",
                    table
                        .headers
                        .iter()
                        .map(|h| cell(h))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
                let aligns: Vec<&str> = (0..table.headers.len())
                    .map(|c| {
                        if numeric(&table.rows, c) {
                            "---:"
                        } else {
                            "---"
                        }
                    })
                    .collect();
                let _ = writeln!(out, "|{}|", aligns.join("|"));
                for row in &table.rows {
                    let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
                    let _ = writeln!(out, "| {} |", cells.join(" | "));
                }
                out.push('\n');
            }
        }
        out
    }

    /// The report as one standalone HTML page (no scripts, no outside resources).
    pub fn html(&self) -> String {
        let mut out = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>{STYLE}</style></head><body><main>\
             <h1>{title}</h1>\n",
            title = escape(&self.title)
        );
        for warning in &self.warnings {
            let _ = writeln!(out, "<p class=\"warning\">{}</p>", escape(warning));
        }
        for section in &self.sections {
            let _ = writeln!(out, "<section><h2>{}</h2>", escape(&section.title));
            if let Some(lead) = &section.lead {
                let _ = writeln!(out, "<p>{}</p>", escape(lead));
            }
            if let Some(chart) = &section.chart {
                out.push_str(&bars(chart));
            }
            if let Some(table) = &section.table {
                if table.rows.is_empty() {
                    out.push_str("<p class=\"none\">none</p>");
                } else {
                    let right: Vec<bool> = (0..table.headers.len())
                        .map(|c| numeric(&table.rows, c))
                        .collect();
                    out.push_str("<table><thead><tr>");
                    for (header, right) in table.headers.iter().zip(&right) {
                        let _ = write!(
                            out,
                            "<th{}>{}</th>",
                            if *right { " class=\"n\"" } else { "" },
                            escape(header)
                        );
                    }
                    out.push_str("</tr></thead><tbody>");
                    for row in &table.rows {
                        out.push_str("<tr>");
                        for (text, right) in row.iter().zip(&right) {
                            let _ = write!(
                                out,
                                "<td{}>{}</td>",
                                if *right { " class=\"n\"" } else { "" },
                                escape(text)
                            );
                        }
                        out.push_str("</tr>");
                    }
                    out.push_str("</tbody></table>");
                }
            }
            out.push_str("</section>\n");
        }
        out.push_str("</main></body></html>\n");
        out
    }
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;color:#1d2430;margin:0;background:#f6f7f9}\
main{max-width:1100px;margin:0 auto;padding:24px}section{background:#fff;border:1px solid #dde1e7;\
border-radius:6px;padding:12px 16px;margin:16px 0}table{border-collapse:collapse;width:100%}\
th,td{padding:4px 8px;border-bottom:1px solid #eceff3;text-align:left}.n{text-align:right;\
font-variant-numeric:tabular-nums}.warning{background:#fff4d6;border:1px solid #e8c66a;padding:8px}\
.none{color:#6b7380}svg text{font:12px system-ui,sans-serif;fill:#1d2430}";

/// A horizontal bar chart as inline SVG.
fn bars(chart: &Chart) -> String {
    const WIDTH: f64 = 720.0;
    const LABEL: f64 = 200.0;
    const VALUE: f64 = 110.0;
    const ROW: f64 = 22.0;
    let max = chart
        .bars
        .iter()
        .map(|(_, value)| value.abs())
        .fold(0.0, f64::max);
    let height = ROW * chart.bars.len() as f64 + 8.0;
    let mut out = format!(
        "<svg role=\"img\" aria-label=\"{}\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" xmlns=\"http://www.w3.org/2000/svg\">",
        escape(&chart.title)
    );
    for (index, (label, value)) in chart.bars.iter().enumerate() {
        let y = 4.0 + ROW * index as f64;
        let span = WIDTH - LABEL - VALUE;
        let length = if max > 0.0 {
            (value.abs() / max * span).max(1.0)
        } else {
            0.0
        };
        let _ = write!(
            out,
            "<text x=\"{x}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect x=\"{LABEL}\" y=\"{y}\" width=\"{length:.1}\" height=\"{h}\" fill=\"{fill}\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\">{value}</text>",
            x = LABEL - 6.0,
            ty = y + 13.0,
            label = escape(label),
            h = ROW - 6.0,
            fill = if *value < 0.0 { "#c0392b" } else { "#3b6fb6" },
            vx = LABEL + length + 6.0,
            value = escape(&chart.format(*value)),
        );
    }
    out.push_str("</svg>");
    out
}
