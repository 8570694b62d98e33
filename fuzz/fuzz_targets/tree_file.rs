//! Arbitrary text (bytes made UTF-8, invalid sequences replaced) parsed as
//! a tree file with the stock worker's built-ins as the known functions.
//!
//! Checks: nothing panics (the TOML parser, the hand-written shape walk,
//! validation, and turning a byte span into a line and a column); an error
//! names the file and has a position inside the text; an accepted tree
//! names only known functions; and an accepted tree that `tree_to_toml`
//! can write (it refuses a `null` inside `args`) parses back to itself.
//!
//! Run from `fuzz/` (seeds: `cargo run --example seed_corpus`):
//! `cargo +nightly fuzz run tree_file -a -- -max_total_time=600 -dict=dicts/tree_file.dict`

#![no_main]

use libfuzzer_sys::fuzz_target;
use pool_proto::tree::{parse_tree_str, tree_to_toml};
use pool_proto::{SupervisorSpec, TreeSpec};

const FILE: &str = "fuzz.toml";

/// The registry: the stock worker's built-ins.
fn known(f: &str) -> bool {
    matches!(
        f,
        "builtin.echo" | "builtin.sleep" | "builtin.busy" | "builtin.crash" | "builtin.counter"
    )
}

/// Every worker child's function is known, recursively.
fn functions_known(sup: &SupervisorSpec) -> bool {
    sup.children.iter().all(|c| {
        c.function.as_deref().is_none_or(known) && c.supervisor.as_ref().is_none_or(functions_known)
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_tree_str(FILE, &text, known) {
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with(FILE), "the error names the file: {shown}");
            let p = e.position.expect("a parse error has a position");
            let lines = text.matches('\n').count() + 1;
            assert!(
                p.line >= 1 && (p.line as usize) <= lines && p.column >= 1,
                "position {p:?} outside a text of {lines} lines: {shown}"
            );
        }
        Ok(tree) => {
            assert!(
                functions_known(&tree.supervisor),
                "accepted an unknown function: {tree:?}"
            );
            if let Ok(written) = tree_to_toml(&tree) {
                let back: TreeSpec = parse_tree_str(FILE, &written, known).unwrap_or_else(|e| {
                    panic!("tree_to_toml wrote a file that does not parse: {e}\n{written}")
                });
                assert_eq!(
                    back, tree,
                    "round trip changed the tree; written:\n{written}"
                );
            }
        }
    }
});
