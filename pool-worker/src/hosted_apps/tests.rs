//! Unit tests of the hosted roots' bookkeeping, on one runtime and no
//! master.

use std::sync::Arc;

use pool_proto::{Cookie, NodeId, Response};
use supervisor::{Functions, Runtime};

use super::HostedApps;
use crate::config::NodeConfig;
use crate::master_link::MasterHandle;

fn hosted() -> Arc<HostedApps> {
    let mut functions = Functions::new();
    crate::builtins::register(&mut functions);
    supervisor::register_supervisor_function(&mut functions);
    let rt = Runtime::builder(NodeId::random()).functions(functions).build();
    let config = NodeConfig::worker("w1", "127.0.0.1:1", Cookie::new("a test cookie", "the test").expect("a cookie"));
    Arc::new(HostedApps::new(rt, MasterHandle::new(&config)))
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
    assert!(matches!(apps.start("a".into(), 1, app("a")).await, Response::Spawned(_)));
    let listed = apps.running_for_join();
    assert_eq!(listed.len(), 1);
    assert!(apps.unannounced().is_empty());
    assert!(matches!(apps.start("b".into(), 1, app("b")).await, Response::Spawned(_)));
    assert_eq!(apps.unannounced(), vec!["b".to_owned()]);
    // A newer generation of an announced app is not what the Join listed.
    assert!(matches!(apps.start("a".into(), 2, app("a")).await, Response::Spawned(_)));
    let mut late = apps.unannounced();
    late.sort();
    assert_eq!(late, vec!["a".to_owned(), "b".to_owned()]);
    apps.running_for_join();
    assert!(apps.unannounced().is_empty());
}
