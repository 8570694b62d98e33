//! Unit tests of the hosted roots' bookkeeping, on one runtime and no
//! master.

use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pool_proto::{Cookie, NodeId, Placement, RemoteError, Response};
use supervisor::remote::Placer;
use supervisor::{Functions, Runtime};
use tokio::sync::Notify;

use super::HostedApps;
use crate::config::NodeConfig;
use crate::master_link::MasterHandle;

fn hosted() -> Arc<HostedApps> {
    hosted_with(None)
}

/// With `placer`, children with a placement ask it where to run.
fn hosted_with(placer: Option<Arc<dyn Placer>>) -> Arc<HostedApps> {
    let mut functions = Functions::new();
    crate::builtins::register(&mut functions);
    supervisor::register_supervisor_function(&mut functions);
    let rt = Runtime::builder(NodeId::random())
        .functions(functions)
        .build();
    if let Some(p) = placer {
        rt.set_placer(p).expect("the first placer");
    }
    let config = NodeConfig::worker(
        "w1",
        "127.0.0.1:1",
        Cookie::new("a test cookie", "the test").expect("a cookie"),
    );
    Arc::new(HostedApps::new(rt, MasterHandle::new(&config)))
}

/// Places every child on `node`, once `go` is notified (`asked` is
/// notified when a placement waits).
struct HeldPlacer {
    node: NodeId,
    asked: Arc<Notify>,
    go: Arc<Notify>,
}

impl Placer for HeldPlacer {
    fn place(
        &self,
        _: &Placement,
        _: &[NodeId],
    ) -> BoxFuture<'static, Result<NodeId, RemoteError>> {
        let (node, asked, go) = (self.node, self.asked.clone(), self.go.clone());
        async move {
            asked.notify_one();
            go.notified().await;
            Ok(node)
        }
        .boxed()
    }
}

fn app(id: &str) -> pool_proto::TreeSpec {
    let text = format!(
        "[supervisor]\nid = \"{id}\"\n\n[[supervisor.children]]\nid = \"c\"\n\
         function = \"builtin.echo\"\nplacement = \"local\"\n"
    );
    pool_proto::tree::parse_tree_str("t.toml", &text, |_| true).expect("a valid tree")
}

/// A root whose start ended after the Join was built is unannounced (a
/// fence stops it with the listed ones); the roots that Join listed are
/// not, and a new Join announces every running root.
#[tokio::test]
async fn a_root_started_after_the_join_was_built_is_unannounced() {
    let apps = hosted();
    assert!(matches!(
        apps.start("a".into(), 1, app("a")).await,
        Response::Spawned(_)
    ));
    let listed = apps.running_for_join();
    assert_eq!(listed.len(), 1);
    assert!(apps.unannounced().is_empty());
    assert!(matches!(
        apps.start("b".into(), 1, app("b")).await,
        Response::Spawned(_)
    ));
    assert_eq!(apps.unannounced(), vec!["b".to_owned()]);
    // A newer generation of an announced app is not what the Join listed.
    assert!(matches!(
        apps.start("a".into(), 2, app("a")).await,
        Response::Spawned(_)
    ));
    let mut late = apps.unannounced();
    late.sort();
    assert_eq!(late, vec!["a".to_owned(), "b".to_owned()]);
    apps.running_for_join();
    assert!(apps.unannounced().is_empty());
}

/// A `StopApp` that arrives while the root is still starting (the master
/// stopped waiting for it and places the app elsewhere) makes the start
/// stop its root when it ends, and answer that it did not start.
#[tokio::test]
async fn a_stop_during_the_start_stops_the_root_when_it_ends() {
    let (asked, go) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let probe = hosted();
    let node = probe.rt.node();
    drop(probe);
    let placer = HeldPlacer {
        node,
        asked: asked.clone(),
        go: go.clone(),
    };
    let apps = hosted_with(Some(Arc::new(placer)));
    let placed = "[supervisor]\nid = \"a\"\n\n[[supervisor.children]]\nid = \"c\"\n\
         function = \"builtin.echo\"\nplacement = \"least-loaded\"\n";
    let spec = pool_proto::tree::parse_tree_str("t.toml", placed, |_| true).expect("a tree");
    let start = tokio::spawn({
        let apps = apps.clone();
        async move { apps.start("a".into(), 1, spec).await }
    });
    asked.notified().await;
    apps.stop("a").await;
    go.notify_one();
    let answer = start.await.expect("the start ends");
    assert!(
        matches!(answer, Response::Error(ref e) if e.code == pool_proto::ErrorCode::Unavailable),
        "{answer:?}"
    );
    assert!(apps.running().is_empty());
    // Killed: gone once its task has run (a bounded wait).
    let roots = || {
        apps.rt
            .processes()
            .into_iter()
            .filter(|p| p.function == "supervisor")
            .count()
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while roots() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the root is gone");
}
