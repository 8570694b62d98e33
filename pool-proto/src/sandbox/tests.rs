use super::*;
use crate::tree::{parse_tree_str, tree_to_toml};

/// A tree file's child may carry a `sandbox` table, with the memory as a
/// size and the environment as a table; it parses to the wire form and
/// survives a write and a read back.
#[test]
fn a_tree_child_carries_a_sandbox() {
    let text = r#"
[supervisor]
id = "app"
strategy = "one_for_one"

[[supervisor.children]]
id = "count"
function = "app.wasm:count"
sandbox = { fuel = 5000, memory = "64MiB", dirs = [{ host = "/srv", guest = "/data" }], env = { LANG = "C" } }
"#;
    let tree = parse_tree_str("app.toml", text, |_| true).unwrap();
    let sandbox = *tree.supervisor.children[0].sandbox.clone().unwrap();
    assert_eq!(
        sandbox,
        Sandbox {
            fuel: Some(5000),
            memory: Some(64 << 20),
            dirs: vec![DirGrant {
                host: "/srv".into(),
                guest: "/data".into(),
                write: false
            }],
            env: vec![("LANG".into(), "C".into())],
        }
    );
    let back = parse_tree_str("app.toml", &tree_to_toml(&tree).unwrap(), |_| true).unwrap();
    assert_eq!(back, tree);
}

/// A sandbox that is not a table, or with a bad size, is refused naming
/// the field.
#[test]
fn a_bad_sandbox_is_refused_naming_the_field() {
    for bad in [
        r#"sandbox = 3"#,
        r#"sandbox = { memory = "lots" }"#,
        r#"sandbox = { fuel = "x" }"#,
    ] {
        let text = format!(
            "[supervisor]\nid = \"app\"\nstrategy = \"one_for_one\"\n\n[[supervisor.children]]\nid = \"c\"\nfunction = \"f\"\n{bad}\n"
        );
        let e = parse_tree_str("app.toml", &text, |_| true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sandbox"), "{bad}: {e}");
    }
}
