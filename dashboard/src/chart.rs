//! A server-rendered SVG chart of figures per day, one series per model version: detections
//! in the upper panel, matched conversions in the lower one (each on its own scale, since
//! matches are usually a small fraction of detections).
//!
//! The page's CSP allows no inline style, so everything is drawn with presentation
//! attributes (`stroke`, `fill`, ...) and classes of the stylesheet. Text from tenants
//! (model versions) is escaped here, since the SVG reaches the template as markup.

use std::fmt::Write;

/// One model version's figures, aligned with [`DailyChart::days`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub detections: Vec<i64>,
    pub matched: Vec<i64>,
}

/// What the chart shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DailyChart {
    /// The days of the range in order, as `YYYY-MM-DD`.
    pub days: Vec<String>,
    pub series: Vec<Series>,
}

/// Colours that stay apart for the colour-blind (Okabe–Ito), used in turn.
const PALETTE: [&str; 7] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000",
];

const WIDTH: f64 = 900.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const PANEL: f64 = 150.0;
const GAP: f64 = 44.0;
const LEGEND_ROW: f64 = 22.0;
const LEGEND_PER_ROW: usize = 4;
/// Most labels under the x axis, so that they never overlap.
const MAX_DAY_LABELS: usize = 8;

impl DailyChart {
    /// The SVG, or `None` when there is nothing to draw.
    pub fn render(&self) -> Option<String> {
        if self.days.is_empty() || self.series.is_empty() {
            return None;
        }
        let legend_rows = self.series.len().div_ceil(LEGEND_PER_ROW);
        let legend = legend_rows as f64 * LEGEND_ROW + 8.0;
        let top1 = legend + 20.0;
        let top2 = top1 + PANEL + GAP;
        let height = top2 + PANEL + 34.0;
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="chart-title"><title id="chart-title">Detections and matched conversions per day and model version</title>"#
        );
        self.legend(&mut svg);
        let x = XScale::new(self.days.len());
        let detections = Panel::new(top1, max_of(self.series.iter().map(|s| &s.detections)));
        let matched = Panel::new(top2, max_of(self.series.iter().map(|s| &s.matched)));
        detections.axes(&mut svg, "detections");
        matched.axes(&mut svg, "matched conversions");
        self.day_labels(&mut svg, &x, top2 + PANEL);
        for (i, series) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let _ = write!(
                svg,
                r#"<g class="series" data-model-version="{}" stroke="{colour}" fill="{colour}">"#,
                escape(&series.name)
            );
            detections.line(&mut svg, &x, &series.detections, "detections");
            matched.line(&mut svg, &x, &series.matched, "matched");
            svg.push_str("</g>");
        }
        svg.push_str("</svg>");
        Some(svg)
    }

    fn legend(&self, svg: &mut String) {
        let column = (WIDTH - LEFT - RIGHT) / LEGEND_PER_ROW as f64;
        for (i, series) in self.series.iter().enumerate() {
            let x = LEFT + (i % LEGEND_PER_ROW) as f64 * column;
            let y = 8.0 + (i / LEGEND_PER_ROW) as f64 * LEGEND_ROW;
            let colour = PALETTE[i % PALETTE.len()];
            let _ = write!(
                svg,
                r#"<rect x="{x}" y="{y}" width="14" height="14" rx="2" fill="{colour}"/><text class="chart-legend" x="{}" y="{}">{}</text>"#,
                x + 20.0,
                y + 12.0,
                escape(&series.name)
            );
        }
    }

    fn day_labels(&self, svg: &mut String, x: &XScale, bottom: f64) {
        let step = self.days.len().div_ceil(MAX_DAY_LABELS).max(1);
        for (i, day) in self.days.iter().enumerate() {
            if i % step != 0 && i + 1 != self.days.len() {
                continue;
            }
            // The last label only when it does not crowd the one before it.
            if i + 1 == self.days.len() && i % step != 0 && i % step < step / 2 {
                continue;
            }
            // `YYYY-MM-DD` shown as `MM-DD`: the year is in the filter above the chart.
            let short = day.get(5..).unwrap_or(day);
            let _ = write!(
                svg,
                r#"<text class="chart-axis" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                x.at(i),
                bottom + 18.0,
                escape(short)
            );
        }
    }
}

/// Where day `i` of `n` sits horizontally: spread over the width, one day in the middle.
struct XScale {
    n: usize,
}

impl XScale {
    fn new(n: usize) -> Self {
        Self { n }
    }

    fn at(&self, i: usize) -> f64 {
        let width = WIDTH - LEFT - RIGHT;
        if self.n <= 1 {
            LEFT + width / 2.0
        } else {
            LEFT + width * i as f64 / (self.n - 1) as f64
        }
    }
}

/// One panel: its top edge and the value at its top (a round number at least the maximum).
struct Panel {
    top: f64,
    ceiling: i64,
    step: i64,
}

impl Panel {
    fn new(top: f64, max: i64) -> Self {
        let (ceiling, step) = nice_ceiling(max);
        Self { top, ceiling, step }
    }

    fn y(&self, value: i64) -> f64 {
        self.top + PANEL - PANEL * value as f64 / self.ceiling as f64
    }

    fn axes(&self, svg: &mut String, title: &str) {
        let _ = write!(
            svg,
            r#"<text class="chart-title" x="{LEFT}" y="{:.1}">{}</text>"#,
            self.top - 8.0,
            escape(title)
        );
        let mut value = 0;
        while value <= self.ceiling {
            let y = self.y(value);
            let _ = write!(
                svg,
                r##"<line class="chart-grid" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#dde2ea"/><text class="chart-axis" x="{:.1}" y="{:.1}" text-anchor="end">{value}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0
            );
            value += self.step;
        }
    }

    fn line(&self, svg: &mut String, x: &XScale, values: &[i64], kind: &str) {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x.at(i), self.y(*v)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="{kind}" fill="none" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        for (i, v) in values.iter().enumerate() {
            if *v > 0 {
                let _ = write!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3"><title>{v}</title></circle>"#,
                    x.at(i),
                    self.y(*v)
                );
            }
        }
    }
}

fn max_of<'a>(lists: impl Iterator<Item = &'a Vec<i64>>) -> i64 {
    lists.flatten().copied().max().unwrap_or(0)
}

/// The smallest round top (1, 2 or 5 × 10ⁿ steps, four of them at most) that holds `max`,
/// and its step; at least 1, so that a panel of zeros still has a scale.
pub(crate) fn nice_ceiling(max: i64) -> (i64, i64) {
    let max = max.max(1);
    let mut magnitude: i64 = 1;
    loop {
        for factor in [1, 2, 5] {
            let step = factor * magnitude;
            let ceiling = step * ((max + step - 1) / step);
            if ceiling / step <= 4 {
                return (ceiling, step);
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// Text for SVG content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(names: &[&str], detections: &[i64], matched: &[i64]) -> DailyChart {
        DailyChart {
            days: (1..=detections.len())
                .map(|d| format!("2026-12-{d:02}"))
                .collect(),
            series: names
                .iter()
                .map(|name| Series {
                    name: (*name).to_owned(),
                    detections: detections.to_vec(),
                    matched: matched.to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn nothing_to_draw_is_no_chart() {
        assert_eq!(DailyChart::default().render(), None);
        assert_eq!(chart(&[], &[1, 2], &[0, 1]).render(), None);
    }

    #[test]
    fn scales_round_up_to_at_most_four_steps() {
        assert_eq!(nice_ceiling(0), (1, 1));
        assert_eq!(nice_ceiling(3), (3, 1));
        assert_eq!(nice_ceiling(7), (8, 2));
        assert_eq!(nice_ceiling(10), (10, 5));
        assert_eq!(nice_ceiling(37), (40, 10));
        assert_eq!(nice_ceiling(1_234), (1_500, 500));
        let panel = Panel::new(0.0, 37);
        assert_eq!(panel.y(0), PANEL, "zero on the bottom edge");
        assert_eq!(panel.y(40), 0.0, "the ceiling on the top edge");
    }

    #[test]
    fn days_spread_over_the_width_and_a_single_day_sits_in_the_middle() {
        assert_eq!(XScale::new(1).at(0), LEFT + (WIDTH - LEFT - RIGHT) / 2.0);
        assert_eq!(XScale::new(3).at(0), LEFT);
        assert_eq!(XScale::new(3).at(2), WIDTH - RIGHT);
    }

    #[test]
    fn one_series_per_model_version_with_both_lines() {
        let svg = chart(&["v2", "v3"], &[4, 0, 9], &[1, 0, 2])
            .render()
            .expect("a chart");
        assert_eq!(svg.matches(r#"<g class="series""#).count(), 2);
        assert!(svg.contains(r#"data-model-version="v2""#));
        assert!(svg.contains(r#"data-model-version="v3""#));
        assert_eq!(svg.matches(r#"<polyline class="detections""#).count(), 2);
        assert_eq!(svg.matches(r#"<polyline class="matched""#).count(), 2);
        // Points only where there is something; zeros stay on the line.
        assert_eq!(svg.matches("<circle").count(), 8);
        assert!(svg.contains(">12-01<") && svg.contains(">12-03<"));
        assert!(!svg.contains("style="), "the CSP blocks inline styles");
    }

    #[test]
    fn model_versions_are_escaped() {
        let svg = chart(&[r#"<script>"x"&'y'"#], &[1], &[0])
            .render()
            .expect("a chart");
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;"));
    }

    #[test]
    fn long_ranges_label_only_some_days() {
        let days = vec![1; 31];
        let svg = chart(&["v1"], &days, &days).render().expect("a chart");
        let labels = svg.matches(r#"text-anchor="middle""#).count();
        assert!(
            (2..=MAX_DAY_LABELS + 1).contains(&labels),
            "{labels} labels"
        );
    }
}
