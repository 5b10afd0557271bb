//! The dashboard's charts as inline SVG, drawn on the server.
//!
//! Written here rather than taken from a charting library: the pages render without
//! JavaScript (so a screenshot with timers paused shows every chart), every bar is a link
//! to the next level down that the keyboard reaches, and four chart shapes (stacked bars,
//! Pareto, histogram, horizontal bars) are a few hundred lines, where a plotting crate
//! draws no links and a vendored JavaScript library would need a client-side app.

use maud::{Markup, html};

/// Series colours, chosen to stay apart for the common colour-vision deficiencies
/// (Okabe–Ito, then greys for folded groups).
pub const PALETTE: [&str; 9] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#332288",
    "#999999",
];

/// The colour of series `index` (the last colour repeats for the rest).
pub fn colour(index: usize) -> &'static str {
    PALETTE[index.min(PALETTE.len() - 1)]
}

const WIDTH: f64 = 1120.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;

/// A round axis maximum at or above `max` and its tick step.
fn axis(max: f64) -> (f64, f64) {
    if max <= 0.0 || !max.is_finite() {
        return (1.0, 0.25);
    }
    let magnitude = 10f64.powf(max.log10().floor());
    for step in [0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0] {
        let step = step * magnitude;
        if max / step <= 5.0 {
            return ((max / step).ceil() * step, step);
        }
    }
    (max, max / 4.0)
}

/// Dollars for an axis label.
pub fn axis_usd(value: f64) -> String {
    if value >= 1000.0 {
        format!("${:.0}k", value / 1000.0)
    } else if value >= 1.0 || value == 0.0 {
        format!("${value:.0}")
    } else {
        format!("${value:.2}")
    }
}

fn y_axis(height: f64, max: f64, step: f64, label: fn(f64) -> String) -> Markup {
    let ticks = (max / step).round() as usize;
    html! {
        g class="axis" {
            @for i in 0..=ticks {
                @let value = step * i as f64;
                @let y = TOP + height - height * value / max;
                line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y) y2=(y) {}
                text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" { (label(value)) }
            }
        }
    }
}

/// One stacked bar per bucket: `values[bucket][group]` dollars, `labels[bucket]` under
/// each bar; the legend's entries link to `links[group]` when given.
pub fn stacked_bars(
    title: &str,
    labels: &[String],
    groups: &[String],
    values: &[Vec<f64>],
    links: &[Option<String>],
) -> Markup {
    let height = 240.0;
    let totals: Vec<f64> = values.iter().map(|v| v.iter().sum()).collect();
    let (max, step) = axis(totals.iter().copied().fold(0.0, f64::max));
    let slot = (WIDTH - LEFT - RIGHT) / labels.len().max(1) as f64;
    let bar = (slot * 0.8).max(1.0);
    let every = (labels.len() / 12).max(1);
    html! {
        figure class="chart" {
            svg viewBox=(format!("0 0 {WIDTH} {}", height + TOP + 28.0)) role="img" aria-label=(title) {
                title { (title) }
                (y_axis(height, max, step, axis_usd))
                @for (b, column) in values.iter().enumerate() {
                    @let x = LEFT + slot * b as f64 + (slot - bar) / 2.0;
                    @let mut base = TOP + height;
                    @for (g, value) in column.iter().enumerate() {
                        @let h = height * value / max;
                        @let y = { base -= h; base };
                        @if h > 0.0 {
                            rect x=(x) y=(y) width=(bar) height=(h) fill=(colour(g)) {
                                title { (groups.get(g).map(String::as_str).unwrap_or("")) " · " (labels[b]) ": " (dollars_label(*value)) }
                            }
                        }
                    }
                    @if b % every == 0 {
                        text class="tick" x=(x + bar / 2.0) y=(TOP + height + 18.0) text-anchor="middle" { (labels[b]) }
                    }
                }
            }
            (legend(groups, links))
        }
    }
}

/// The legend: a swatch and a name per group, linked when a link is given.
pub fn legend(groups: &[String], links: &[Option<String>]) -> Markup {
    html! {
        ul class="legend" {
            @for (g, group) in groups.iter().enumerate() {
                li {
                    svg class="swatch" viewBox="0 0 10 10" aria-hidden="true" { rect width="10" height="10" rx="2" fill=(colour(g)) {} }
                    @match links.get(g).cloned().flatten() {
                        Some(link) => a href=(link) { (group) },
                        None => span { (group) },
                    }
                }
            }
        }
    }
}

/// A Pareto chart: bars of each member's share (costliest first, linked), the cumulative
/// share as a line, and the 80% mark.
pub fn pareto(title: &str, members: &[(String, f64, f64, String)]) -> Markup {
    let height = 240.0;
    let slot = (WIDTH - LEFT - RIGHT) / members.len().max(1) as f64;
    let bar = (slot * 0.8).max(0.5);
    let y = |share: f64| TOP + height - height * share;
    let points: Vec<String> = members
        .iter()
        .enumerate()
        .map(|(i, (_, _, cumulative, _))| {
            format!(
                "{:.1},{:.1}",
                LEFT + slot * (i as f64 + 0.5),
                y(*cumulative)
            )
        })
        .collect();
    html! {
        figure class="chart" {
            svg viewBox=(format!("0 0 {WIDTH} {}", height + TOP + 12.0)) role="img" aria-label=(title) {
                title { (title) }
                (y_axis(height, 1.0, 0.25, |v| format!("{:.0}%", v * 100.0)))
                line class="mark" x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(0.8)) y2=(y(0.8)) {}
                text class="mark" x=(WIDTH - RIGHT) y=(y(0.8) - 4.0) text-anchor="end" { "80%" }
                @for (i, (name, share, _, link)) in members.iter().enumerate() {
                    a href=(link) {
                        rect x=(LEFT + slot * i as f64 + (slot - bar) / 2.0) y=(y(*share)) width=(bar) height=(height * share) fill=(colour(0)) {
                            title { (name) ": " (format!("{:.1}%", share * 100.0)) }
                        }
                    }
                }
                polyline class="cumulative" points=(points.join(" ")) {}
            }
        }
    }
}

/// A histogram of runs over log-spaced cost bins, with the median and 99th percentile
/// marked where they fall.
pub fn histogram(
    title: &str,
    bins: &[(f64, f64, u64)],
    p50: Option<f64>,
    p99: Option<f64>,
) -> Markup {
    let height = 160.0;
    let width = 540.0;
    let left = 44.0;
    let most = bins.iter().map(|b| b.2).max().unwrap_or(0).max(1) as f64;
    let slot = (width - left - 8.0) / bins.len().max(1) as f64;
    let low = bins.first().map(|b| b.0).unwrap_or(0.0);
    let high = bins.last().map(|b| b.1).unwrap_or(1.0);
    // Where a cost falls on the log-scaled axis.
    let x = |cost: f64| {
        if cost <= 0.0 || low <= 0.0 {
            return left;
        }
        let span = (high.log10() - low.log10()).max(f64::EPSILON);
        left + (width - left - 8.0) * ((cost.log10() - low.log10()) / span).clamp(0.0, 1.0)
    };
    let every = (bins.len() / 6).max(1);
    html! {
        svg class="histogram" viewBox=(format!("0 0 {width} {}", height + 48.0)) role="img" aria-label=(title) {
            title { (title) }
            text class="tick" x=(left - 6.0) y=(TOP + 4.0) text-anchor="end" { (most as u64) }
            text class="tick" x=(left - 6.0) y=(TOP + height) text-anchor="end" { "0" }
            @for (i, (from, to, runs)) in bins.iter().enumerate() {
                @let h = height * *runs as f64 / most;
                rect x=(left + slot * i as f64 + 1.0) y=(TOP + height - h) width=((slot - 2.0).max(0.5)) height=(h) fill=(colour(0)) {
                    title { (runs) " runs cost " (dollars_label(*from)) "–" (dollars_label(*to)) }
                }
                @if i % every == 0 {
                    text class="tick" x=(left + slot * i as f64) y=(TOP + height + 16.0) text-anchor="middle" { (dollars_label(*from)) }
                }
            }
            @for (label, value, class) in [("median", p50, "p50"), ("p99", p99, "p99")] {
                @if let Some(value) = value {
                    line class=(format!("marker {class}")) x1=(x(value)) x2=(x(value)) y1=(TOP) y2=(TOP + height) {}
                    @let right = x(value) > width / 2.0;
                    text class=(format!("marker {class}")) x=(if right { x(value) - 3.0 } else { x(value) + 3.0 }) y=(TOP + height + if class == "p50" { 30.0 } else { 44.0 }) text-anchor=(if right { "end" } else { "start" }) { (label) " " (dollars_label(value)) }
                }
            }
        }
    }
}

/// Dollars for a tooltip or a marker: cents from a dollar up, more places below.
fn dollars_label(value: f64) -> String {
    if value >= 1.0 {
        format!("${value:.2}")
    } else if value >= 0.01 {
        format!("${value:.3}")
    } else {
        format!("${value:.5}")
    }
}

/// Horizontal bars: `(label, share of the largest, caption, link)` per row.
pub fn hbars(title: &str, rows: &[(String, f64, String, Option<String>)]) -> Markup {
    let row = 22.0;
    let label_width = 220.0;
    let width = 540.0;
    let most = rows
        .iter()
        .map(|r| r.1)
        .fold(0.0, f64::max)
        .max(f64::EPSILON);
    html! {
        svg class="hbars" viewBox=(format!("0 0 {width} {}", row * rows.len().max(1) as f64 + 4.0)) role="img" aria-label=(title) {
            title { (title) }
            @for (i, (label, value, caption, link)) in rows.iter().enumerate() {
                @let y = row * i as f64 + 2.0;
                @let w = (width - label_width - 90.0) * value / most;
                @match link {
                    Some(link) => a href=(link) { text x=(label_width - 6.0) y=(y + 15.0) text-anchor="end" { (short(label)) } },
                    None => text x=(label_width - 6.0) y=(y + 15.0) text-anchor="end" { (short(label)) },
                }
                rect x=(label_width) y=(y + 3.0) width=(w.max(0.5)) height=(row - 8.0) fill=(colour(0)) {}
                text class="value" x=(label_width + w + 6.0) y=(y + 15.0) { (caption) }
            }
        }
    }
}

/// A label cut to fit a chart.
fn short(label: &str) -> String {
    const MAX: usize = 30;
    if label.chars().count() <= MAX {
        label.to_owned()
    } else {
        let cut: String = label.chars().take(MAX - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_to_a_few_ticks() {
        assert_eq!(axis(0.0), (1.0, 0.25));
        let (max, step) = axis(873.0);
        assert!((873.0..=1000.0).contains(&max), "{max}");
        assert!(max / step <= 5.0);
        let (max, step) = axis(0.0042);
        assert!(max >= 0.0042 && max / step <= 5.0);
    }

    #[test]
    fn stacked_bars_link_their_groups_and_escape_names() {
        let chart = stacked_bars(
            "spend",
            &["11-01".into(), "11-02".into()],
            &["<acme>".into(), "(other)".into()],
            &[vec![1.0, 2.0], vec![0.0, 3.0]],
            &[Some("/ui/tenants/acme".into()), None],
        )
        .into_string();
        assert!(chart.contains("&lt;acme&gt;"));
        assert!(chart.contains(r#"href="/ui/tenants/acme""#));
        // Three non-empty segments (the legend's swatches have no position).
        assert_eq!(chart.matches("<rect x=").count(), 3);
    }
}
