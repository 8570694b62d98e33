//! Printing: aligned tables for people (bold headers and coloured statuses
//! on a terminal only), one JSON document with `--json`.

use std::fmt::Display;
use std::io::Write;

use console::{Style, style};
use serde::Serialize;

/// Prints one line to stdout. A closed pipe (`poolctl ... | head`) ends
/// the output quietly instead of panicking.
pub(crate) fn line(s: impl Display) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{s}").is_err() {
        std::process::exit(0);
    }
}

/// A table: headers and rows of cells.
#[derive(Debug, Default)]
pub(crate) struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[&'static str]) -> Self {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints the table; columns are as wide as their widest cell.
    pub(crate) fn print(&self) {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(console::measure_text_width(c));
                }
            }
        }
        let head: Vec<String> = self
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| pad(&style(h.to_uppercase()).bold().to_string(), widths[i]))
            .collect();
        line(head.join("  ").trim_end());
        for r in &self.rows {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| pad(c, widths[i]))
                .collect();
            line(cells.join("  ").trim_end());
        }
    }
}

/// Pads `s` to `width` visible characters (escape codes do not count).
fn pad(s: &str, width: usize) -> String {
    let w = console::measure_text_width(s);
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

/// A status word coloured by meaning (green running, yellow restarting or
/// waiting, red failed or stopped).
pub(crate) fn status(s: &str) -> String {
    let st = match s {
        "running" | "ok" => Style::new().green(),
        "restarting" | "waiting" | "exiting" => Style::new().yellow(),
        "failed" | "stopped" | "down" => Style::new().red(),
        _ => Style::new(),
    };
    st.apply_to(s).to_string()
}

/// Prints a value as one pretty JSON document.
pub(crate) fn json<T: Serialize + ?Sized>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => line(s),
        Err(e) => eprintln!("poolctl: cannot print JSON: {e}"),
    }
}

/// A duration in ms as people read it: `850ms`, `12.3s`, `5m`, `2h`.
pub(crate) fn age(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m", ms / 60_000),
        _ => format!("{}h", ms / 3_600_000),
    }
}
