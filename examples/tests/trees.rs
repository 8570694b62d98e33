//! Every example tree file parses against the stock worker's functions, and
//! each strategy's file declares the strategy it is named after.

use std::path::Path;

use pool_proto::tree::parse_tree_file;
use supervisor::Functions;

fn builtins() -> Functions {
    let mut f = Functions::new();
    pool_worker::builtins::register(&mut f);
    f
}

#[test]
fn every_example_tree_parses_with_the_builtins() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("trees");
    let fns = builtins();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            parse_tree_file(&path, |f| fns.contains(f))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(
        seen >= 5,
        "expected the demo tree and one per strategy, saw {seen}"
    );
}

#[test]
fn each_strategy_file_uses_its_strategy() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("trees");
    let fns = builtins();
    for name in [
        "one_for_one",
        "one_for_all",
        "rest_for_one",
        "simple_one_for_one",
    ] {
        let tree = parse_tree_file(&dir.join(format!("{name}.toml")), |f| fns.contains(f)).unwrap();
        assert_eq!(tree.supervisor.strategy.as_str(), name);
    }
}
