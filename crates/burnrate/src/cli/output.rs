//! Query results as a table, JSON or CSV; reports for a terminal.

use std::io::Write;

use burnrate_insight::report::{self, Report};
use burnrate_model::Money;
use burnrate_model::text::grouped;
use burnrate_store::{Cell, ColumnKind, QueryResult};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use crate::Format;

/// Prints a result in the chosen format to stdout; warnings go to stderr as well.
pub fn print_result(
    result: &QueryResult,
    format: Format,
    title: Option<&str>,
) -> anyhow::Result<()> {
    for warning in &result.warnings {
        eprintln!("WARNING: {warning}");
    }
    // Buffered: a report can be hundreds of thousands of rows, and stdout's own line
    // buffering would make a write call per line.
    let mut out = std::io::BufWriter::new(crate::Stdout);
    match format {
        Format::Json => result.write_json(&mut out)?,
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(&mut out);
            writer.write_record(&result.columns)?;
            for row in &result.rows {
                writer.write_record(row.iter().map(Cell::to_text))?;
            }
            writer.flush()?;
        }
        Format::Md | Format::Html => {
            anyhow::bail!(
                "--format md and html are for `burnrate report daily|weekly|monthly`; use table, json or csv"
            )
        }
        Format::Table => {
            if let Some(title) = title {
                writeln!(out, "{title}")?;
            }
            writeln!(out, "{}", table(result))?;
            writeln!(out, "{} rows", result.rows.len())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Prints a result as [`print_result`] does when it is the last thing the command does: its
/// memory is left to the OS, which takes it back at exit all at once, where freeing a large
/// result's cells one by one took 30 ms of users-daily's second at 100M.
pub fn print_result_at_exit(
    result: QueryResult,
    format: Format,
    title: Option<&str>,
) -> anyhow::Result<()> {
    print_result(&result, format, title)?;
    std::mem::forget(result);
    Ok(())
}

/// A human table: money rounded to 6 decimals (JSON and CSV stay exact), rates as percents.
pub fn table(result: &QueryResult) -> Table {
    let mut table = headed(&result.columns);
    for row in &result.rows {
        let cells = row.iter().zip(&result.kinds).map(|(cell, kind)| {
            let text = human(cell, *kind);
            let aligned = comfy_table::Cell::new(text);
            if *kind == ColumnKind::Text {
                aligned
            } else {
                aligned.set_alignment(CellAlignment::Right)
            }
        });
        table.add_row(cells);
    }
    table
}

fn human(cell: &Cell, kind: ColumnKind) -> String {
    match (cell, kind) {
        (Cell::Null, ColumnKind::Text) => "(none)".to_owned(),
        (Cell::Null, _) => "-".to_owned(),
        (Cell::Money(amount), _) => money(amount),
        (Cell::Number(number), ColumnKind::Ratio) => format!("{:.1}%", number * 100.0),
        (Cell::Number(number), ColumnKind::Factor) => format!("{number:.1}×"),
        (Cell::Count(count), ColumnKind::Millis) => format!("{count} ms"),
        (Cell::Count(count), _) => grouped(*count),
        (other, _) => other.to_text(),
    }
}

/// An empty table in the one style every command prints (UTF-8 lines, fitted to the
/// terminal).
pub fn new_table() -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table
}

/// An empty table with these column headings.
fn headed(headers: &[String]) -> Table {
    let mut table = new_table();
    table.set_header(headers);
    table
}

/// Money for people: dollars to 6 decimals (JSON and CSV stay exact).
pub fn money(money: &Money) -> String {
    format!("${:.6}", money.as_decimal().round_dp(6))
}

/// A report for a terminal: each section's lead, its chart as bars of block characters, and
/// its table (numbers right-aligned).
pub fn terminal(report: &Report) -> String {
    let mut out = format!(
        "\n{}\n{}\n",
        report.title,
        "═".repeat(report.title.chars().count())
    );
    for warning in &report.warnings {
        out.push_str(&format!("WARNING: {warning}\n"));
    }
    for section in &report.sections {
        out.push_str(&format!("\n{}\n", section.title));
        if let Some(lead) = &section.lead {
            out.push_str(&format!("{lead}\n"));
        }
        if let Some(chart) = &section.chart {
            out.push_str(&bars(chart));
        }
        if let Some(rows) = &section.table {
            if rows.rows.is_empty() {
                out.push_str("(none)\n");
                continue;
            }
            let mut table = headed(&rows.headers);
            for row in &rows.rows {
                table.add_row(row.iter().map(|text| {
                    let cell = comfy_table::Cell::new(text);
                    match report::is_numeric_cell(text) {
                        true => cell.set_alignment(CellAlignment::Right),
                        false => cell,
                    }
                }));
            }
            out.push_str(&format!("{table}\n"));
        }
    }
    out
}

/// A bar chart in text: the longest bar is 40 blocks wide (negative values get no bar).
fn bars(chart: &report::Chart) -> String {
    const WIDTH: f64 = 40.0;
    let widest = chart.bars.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let label_width = chart
        .bars
        .iter()
        .map(|(label, _)| label.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (label, value) in &chart.bars {
        let blocks = match widest > 0.0 && *value > 0.0 {
            true => ((value / widest) * WIDTH).round().max(1.0) as usize,
            false => 0,
        };
        out.push_str(&format!(
            "  {label:<label_width$}  {} {}\n",
            "█".repeat(blocks),
            report::bar_caption(chart.unit, *value)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanises_cells() {
        assert_eq!(
            human(&Cell::Count(-1234567), ColumnKind::Count),
            "-1,234,567"
        );
        let money = Cell::Money("0.00935".parse().unwrap());
        assert_eq!(human(&money, ColumnKind::Money), "$0.009350");
        assert_eq!(human(&Cell::Number(0.44), ColumnKind::Ratio), "44.0%");
        assert_eq!(human(&Cell::Null, ColumnKind::Text), "(none)");
    }
}
