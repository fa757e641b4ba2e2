//! Server-side SVG line charts: no script, no build step. A line for the values and, for
//! rollups, a band from min to max.

use std::fmt::Write as _;

use maud::{html, Markup, PreEscaped};

use super::fmt;
use crate::telemetry::Sample;

const W: f64 = 640.0;
const H: f64 = 160.0;
const PAD_L: f64 = 48.0;
const PAD_B: f64 = 18.0;

/// A chart of `samples` over `[from, to]`.
pub fn line(title: &str, samples: &[Sample], from: i64, to: i64, zone: &str) -> Markup {
    if samples.is_empty() {
        return html! { figure.chart { figcaption { (title) } p.muted { "No data in this range." } } };
    }
    let lo = samples.iter().map(|s| s.min).fold(f64::INFINITY, f64::min);
    let hi = samples
        .iter()
        .map(|s| s.max)
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if (hi - lo).abs() < f64::EPSILON {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    };
    let span_t = (to - from).max(1) as f64;
    let x = |t: i64| PAD_L + (t - from) as f64 / span_t * (W - PAD_L - 4.0);
    let y = |v: f64| 4.0 + (hi - v) / (hi - lo) * (H - PAD_B - 8.0);
    let mut line = String::new();
    for s in samples {
        let _ = write!(line, "{:.1},{:.1} ", x(s.t), y(s.v));
    }
    let has_band = samples.iter().any(|s| s.max > s.min);
    let mut band = String::new();
    if has_band {
        for s in samples {
            let _ = write!(band, "{:.1},{:.1} ", x(s.t), y(s.max));
        }
        for s in samples.iter().rev() {
            let _ = write!(band, "{:.1},{:.1} ", x(s.t), y(s.min));
        }
    }
    let last = samples[samples.len() - 1];
    let label = html! { (title) }.into_string();
    let svg = format!(
        r#"<svg viewBox="0 0 {W} {H}" role="img" aria-label="{label}" class="chart-svg">
<line x1="{PAD_L}" y1="{b}" x2="{W}" y2="{b}" class="axis"/>
<text x="2" y="12" class="tick">{hi}</text><text x="2" y="{b}" class="tick">{lo}</text>
<text x="{PAD_L}" y="{H}" class="tick">{t0}</text><text x="{tx}" y="{H}" class="tick" text-anchor="end">{t1}</text>
{band}<polyline points="{line}" class="series"/></svg>"#,
        b = H - PAD_B,
        hi = fmt::num(hi),
        lo = fmt::num(lo),
        t0 = fmt::zoned(from, zone, "%m-%d %H:%M"),
        t1 = fmt::zoned(to, zone, "%m-%d %H:%M"),
        tx = W - 2.0,
        band = if has_band {
            format!(r#"<polygon points="{band}" class="band"/>"#)
        } else {
            String::new()
        },
    );
    html! {
        figure.chart data-points=(samples.len()) {
            figcaption { (title) " " span.muted { "last " (fmt::num(last.v)) " at " (fmt::at(last.t, zone)) ", " (samples.len()) " points" } }
            (PreEscaped(svg))
        }
    }
}
