//! A hand-written SVG of latency percentile curves, HdrHistogram style:
//! latency on a log scale against percentile on a "nines" scale (0 %, 90 %,
//! 99 %, 99.9 % … equally spaced), so the tail is as visible as the median.

use std::fmt::Write as _;

use crate::workload::LatencyHistogram;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 540.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 60.0;
/// Points per decade of the percentile axis.
const STEPS_PER_NINE: u32 = 60;
/// Deepest percentile drawn: 99.9999 %.
const MAX_NINES: f64 = 6.0;

/// One curve: a name, a colour and a histogram of nanoseconds.
pub struct Series<'a> {
    /// Legend name.
    pub name: &'a str,
    /// SVG colour.
    pub color: &'a str,
    /// Latencies in nanoseconds.
    pub histogram: &'a LatencyHistogram,
}

/// The SVG document for `series`, titled `title` and `subtitle`.
pub fn svg(title: &str, subtitle: &str, series: &[Series<'_>]) -> String {
    let drawn: Vec<&Series<'_>> = series.iter().filter(|s| !s.histogram.is_empty()).collect();
    let largest_count = drawn.iter().map(|s| s.histogram.len()).max().unwrap_or(1);
    // Percentiles beyond 1/count are all "the max": stop one nine after.
    let nines = ((largest_count.max(10) as f64).log10().ceil()).clamp(2.0, MAX_NINES);
    let us = |ns: u64| (ns.max(1) as f64 / 1000.0).max(0.001);
    let low = drawn
        .iter()
        .map(|s| us(s.histogram.min()))
        .fold(f64::INFINITY, f64::min);
    let high = drawn
        .iter()
        .map(|s| us(s.histogram.max()))
        .fold(0.0, f64::max);
    let (low, high) = if drawn.is_empty() {
        (1.0, 10.0)
    } else {
        (low, high)
    };
    let y_min = low.log10().floor();
    let y_max = high.log10().ceil().max(y_min + 1.0);

    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_of = |n: f64| LEFT + n / nines * plot_w;
    let y_of = |v_us: f64| TOP + plot_h - (v_us.log10() - y_min) / (y_max - y_min) * plot_h;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="24" font-size="16" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="42" fill="#555">{}</text>"##,
        escape(subtitle)
    );

    // Horizontal grid: one line per decade of latency.
    let mut decade = y_min;
    while decade <= y_max + 1e-9 {
        let y = y_of(10f64.powf(decade));
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            latency_label(10f64.powf(decade))
        );
        decade += 1.0;
    }
    // Vertical grid: one line per nine.
    for n in 0..=(nines as u32) {
        let x = x_of(f64::from(n));
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            percentile_label(n)
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 14.0
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate(18,{:.1}) rotate(-90)" text-anchor="middle">latency (log scale)</text>"#,
        TOP + plot_h / 2.0
    );

    for (i, s) in drawn.iter().enumerate() {
        let h = s.histogram;
        let steps = (nines * f64::from(STEPS_PER_NINE)) as u32;
        let mut points = String::new();
        for step in 0..=steps {
            let n = f64::from(step) / f64::from(STEPS_PER_NINE);
            let q = 1.0 - 10f64.powf(-n);
            let v = if step == steps {
                us(h.max())
            } else {
                us(h.value_at_quantile(q))
            };
            let _ = write!(points, "{:.1},{:.1} ", x_of(n), y_of(v));
        }
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            s.color,
            points.trim_end()
        );
        let ly = TOP + 16.0 + i as f64 * 64.0;
        let lx = LEFT + plot_w + 16.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="3"/><text x="{:.1}" y="{:.1}" font-weight="bold">{} ({} ops)</text>"#,
            lx + 24.0,
            s.color,
            lx + 30.0,
            ly + 4.0,
            escape(s.name),
            h.len()
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}">p50 {}  p99 {}</text><text x="{:.1}" y="{:.1}">p99.9 {}  max {}</text>"#,
            lx + 30.0,
            ly + 20.0,
            latency_label(us(h.value_at_quantile(0.5))),
            latency_label(us(h.value_at_quantile(0.99))),
            lx + 30.0,
            ly + 36.0,
            latency_label(us(h.value_at_quantile(0.999))),
            latency_label(us(h.max()))
        );
    }
    out.push_str("</svg>\n");
    out
}

/// `0 %`, `90 %`, `99 %`, `99.9 %` … for `n` nines.
fn percentile_label(n: u32) -> String {
    match n {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        _ => format!("99.{}%", "9".repeat(n as usize - 2)).replace("99.%", "99%"),
    }
}

/// A latency in µs as a short label with its unit.
fn latency_label(v_us: f64) -> String {
    let (v, unit) = if v_us < 1.0 {
        (v_us * 1000.0, "ns")
    } else if v_us < 1000.0 {
        (v_us, "µs")
    } else if v_us < 1_000_000.0 {
        (v_us / 1000.0, "ms")
    } else {
        (v_us / 1_000_000.0, "s")
    };
    let digits = if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    };
    let digits = if digits.contains('.') {
        digits.trim_end_matches('0').trim_end_matches('.')
    } else {
        &digits
    };
    format!("{digits} {unit}")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_naturally() {
        assert_eq!(percentile_label(0), "0%");
        assert_eq!(percentile_label(1), "90%");
        assert_eq!(percentile_label(2), "99%");
        assert_eq!(percentile_label(4), "99.99%");
        assert_eq!(latency_label(0.1), "100 ns");
        assert_eq!(latency_label(1500.0), "1.5 ms");
        assert_eq!(latency_label(10_000.0), "10 ms");
        assert_eq!(latency_label(4370.0), "4.37 ms");
    }

    #[test]
    fn the_svg_has_one_curve_per_series() {
        let mut h = LatencyHistogram::new_with_bounds(1, 1_000_000_000, 3).unwrap();
        for v in 1..1000u64 {
            h.record(v * 1000).unwrap();
        }
        let doc = svg(
            "t <1>",
            "s",
            &[
                Series {
                    name: "put",
                    color: "crimson",
                    histogram: &h,
                },
                Series {
                    name: "get",
                    color: "steelblue",
                    histogram: &h,
                },
            ],
        );
        assert!(doc.starts_with("<svg"));
        assert_eq!(doc.matches("<polyline").count(), 2);
        assert!(doc.contains("t &lt;1&gt;"));
        assert!(!doc.contains("NaN"));
    }
}
