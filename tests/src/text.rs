//! Text the cluster tests write and read: tree files, and worker and
//! master logs.

use std::path::PathBuf;

use anyhow::Result;

use crate::Cluster;

/// The text of a tree file: the root's flags (restart intensity
/// `intensity` per 10 s) and one inline table per child.
pub fn tree_toml(id: &str, strategy: &str, intensity: u32, children: &[String]) -> String {
    let mut s = format!(
        "[supervisor]\nid = \"{id}\"\nstrategy = \"{strategy}\"\nintensity = {intensity}\nperiod = \"10s\"\nchildren = [\n"
    );
    for c in children {
        s.push_str("  ");
        s.push_str(c);
        s.push_str(",\n");
    }
    s.push_str("]\n");
    s
}

/// Writes the tree file of app `id` (`ID.toml`) in the cluster's directory.
pub fn write_tree(
    c: &Cluster,
    id: &str,
    strategy: &str,
    intensity: u32,
    children: &[String],
) -> Result<PathBuf> {
    c.write_file(
        &format!("{id}.toml"),
        &tree_toml(id, strategy, intensity, children),
    )
}

/// The last `n` lines of a log.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A log without its terminal colour codes.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        if ch == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}
