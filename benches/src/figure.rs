//! What the side-by-side benchmarks share: a measured [`Figure`] (runs,
//! median, the `RESULT` line format the Erlang scripts print too) and the
//! formatting of the tables.

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Whether `program` is an executable file on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// One measured figure: its runs, in `unit`.
#[derive(Debug, Clone)]
pub struct Figure {
    /// What was measured, e.g. `spawn_exit`.
    pub id: String,
    /// The unit of every run, e.g. `msgs/s`.
    pub unit: String,
    /// The size of one run (processes, messages, trips).
    pub n: u64,
    /// One value per run.
    pub runs: Vec<f64>,
}

impl Figure {
    /// A figure of `n`-sized runs.
    pub fn new(id: &str, unit: &str, n: usize, runs: Vec<f64>) -> Self {
        Figure {
            id: id.into(),
            unit: unit.into(),
            n: n as u64,
            runs,
        }
    }

    fn sorted(&self) -> Vec<f64> {
        let mut s = self.runs.clone();
        s.sort_by(f64::total_cmp);
        s
    }

    /// The median as Erlang's side takes it: the middle run, the lower one
    /// of the two middle runs for an even count.
    pub fn median(&self) -> f64 {
        let s = self.sorted();
        s[s.len().div_ceil(2) - 1]
    }

    /// The smallest run.
    pub fn min(&self) -> f64 {
        self.sorted()[0]
    }

    /// The largest run.
    pub fn max(&self) -> f64 {
        *self.sorted().last().expect("a figure has runs")
    }

    /// The machine-readable line, in the format of the Erlang scripts'.
    pub fn result_line(&self, side: &str) -> String {
        let runs: Vec<String> = self.runs.iter().map(|v| format!("{v:.3}")).collect();
        format!(
            "RESULT {side} {} unit={} n={} median={:.3} min={:.3} max={:.3} runs={}",
            self.id,
            self.unit,
            self.n,
            self.median(),
            self.min(),
            self.max(),
            runs.join(",")
        )
    }

    /// Parses a `RESULT <id> unit=.. n=.. median=.. min=.. max=.. runs=a,b,..`
    /// line of the Erlang scripts (local.erl, dist.erl, dist_pool.erl).
    pub fn parse_erlang(line: &str) -> Option<Figure> {
        let mut words = line.strip_prefix("RESULT ")?.split_whitespace();
        let id = words.next()?.to_owned();
        let (mut unit, mut n, mut runs) = (String::new(), 0, Vec::new());
        for w in words {
            let (k, v) = w.split_once('=')?;
            match k {
                "unit" => unit = v.to_owned(),
                "n" => n = v.parse().ok()?,
                "runs" => {
                    runs = v
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .ok()?
                }
                _ => {}
            }
        }
        (!runs.is_empty()).then_some(Figure { id, unit, n, runs })
    }
}

/// A value with its unit, for the tables: `2.24 M/s`, `45.3 k/s`,
/// `0.39 µs`, `896 B`.
pub fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "spawns/s" | "msgs/s" => {
            if v >= 1e6 {
                format!("{:.2} M/s", v / 1e6)
            } else {
                format!("{:.1} k/s", v / 1e3)
            }
        }
        "us" => format!("{v:.2} µs"),
        "bytes/process" => format!("{v:.0} B"),
        _ => format!("{v:.2}"),
    }
}

/// `median (min–max)`, the unit written once.
pub fn fmt_figure(f: &Figure) -> String {
    format!(
        "{} ({}–{})",
        fmt_value(f.median(), &f.unit),
        fmt_value(f.min(), &f.unit).trim_end_matches(|c: char| !c.is_ascii_digit()),
        fmt_value(f.max(), &f.unit)
    )
}

/// "yes", "NO" or "—" for a target met, missed, or not set.
pub fn fmt_met(met: Option<bool>) -> String {
    match met {
        Some(true) => "yes".into(),
        Some(false) => "NO".into(),
        None => "—".into(),
    }
}

/// Prints `lines` (the first is the header) as a Markdown table with
/// padded columns.
pub fn print_markdown_table(lines: &[Vec<String>]) {
    let columns = lines.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, l) in lines.iter().enumerate() {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell}{}", " ".repeat(w - cell.chars().count())))
            .collect();
        println!("| {} |", cells.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            println!("|-{}-|", rule.join("-|-"));
        }
    }
}
