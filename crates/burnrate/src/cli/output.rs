//! Query results as a table, JSON or CSV; reports for a terminal.

use std::io::Write;

use burnrate_insight::report::{self, Report};
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
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        Format::Json => {
            write_json(&mut out, result)?;
        }
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

/// Writes a result as JSON, laid out by [`RowPerLine`], and a final line break.
fn write_json(out: &mut impl Write, result: &QueryResult) -> anyhow::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(&mut *out, RowPerLine::default());
    serde::Serialize::serialize(result, &mut serializer)?;
    writeln!(out)?;
    Ok(())
}

/// JSON laid out for people and for line tools alike: the document's fields and each result
/// row on a line of their own, each row compact. serde_json's own formatters are pretty or
/// compact all through; a 100 MB report pretty-printed is a quarter whitespace and takes a
/// third longer to write.
#[derive(Default)]
struct RowPerLine {
    /// Containers open around the next token.
    depth: usize,
    /// Whether the innermost open container has a value yet.
    has_value: bool,
}

impl RowPerLine {
    /// Containers up to this depth (the document, its arrays) put each value on its own line.
    const LAID_OUT: usize = 2;

    fn open<W: ?Sized + Write>(&mut self, out: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        out.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, out: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        let laid_out = self.depth <= Self::LAID_OUT;
        self.depth -= 1;
        if laid_out && self.has_value {
            new_line(out, self.depth)?;
        }
        out.write_all(bracket)
    }

    fn item<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> std::io::Result<()> {
        let laid_out = self.depth <= Self::LAID_OUT;
        if !first {
            out.write_all(if laid_out { b",".as_slice() } else { b", " })?;
        }
        if laid_out {
            new_line(out, self.depth)?;
        }
        Ok(())
    }
}

/// A line break and `levels` levels of indentation.
fn new_line<W: ?Sized + Write>(out: &mut W, levels: usize) -> std::io::Result<()> {
    out.write_all(b"\n")?;
    for _ in 0..levels {
        out.write_all(b"  ")?;
    }
    Ok(())
}

impl serde_json::ser::Formatter for RowPerLine {
    fn begin_array<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.open(out, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.close(out, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        out: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(out, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _out: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.open(out, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.close(out, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        out: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(out, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        out.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _out: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
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
        (Cell::Money(money), _) => {
            let rounded = money.as_decimal().round_dp(6);
            format!("${rounded:.6}")
        }
        (Cell::Number(number), ColumnKind::Ratio) => format!("{:.1}%", number * 100.0),
        (Cell::Number(number), ColumnKind::Factor) => format!("{number:.1}×"),
        (Cell::Count(count), ColumnKind::Millis) => format!("{count} ms"),
        (Cell::Count(count), _) => thousands(*count),
        (other, _) => other.to_text(),
    }
}

fn thousands(count: i64) -> String {
    let digits = count.unsigned_abs().to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if count < 0 {
        grouped.insert(0, '-');
    }
    grouped
}

/// An empty table with these column headings, fitted to the terminal.
fn headed(headers: &[String]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers);
    table
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
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(-1000), "-1,000");
        assert_eq!(thousands(12), "12");
        let money = Cell::Money("0.00935".parse().unwrap());
        assert_eq!(human(&money, ColumnKind::Money), "$0.009350");
        assert_eq!(human(&Cell::Number(0.44), ColumnKind::Ratio), "44.0%");
        assert_eq!(human(&Cell::Null, ColumnKind::Text), "(none)");
    }

    #[test]
    fn json_puts_each_row_on_a_line_and_reads_back_as_the_result() {
        let mut result = QueryResult::new(
            vec![
                "tenant_id".into(),
                "cost_usd".into(),
                "cache_hit_rate".into(),
            ],
            vec![ColumnKind::Text, ColumnKind::Money, ColumnKind::Ratio],
        );
        result.rows = vec![
            vec![
                Cell::Text("a \"quoted\" tenant".into()),
                Cell::Money("1.5".parse().unwrap()),
                Cell::Number(0.25),
            ],
            vec![Cell::Null, Cell::Money("0".parse().unwrap()), Cell::Null],
        ];
        result.warnings = vec!["one".into(), "two".into()];
        let mut out = Vec::new();
        write_json(&mut out, &result).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["{", "  \"rows\": ["]);
        assert_eq!(
            lines[2],
            r#"    {"tenant_id": "a \"quoted\" tenant", "cost_usd": "1.5", "cache_hit_rate": 0.25},"#
        );
        assert_eq!(
            lines[3],
            r#"    {"tenant_id": null, "cost_usd": "0", "cache_hit_rate": null}"#
        );
        assert_eq!(
            lines[4..8],
            ["  ],", "  \"warnings\": [", "    \"one\",", "    \"two\""]
        );
        assert_eq!(lines.last(), Some(&"}"));
        let read: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(read, serde_json::to_value(&result).unwrap());

        let empty = QueryResult::new(vec!["requests".into()], vec![ColumnKind::Count]);
        let mut out = Vec::new();
        write_json(&mut out, &empty).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("{\n  \"rows\": [],\n  \"warnings\": [],\n"),
            "{text}"
        );
    }
}
