//! What a run measured, and how it is shown: text for people (numbers with
//! thousands separators and units), JSON for machines (`--json FILE`),
//! and an SVG latency chart.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

pub(crate) use gamewire_loadtest::format::{bytes, millis, per_second, thousands};

/// The figures of one run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Figures {
    pub(crate) server: String,
    pub(crate) clients: usize,
    pub(crate) room_size: usize,
    pub(crate) seconds: f64,
    pub(crate) sent: u64,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    /// Clients whose connection failed before the end (the server closed
    /// it, say); a run with any is suspect.
    pub(crate) failed_clients: u64,
    pub(crate) delivered_per_second: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) max_ms: f64,
    /// Server resident memory per connection, bytes, when measured.
    pub(crate) rss_per_connection: Option<f64>,
    /// Server CPU use during the run, in cores, when measured.
    pub(crate) server_cpu: Option<f64>,
    /// Server send syscalls per delivered message, when perf could count.
    pub(crate) send_syscalls_per_delivered: Option<f64>,
    /// From a line's sending to its receipt by each member, every member.
    pub(crate) delivery_p50_ms: f64,
    pub(crate) delivery_p99_ms: f64,
    /// The cluster's Redis: its CPU use, in cores.
    pub(crate) redis_cpu: Option<f64>,
    /// `PUBLISH` calls per line sent in the measured window.
    pub(crate) redis_publish_per_line: Option<f64>,
    /// Redis commands of any kind per line sent in the measured window.
    pub(crate) redis_commands_per_line: Option<f64>,
}

impl Figures {
    /// The round trips' percentiles, from microseconds.
    pub(crate) fn set_latency(&mut self, histogram: &Histogram<u64>) {
        if !histogram.is_empty() {
            self.p50_ms = quantile_ms(histogram, 0.50);
            self.p99_ms = quantile_ms(histogram, 0.99);
            self.p999_ms = quantile_ms(histogram, 0.999);
            self.max_ms = quantile_ms(histogram, 1.0);
        }
    }

    /// The deliveries' percentiles, from microseconds.
    pub(crate) fn set_delivery(&mut self, histogram: &Histogram<u64>) {
        if !histogram.is_empty() {
            self.delivery_p50_ms = quantile_ms(histogram, 0.50);
            self.delivery_p99_ms = quantile_ms(histogram, 0.99);
        }
    }

    pub(crate) fn print(&self) {
        println!("server        {}", self.server);
        println!("sent          {} lines", thousands(self.sent));
        println!(
            "delivered     {} messages, {} a second",
            thousands(self.delivered),
            per_second(self.delivered_per_second)
        );
        println!(
            "lost          {} (sent × room size − delivered)",
            thousands(self.lost)
        );
        if self.failed_clients > 0 {
            println!(
                "FAILED        {} clients lost their connection",
                thousands(self.failed_clients)
            );
        }
        println!(
            "round trip    p50 {}, p99 {}, p99.9 {}, max {}",
            millis(self.p50_ms),
            millis(self.p99_ms),
            millis(self.p999_ms),
            millis(self.max_ms)
        );
        println!(
            "delivery      p50 {}, p99 {} (sent → each member)",
            millis(self.delivery_p50_ms),
            millis(self.delivery_p99_ms)
        );
        if let Some(rss) = self.rss_per_connection {
            println!("server memory {} per connection", bytes(rss));
        }
        if let Some(cpu) = self.server_cpu {
            println!("server cpu    {:.2} cores", cpu);
        }
        if let Some(calls) = self.send_syscalls_per_delivered {
            println!("send syscalls {calls:.4} per delivered message");
        }
        if let (Some(publish), Some(commands)) =
            (self.redis_publish_per_line, self.redis_commands_per_line)
        {
            println!("redis         {publish:.3} PUBLISH, {commands:.3} commands per line sent");
        }
        if let Some(cpu) = self.redis_cpu {
            println!("redis cpu     {cpu:.2} cores");
        }
    }

    pub(crate) fn json(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("null".to_owned(), |v| format!("{v:.1}"));
        let fine = |v: Option<f64>| v.map_or("null".to_owned(), |v| format!("{v:.5}"));
        format!(
            "{{\"server\":\"{}\",\"clients\":{},\"room_size\":{},\"seconds\":{:.3},\"sent\":{},\"delivered\":{},\"lost\":{},\"failed_clients\":{},\"delivered_per_second\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3},\"rss_bytes_per_connection\":{},\"server_cpu_cores\":{},\"send_syscalls_per_delivered\":{},\"delivery_p50_ms\":{:.3},\"delivery_p99_ms\":{:.3},\"redis_cpu_cores\":{},\"redis_publish_per_line\":{},\"redis_commands_per_line\":{}}}",
            self.server,
            self.clients,
            self.room_size,
            self.seconds,
            self.sent,
            self.delivered,
            self.lost,
            self.failed_clients,
            self.delivered_per_second,
            self.p50_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            opt(self.rss_per_connection),
            opt(self.server_cpu),
            fine(self.send_syscalls_per_delivered),
            self.delivery_p50_ms,
            self.delivery_p99_ms,
            opt(self.redis_cpu),
            fine(self.redis_publish_per_line),
            fine(self.redis_commands_per_line),
        )
    }
}

/// A quantile of a histogram of microseconds, in milliseconds.
fn quantile_ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

/// `a ÷ b`, or `None` when `b` is zero (an idle run has no rate to
/// compare, say).
fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0).then(|| a / b)
}

/// One figure of a comparison: its label, its JSON key, and its value in
/// each server's run.
struct Compared {
    name: &'static str,
    key: &'static str,
    gamewire: f64,
    baseline: f64,
}

/// Every figure both runs measured.
fn compared(g: &Figures, b: &Figures) -> Vec<Compared> {
    let row = |name, key, gamewire, baseline| Compared {
        name,
        key,
        gamewire,
        baseline,
    };
    let mut rows = vec![
        row(
            "delivered/s",
            "delivered_per_second",
            g.delivered_per_second,
            b.delivered_per_second,
        ),
        row("round trip p50 (ms)", "p50", g.p50_ms, b.p50_ms),
        row("round trip p99 (ms)", "p99", g.p99_ms, b.p99_ms),
        row("round trip p99.9 (ms)", "p999", g.p999_ms, b.p999_ms),
        row(
            "delivery p99 (ms)",
            "delivery_p99",
            g.delivery_p99_ms,
            b.delivery_p99_ms,
        ),
    ];
    let optional = [
        (
            "memory per connection (B)",
            "rss_per_connection",
            g.rss_per_connection,
            b.rss_per_connection,
        ),
        (
            "server cpu (cores)",
            "server_cpu",
            g.server_cpu,
            b.server_cpu,
        ),
        (
            "send syscalls / delivered",
            "send_syscalls_per_delivered",
            g.send_syscalls_per_delivered,
            b.send_syscalls_per_delivered,
        ),
    ];
    for (name, key, a, b) in optional {
        if let (Some(a), Some(b)) = (a, b) {
            rows.push(row(name, key, a, b));
        }
    }
    rows
}

fn json_ratio(r: Option<f64>) -> String {
    r.map_or("null".to_owned(), |r| format!("{r:.4}"))
}

/// Prints `gamewire ÷ baseline` for every figure; returns the JSON of both
/// runs and the ratios (`null` where a ratio has no meaning).
pub(crate) fn print_ratios(gamewire: &Figures, baseline: &Figures) -> String {
    println!(
        "\n{:<28} {:>14} {:>14} {:>9}",
        "figure", "gamewire", "baseline", "ratio"
    );
    let mut ratios = Vec::new();
    for row in compared(gamewire, baseline) {
        let r = ratio(row.gamewire, row.baseline);
        let shown = r.map_or("-".to_owned(), |r| format!("{r:.3}"));
        println!(
            "{:<28} {:>14.3} {:>14.3} {shown:>9}",
            row.name, row.gamewire, row.baseline
        );
        ratios.push(format!("\"{}\":{}", row.key, json_ratio(r)));
    }
    println!("{:<28} {:>14} {:>14}", "lost", gamewire.lost, baseline.lost);
    println!(
        "{:<28} {:>14} {:>14}",
        "failed clients", gamewire.failed_clients, baseline.failed_clients
    );
    format!(
        "{{\"gamewire\":{},\"baseline\":{},\"ratio\":{{{}}}}}",
        gamewire.json(),
        baseline.json(),
        ratios.join(",")
    )
}

/// After several rounds: prints each figure's ratio in every round and
/// their median; returns the JSON of both. The median of per-round ratios,
/// each measured side by side, is what a noisy machine can still vouch
/// for.
pub(crate) fn print_median_ratios(rounds: &[(Figures, Figures)]) -> String {
    println!(
        "\n{:<28} {:>9}   gamewire ÷ baseline in each round",
        "figure", "median"
    );
    let per_round: Vec<Vec<Compared>> = rounds.iter().map(|(g, b)| compared(g, b)).collect();
    let mut json = Vec::new();
    for (i, row) in per_round[0].iter().enumerate() {
        let ratios: Vec<Option<f64>> = per_round
            .iter()
            .map(|rows| rows.get(i).and_then(|r| ratio(r.gamewire, r.baseline)))
            .collect();
        let median = median(&ratios);
        let shown: Vec<String> = ratios
            .iter()
            .map(|r| r.map_or("-".to_owned(), |r| format!("{r:.3}")))
            .collect();
        println!(
            "{:<28} {:>9}   {}",
            row.name,
            median.map_or("-".to_owned(), |m| format!("{m:.3}")),
            shown.join("  ")
        );
        let each: Vec<String> = ratios.iter().map(|r| json_ratio(*r)).collect();
        json.push(format!(
            "\"{}\":{{\"median\":{},\"rounds\":[{}]}}",
            row.key,
            json_ratio(median),
            each.join(",")
        ));
    }
    let lost: u64 = rounds.iter().map(|(g, b)| g.lost + b.lost).sum();
    let failed: u64 = rounds
        .iter()
        .map(|(g, b)| g.failed_clients + b.failed_clients)
        .sum();
    println!("{:<28} {lost:>9}   in all rounds, both servers", "lost");
    println!(
        "{:<28} {failed:>9}   in all rounds, both servers",
        "failed clients"
    );
    format!(
        "{{\"rounds\":{},\"lost\":{lost},\"failed_clients\":{failed},\"ratio\":{{{}}}}}",
        rounds.len(),
        json.join(",")
    )
}

/// The median of the values that are there.
pub(crate) fn median(values: &[Option<f64>]) -> Option<f64> {
    let mut present: Vec<f64> = values.iter().flatten().copied().collect();
    if present.is_empty() {
        return None;
    }
    present.sort_by(f64::total_cmp);
    let mid = present.len() / 2;
    Some(if present.len() % 2 == 1 {
        present[mid]
    } else {
        (present[mid - 1] + present[mid]) / 2.0
    })
}

/// An SVG chart of round-trip latency by percentile (the x axis in
/// "nines": 0 %, 90 %, 99 %, 99.9 % …), one line per histogram.
pub(crate) fn latency_svg(series: &[(&str, &Histogram<u64>)]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 400.0;
    const PAD: f64 = 60.0;
    /// Room for the latency labels on the left.
    const LEFT: f64 = 90.0;
    const COLORS: [&str; 2] = ["#d9480f", "#1864ab"];
    let max_nines = 4.0;
    let max_ms = series
        .iter()
        .map(|(_, h)| h.max() as f64 / 1000.0)
        .fold(0.001, f64::max);
    let x = |q: f64| LEFT + (-(1.0 - q).max(1e-4).log10() / max_nines) * (W - LEFT - PAD);
    let y = |ms: f64| H - PAD - ms / max_ms * (H - 2.0 * PAD);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(svg, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">round-trip latency by percentile</text>",
        W / 2.0
    );
    for (label, q) in [
        ("0%", 0.0),
        ("90%", 0.9),
        ("99%", 0.99),
        ("99.9%", 0.999),
        ("99.99%", 0.9999),
    ] {
        let px = x(q);
        let _ = writeln!(
            svg,
            "<line x1=\"{px:.1}\" y1=\"{PAD}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            H - PAD,
            H - PAD + 18.0
        );
    }
    for step in 0..=4 {
        let ms = max_ms * f64::from(step) / 4.0;
        let py = y(ms);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{ms:.2} ms</text>",
            W - PAD,
            LEFT - 6.0,
            py + 4.0
        );
    }
    for (i, (label, histogram)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> = (0..=400)
            .map(|step| {
                let q = 1.0 - 10f64.powf(-max_nines * f64::from(step) / 400.0);
                let ms = histogram.value_at_quantile(q) as f64 / 1000.0;
                format!("{:.1},{:.1}", x(q), y(ms))
            })
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\">{label}</text>",
            LEFT + 10.0,
            PAD + 16.0 + 16.0 * i as f64
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_what_is_there() {
        assert_eq!(median(&[Some(3.0), None, Some(1.0), Some(2.0)]), Some(2.0));
        assert_eq!(median(&[Some(1.0), Some(4.0)]), Some(2.5));
        assert_eq!(median(&[None, None]), None);
    }

    #[test]
    fn ratios_skip_figures_one_run_lacks() {
        let g = Figures {
            delivered_per_second: 90.0,
            server_cpu: Some(1.0),
            ..Default::default()
        };
        let b = Figures {
            delivered_per_second: 100.0,
            ..Default::default()
        };
        let rows = compared(&g, &b);
        assert!(rows.iter().all(|r| r.key != "server_cpu"));
        let rate = rows
            .iter()
            .find(|r| r.key == "delivered_per_second")
            .unwrap();
        assert_eq!(ratio(rate.gamewire, rate.baseline), Some(0.9));
        // An idle run has no rate: no ratio, not NaN.
        assert_eq!(ratio(0.0, 0.0), None);
    }

    #[test]
    fn json_has_every_figure() {
        let figures = Figures {
            server: "gamewire".into(),
            lost: 3,
            rss_per_connection: Some(2048.0),
            ..Default::default()
        };
        let json = figures.json();
        assert!(json.contains("\"lost\":3"), "{json}");
        assert!(
            json.contains("\"rss_bytes_per_connection\":2048.0"),
            "{json}"
        );
        assert!(json.contains("\"server_cpu_cores\":null"), "{json}");
    }

    #[test]
    fn svg_draws_one_line_per_series() {
        let mut histogram = Histogram::<u64>::new(3).unwrap();
        for us in 1..1000 {
            histogram.record(us).unwrap();
        }
        let svg = latency_svg(&[("gamewire", &histogram), ("baseline", &histogram)]);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }
}
