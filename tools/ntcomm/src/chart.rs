//! The benchmark chart: one SVG a person reads at a glance. Left, latency
//! per channel (p50 bar, p99 whisker) at each payload size; right,
//! throughput (MB/s) per channel and size. Both on log scales, because the
//! channels span four orders of magnitude. Plain SVG text: no font files,
//! no rendering library, the same bytes on every machine.

use std::fmt::Write as _;

/// One measured channel at one payload size.
#[derive(Clone, Debug)]
pub struct Point {
    /// Channel name, e.g. `ioctl-buffered`.
    pub channel: String,
    /// Payload bytes.
    pub size: usize,
    /// Median latency, microseconds (None: throughput-only channel).
    pub p50_us: Option<f64>,
    /// 99th percentile latency, microseconds.
    pub p99_us: Option<f64>,
    /// Payload megabytes (10^6 B) per second.
    pub mb_per_s: f64,
}

const ROW: f64 = 13.0;
const PANEL_W: f64 = 430.0;
const LABEL_W: f64 = 150.0;
const TOP: f64 = 56.0;
const COLORS: [&str; 4] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"];

fn size_label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1024 && s % 1024 == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

/// Log-scale position of `v` in `[lo, hi]` mapped onto `[0, width]`.
fn log_x(v: f64, lo: f64, hi: f64, width: f64) -> f64 {
    let v = v.clamp(lo, hi);
    (v.log10() - lo.log10()) / (hi.log10() - lo.log10()) * width
}

fn decades(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut d = 10f64.powf(lo.log10().floor());
    while d <= hi * 1.0001 {
        if d >= lo * 0.9999 {
            out.push(d);
        }
        d *= 10.0;
    }
    out
}

fn fmt_tick(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{}k", v / 1e3)
    } else if v >= 1.0 {
        format!("{v}")
    } else {
        format!("{v:.1}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Bounds of a log axis holding every value (at least one decade).
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for v in values.filter(|v| *v > 0.0 && v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (1.0, 10.0);
    }
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    (lo, hi)
}

/// The chart of `points` as an SVG document; `title` goes on top.
pub fn svg(title: &str, points: &[Point]) -> String {
    let mut channels: Vec<&str> = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    for p in points {
        if !channels.contains(&p.channel.as_str()) {
            channels.push(&p.channel);
        }
        if !sizes.contains(&p.size) {
            sizes.push(p.size);
        }
    }
    sizes.sort_unstable();
    let group_h = ROW * sizes.len().max(1) as f64 + 6.0;
    let height = TOP + group_h * channels.len() as f64 + 50.0;
    let width = 2.0 * (LABEL_W + PANEL_W) + 60.0;
    let (lat_lo, lat_hi) = bounds(points.iter().flat_map(|p| [p.p50_us, p.p99_us]).flatten());
    let (tp_lo, tp_hi) = bounds(points.iter().map(|p| p.mb_per_s));

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="10">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="10" y="18" font-size="14" font-weight="bold">{}</text>"#, escape(title));
    // Legend: one colour per size.
    for (i, size) in sizes.iter().enumerate() {
        let x = 10.0 + i as f64 * 90.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="26" width="10" height="10" fill="{}"/><text x="{}" y="35">{}</text>"#,
            COLORS[i % COLORS.len()],
            x + 14.0,
            size_label(*size)
        );
    }
    let panels = [
        ("latency, us (bar p50, whisker p99; log scale; lower is better)", lat_lo, lat_hi, 0.0),
        ("throughput, MB/s (log scale; higher is better)", tp_lo, tp_hi, LABEL_W + PANEL_W + 40.0),
    ];
    for (pi, (label, lo, hi, x0)) in panels.iter().enumerate() {
        let ax = x0 + LABEL_W;
        let _ = writeln!(s, r#"<text x="{ax}" y="{}" font-weight="bold">{}</text>"#, TOP - 8.0, escape(label));
        let bottom = TOP + group_h * channels.len() as f64;
        for d in decades(*lo, *hi) {
            let x = ax + log_x(d, *lo, *hi, PANEL_W);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{bottom}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                bottom + 12.0,
                fmt_tick(d)
            );
        }
        for (ci, ch) in channels.iter().enumerate() {
            let gy = TOP + group_h * ci as f64;
            let _ = writeln!(s, r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#, ax - 6.0, gy + group_h / 2.0 + 3.0, escape(ch));
            for (si, size) in sizes.iter().enumerate() {
                let Some(p) = points.iter().find(|p| p.channel == *ch && p.size == *size) else { continue };
                let y = gy + 3.0 + ROW * si as f64;
                let color = COLORS[si % COLORS.len()];
                let value = if pi == 0 { p.p50_us } else { Some(p.mb_per_s).filter(|v| *v > 0.0) };
                let Some(v) = value else {
                    let _ = writeln!(s, r##"<text x="{}" y="{:.1}" fill="#888">n/a</text>"##, ax + 2.0, y + 9.0);
                    continue;
                };
                let w = log_x(v, *lo, *hi, PANEL_W).max(1.0);
                let _ = writeln!(s, r#"<rect x="{ax}" y="{y:.1}" width="{w:.1}" height="{}" fill="{color}"/>"#, ROW - 3.0);
                if pi == 0 {
                    if let Some(p99) = p.p99_us {
                        let (x1, x2) = (ax + w, ax + log_x(p99, *lo, *hi, PANEL_W));
                        let ym = y + (ROW - 3.0) / 2.0;
                        let _ = writeln!(
                            s,
                            r#"<line x1="{x1:.1}" y1="{ym:.1}" x2="{x2:.1}" y2="{ym:.1}" stroke="{color}"/><line x1="{x2:.1}" y1="{:.1}" x2="{x2:.1}" y2="{:.1}" stroke="{color}"/>"#,
                            y,
                            y + ROW - 3.0
                        );
                    }
                }
                let text = if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") };
                let _ = writeln!(s, r##"<text x="{:.1}" y="{:.1}" fill="#333">{text}</text>"##, ax + w + 3.0, y + 9.0);
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(channel: &str, size: usize, p50: Option<f64>, mb: f64) -> Point {
        Point { channel: channel.into(), size, p50_us: p50, p99_us: p50.map(|v| v * 3.0), mb_per_s: mb }
    }

    #[test]
    fn every_channel_and_size_is_drawn_on_log_axes() {
        let pts = [p("ioctl", 64, Some(120.0), 0.5), p("ioctl", 65536, Some(900.0), 70.0), p("ring<d2u>", 64, None, 500.0)];
        let svg = svg("bench & chart", &pts);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("bench &amp; chart") && svg.contains("ring&lt;d2u&gt;"), "escaped");
        assert!(svg.contains(">64 B<") && svg.contains(">64 KiB<"), "legend");
        assert!(svg.contains(">n/a<"), "a throughput-only channel has no latency bar");
        // 120 us and 900 us on a 100..1000 axis; 0.5..500 MB/s on 0.1..1000.
        assert!(svg.contains(">100<") && svg.contains(">1k<"), "decade ticks");
        assert_eq!(svg.matches("<rect").count(), 1 + 2 + 2 + 3, "background, legend, 2 latency bars, 3 throughput bars");
    }

    #[test]
    fn log_positions() {
        assert_eq!(log_x(10.0, 1.0, 100.0, 200.0), 100.0);
        assert_eq!(log_x(0.001, 1.0, 100.0, 200.0), 0.0, "clamped");
        assert_eq!(bounds([3.0, 4500.0].into_iter()), (1.0, 10000.0));
        assert_eq!(size_label(4096), "4 KiB");
    }
}
