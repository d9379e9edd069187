//! A server-rendered SVG of events per hour for the Tracking health page: accepted events
//! (detections and conversions stacked) in the upper panel, rejected ones in the lower, each
//! on its own scale. Drawn like [`crate::chart`]: presentation attributes and stylesheet
//! classes only, since the CSP allows no inline style.

use crate::chart::{escape, nice_ceiling};
use std::fmt::Write;

/// One hour's bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourBar {
    /// `YYYY-MM-DD HH:00` (UTC).
    pub hour: String,
    pub detections: i64,
    pub conversions: i64,
    pub rejected: i64,
}

const WIDTH: f64 = 900.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const PANEL: f64 = 130.0;
const LEGEND: f64 = 30.0;
const GAP: f64 = 44.0;
/// Most labels under the x axis, so that they never overlap.
const MAX_HOUR_LABELS: usize = 8;
const DETECTIONS: &str = "#0072b2";
const CONVERSIONS: &str = "#e69f00";
const REJECTED: &str = "#d55e00";

/// The SVG for `hours` in order, or `None` when nothing happened in them.
pub fn render(hours: &[HourBar]) -> Option<String> {
    if hours
        .iter()
        .all(|h| h.detections == 0 && h.conversions == 0 && h.rejected == 0)
    {
        return None;
    }
    let top1 = LEGEND + 20.0;
    let top2 = top1 + PANEL + GAP;
    let height = top2 + PANEL + 34.0;
    let slot = (WIDTH - LEFT - RIGHT) / hours.len() as f64;
    // A gap between bars while they are wide enough to show one.
    let bar = if slot > 4.0 { slot * 0.8 } else { slot };
    let accepted = Scale::new(
        top1,
        hours
            .iter()
            .map(|h| h.detections + h.conversions)
            .max()
            .unwrap_or(0),
    );
    let rejected = Scale::new(top2, hours.iter().map(|h| h.rejected).max().unwrap_or(0));

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="hourly-title"><title id="hourly-title">Accepted and rejected events per hour</title>"#
    );
    for (i, (name, colour)) in [
        ("detections", DETECTIONS),
        ("conversions", CONVERSIONS),
        ("rejected", REJECTED),
    ]
    .iter()
    .enumerate()
    {
        let x = LEFT + i as f64 * 160.0;
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="8" width="14" height="14" rx="2" fill="{colour}"/><text class="chart-legend" x="{}" y="20">{name}</text>"#,
            x + 20.0
        );
    }
    accepted.axes(&mut svg, "accepted events");
    rejected.axes(&mut svg, "rejected events");
    for (i, hour) in hours.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let title = escape(&hour.hour);
        let _ = write!(svg, r#"<g class="hour" data-hour="{title}">"#);
        // Detections at the bottom, conversions stacked on them.
        accepted.bar(
            &mut svg,
            x,
            bar,
            0,
            hour.detections,
            DETECTIONS,
            &format!("{title}: {} detections", hour.detections),
        );
        accepted.bar(
            &mut svg,
            x,
            bar,
            hour.detections,
            hour.conversions,
            CONVERSIONS,
            &format!("{title}: {} conversions", hour.conversions),
        );
        rejected.bar(
            &mut svg,
            x,
            bar,
            0,
            hour.rejected,
            REJECTED,
            &format!("{title}: {} rejected", hour.rejected),
        );
        svg.push_str("</g>");
    }
    let step = hours.len().div_ceil(MAX_HOUR_LABELS).max(1);
    for (i, hour) in hours.iter().enumerate().step_by(step) {
        // `YYYY-MM-DD HH:00` shown as `MM-DD HH:00`.
        let short = hour.hour.get(5..).unwrap_or(&hour.hour);
        let _ = write!(
            svg,
            r#"<text class="chart-axis" x="{:.1}" y="{}" text-anchor="start">{}</text>"#,
            LEFT + i as f64 * slot,
            top2 + PANEL + 18.0,
            escape(short)
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// One panel's vertical scale: its top edge and the value there.
struct Scale {
    top: f64,
    ceiling: i64,
    step: i64,
}

impl Scale {
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
            r#"<text class="chart-title" x="{LEFT}" y="{:.1}">{title}</text>"#,
            self.top - 8.0
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

    /// A bar of `value` standing on `base` (already escaped `title`); nothing for zero.
    #[allow(clippy::too_many_arguments)]
    fn bar(
        &self,
        svg: &mut String,
        x: f64,
        width: f64,
        base: i64,
        value: i64,
        colour: &str,
        title: &str,
    ) {
        if value <= 0 {
            return;
        }
        let top = self.y(base + value);
        let height = self.y(base) - top;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{top:.1}" width="{width:.1}" height="{height:.1}" fill="{colour}"><title>{title}</title></rect>"#
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(h: u32, detections: i64, conversions: i64, rejected: i64) -> HourBar {
        HourBar {
            hour: format!("2026-12-03 {h:02}:00"),
            detections,
            conversions,
            rejected,
        }
    }

    #[test]
    fn nothing_happened_is_no_chart() {
        assert_eq!(render(&[]), None);
        assert_eq!(render(&[hour(1, 0, 0, 0), hour(2, 0, 0, 0)]), None);
    }

    #[test]
    fn a_bar_per_figure_that_is_not_zero() {
        let svg = render(&[hour(1, 4, 1, 0), hour(2, 0, 0, 3)]).expect("a chart");
        assert_eq!(svg.matches(r#"<g class="hour""#).count(), 2);
        // Three legend squares and three bars.
        assert_eq!(svg.matches("<rect").count(), 6);
        assert!(svg.contains("2026-12-03 01:00: 4 detections"));
        assert!(svg.contains("2026-12-03 02:00: 3 rejected"));
        assert!(!svg.contains("style="), "the CSP blocks inline styles");
    }

    #[test]
    fn a_week_labels_only_some_hours() {
        let hours: Vec<HourBar> = (0..168).map(|h| hour(h % 24, 1, 0, 0)).collect();
        let svg = render(&hours).expect("a chart");
        let labels = svg.matches(r#"text-anchor="start""#).count();
        assert!((2..=MAX_HOUR_LABELS).contains(&labels), "{labels} labels");
    }
}
