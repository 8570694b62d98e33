//! Pinning: a supervisor asks its placer for the
//! canonical name of each child's function once, at the child's first
//! start, keeps it in the child's record and runs it at every restart, so
//! a restart never silently runs other code (a wasm module pushed again
//! under the same file name). With a placer whose answer changes between
//! calls.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pool_proto::{NodeId, Placement, RemoteError, Strategy};
use serde_json::json;
use supervisor::remote::Placer;
use supervisor::supervisor::{self as sup, Child, Spec};
use supervisor::{Functions, Pid, Runtime, RuntimeBuilder};
use support::*;

/// A placer that resolves every function to `test.v1` the first time it
/// is asked and `test.v2` afterwards (as the master would after a second
/// push under the same name), and places on this node.
struct UpgradingPlacer {
    /// This node.
    node: NodeId,
    /// Resolutions asked so far.
    asked: AtomicUsize,
}

impl Placer for UpgradingPlacer {
    fn place(
        &self,
        _placement: &Placement,
        _exclude: &[NodeId],
    ) -> BoxFuture<'static, Result<NodeId, RemoteError>> {
        let node = self.node;
        async move { Ok(node) }.boxed()
    }

    fn resolve_function(&self, _function: &str) -> BoxFuture<'static, Result<String, RemoteError>> {
        let n = self.asked.fetch_add(1, Ordering::SeqCst);
        let answer = if n == 0 { "test.v1" } else { "test.v2" };
        async move { Ok(answer.to_owned()) }.boxed()
    }
}

/// A node with `test.v1` and `test.v2` and an [`UpgradingPlacer`].
fn pool_node(log: &Log) -> (Runtime, Arc<UpgradingPlacer>) {
    let mut fns = Functions::new();
    for f in ["test.v1", "test.v2"] {
        let l = log.clone();
        fns.register(f, move |ctx, id: String| {
            body(ctx, l.clone(), id, Mode::Plain)
        });
    }
    let rt = RuntimeBuilder::new()
        .node(NodeId::random())
        .functions(fns)
        .build();
    let placer = Arc::new(UpgradingPlacer {
        node: rt.node(),
        asked: AtomicUsize::new(0),
    });
    rt.set_placer(placer.clone()).unwrap();
    (rt, placer)
}

/// The function process `pid` runs, as the runtime lists it.
fn function_of(rt: &Runtime, pid: Pid) -> String {
    rt.processes()
        .into_iter()
        .find(|p| p.pid == pid)
        .map(|p| p.function)
        .unwrap_or_else(|| panic!("{pid} is not running"))
}

/// A child's function is resolved once, at its first start; its restarts
/// run the first answer although the placer now answers otherwise, while a
/// child started later gets the new answer.
#[tokio::test(start_paused = true)]
async fn restarts_keep_the_function_resolved_at_the_first_start() {
    let log = Log::new();
    let (rt, placer) = pool_node(&log);
    let spec = Spec::new("s", Strategy::OneForOne)
        .intensity(10)
        .child(Child::function("P", "app.wasm:run", json!("P")));
    let s = sup::start(&rt, spec).await.unwrap();
    let first = running(&rt, s, "P").await;
    assert_eq!(function_of(&rt, first), "test.v1");
    assert_eq!(placer.asked.load(Ordering::SeqCst), 1);
    for _ in 0..2 {
        let before = running(&rt, s, "P").await;
        crash_child(&rt, before).await;
        wait_for("P to be restarted", secs(5), || async {
            pid_of(&rt, s, "P").await.is_some_and(|p| p != before)
        })
        .await;
        let after = running(&rt, s, "P").await;
        assert_eq!(
            function_of(&rt, after),
            "test.v1",
            "a restart keeps the pin"
        );
    }
    assert_eq!(
        placer.asked.load(Ordering::SeqCst),
        1,
        "restarts do not ask again"
    );
    // A new child is resolved at its own first start: the new answer.
    sup::start_child(&rt, s, Child::function("Q", "app.wasm:run", json!("Q")))
        .await
        .unwrap();
    let q = running(&rt, s, "Q").await;
    assert_eq!(function_of(&rt, q), "test.v2");
}
