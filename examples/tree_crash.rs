//! Runs a TOML supervision tree on one node (no pool needed), crashes one of
//! its children with an untrappable `kill`, and shows which children the
//! strategy restarted: a pid that changed is a restart.
//!
//! ```sh
//! cargo run -p pool-examples --example tree_crash -- examples/trees/rest_for_one.toml b
//! examples/trees/crash.sh          # every strategy in turn
//! ```
//!
//! The second argument is the id of the child to crash; for a
//! `simple_one_for_one` tree (whose children have no ids) it is the child's
//! number, counted from 1, among three children the example adds first.
//! The functions are the stock worker's built-ins, so the same files also
//! run in a pool with `poolctl tree start FILE`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use pool_proto::tree::parse_tree_file;
use pool_proto::{ExitReason, NodeId, Pid, Strategy, TreeView};
use supervisor::{self as sup, Functions, Runtime};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(victim)) = (args.next(), args.next()) else {
        bail!("usage: tree_crash TREE.toml CHILD (a child id, or a number for simple_one_for_one)");
    };

    let rt = Runtime::new(NodeId::random());
    let mut functions = Functions::new();
    pool_worker::builtins::register(&mut functions);
    let tree = parse_tree_file(&PathBuf::from(&file), |f| functions.contains(f))?;
    rt.set_functions(functions);

    let strategy = tree.supervisor.strategy;
    let root = sup::start_tree(&rt, tree).await?;
    if strategy == Strategy::SimpleOneForOne {
        for _ in 0..3 {
            sup::start_dynamic_child(&rt, root, serde_json::Value::Null).await?;
        }
    }

    let before = children(&rt, root).await?;
    println!("{file} ({strategy}), before:");
    print_table(&before, &[]);

    let target = pick(&before, &victim, strategy)?;
    println!("\nkill {} ({target})", label(&before, target));
    rt.exit(target, ExitReason::Kill);

    // Wait (bounded) until the victim has been replaced and every child runs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let after = loop {
        let now = children(&rt, root).await?;
        let replaced = !now.iter().any(|c| c.pid == Some(target));
        if replaced && now.iter().all(|c| c.pid.is_some()) {
            break now;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the tree did not restart within 5 s: {now:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("\nafter:");
    print_table(&after, &before);

    sup::stop(&rt, root).await?;
    Ok(())
}

/// The root's direct children, in start order.
async fn children(rt: &Runtime, root: Pid) -> anyhow::Result<Vec<TreeView>> {
    let view = sup::inspect(rt, root).await?;
    Ok(view.children.unwrap_or_default())
}

fn pick(children: &[TreeView], victim: &str, strategy: Strategy) -> anyhow::Result<Pid> {
    let child = if strategy == Strategy::SimpleOneForOne {
        let n: usize = victim
            .parse()
            .with_context(|| format!("{victim:?}: give the child's number, from 1"))?;
        n.checked_sub(1).and_then(|i| children.get(i))
    } else {
        children.iter().find(|c| c.id == victim)
    };
    child
        .and_then(|c| c.pid)
        .with_context(|| format!("no running child {victim:?} in this tree"))
}

fn label(children: &[TreeView], pid: Pid) -> String {
    children
        .iter()
        .position(|c| c.pid == Some(pid))
        .map(|i| {
            let c = &children[i];
            if c.id.is_empty() {
                format!("child #{}", i + 1)
            } else {
                format!("child {} (#{})", c.id, i + 1)
            }
        })
        .unwrap_or_else(|| pid.to_string())
}

fn print_table(rows: &[TreeView], before: &[TreeView]) {
    println!("  {:<8} {:<28} {:>8}  ", "CHILD", "PID", "RESTARTS");
    for (i, c) in rows.iter().enumerate() {
        let id = if c.id.is_empty() {
            format!("#{}", i + 1)
        } else {
            c.id.clone()
        };
        let pid = c.pid.map_or_else(|| "-".to_owned(), |p| p.to_string());
        let old = before.get(i).and_then(|b| b.pid);
        let note = match (before.is_empty(), old == c.pid) {
            (true, _) => "",
            (false, true) => "kept",
            (false, false) => "RESTARTED",
        };
        println!("  {id:<8} {pid:<28} {:>8}  {note}", c.restarts);
    }
}
