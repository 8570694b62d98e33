//! Pending children (docs/semantics.md "Pending children"): a child that
//! cannot start *now* — no node can take it, its node was lost during the
//! start — waits pending with its reason instead of failing the start or
//! using up the restart intensity, is retried with capped backoff, and at
//! once when the pool's membership changes. Permanent failures keep OTP's
//! behaviour. With paused time and a placer the test controls.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use pool_proto::{
    ChildStatus, ErrorCode, ExitReason, NodeId, Placement, RemoteError, Restart, Strategy, TreeView,
};
use serde_json::json;
use supervisor::remote::{NodeChanges, Placer};
use supervisor::supervisor::{self as sup, Child, ChildCounts, ChildPid, Spec, SupError};
use supervisor::{Error, Functions, Pid, Runtime, RuntimeBuilder};
use support::*;

/// A placer whose answer the test sets: a refusal, or this node.
struct GatePlacer {
    /// The node it places on when it does not refuse.
    node: NodeId,
    /// The refusal it answers with, if any.
    refuse: Mutex<Option<RemoteError>>,
    /// How many placements it was asked for.
    asked: AtomicUsize,
    /// The membership signal supervisors wait on.
    changes: NodeChanges,
}

impl Placer for GatePlacer {
    fn place(
        &self,
        _placement: &Placement,
        _exclude: &[NodeId],
    ) -> BoxFuture<'static, Result<NodeId, RemoteError>> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let r = match self.refuse.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(self.node),
        };
        async move { r }.boxed()
    }

    fn node_changes(&self) -> Option<NodeChanges> {
        Some(self.changes.clone())
    }
}

impl GatePlacer {
    fn refuse(&self, e: Option<RemoteError>) {
        *self.refuse.lock().unwrap() = e;
    }
    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

fn no_node() -> RemoteError {
    RemoteError::new(ErrorCode::NoNode, "no live node has label zone=z2")
}

/// A node with `test.worker` and a [`GatePlacer`] that refuses with
/// `refuse` until told otherwise.
fn pool_node(log: &Log, refuse: Option<RemoteError>) -> (Runtime, Arc<GatePlacer>) {
    let mut fns = Functions::new();
    let l = log.clone();
    fns.register("test.worker", move |ctx, id: String| {
        body(ctx, l.clone(), id, Mode::Plain)
    });
    let rt = RuntimeBuilder::new()
        .node(NodeId::random())
        .functions(fns)
        .build();
    let placer = Arc::new(GatePlacer {
        node: rt.node(),
        refuse: Mutex::new(refuse),
        asked: AtomicUsize::new(0),
        changes: NodeChanges::new(),
    });
    rt.set_placer(placer.clone()).unwrap();
    (rt, placer)
}

/// A worker placed by label `zone=z2`.
fn pinned(id: &str) -> Child {
    Child::function(id, "test.worker", json!(id)).placement(Placement::Label("zone=z2".into()))
}

/// The view of child `id` of `s`.
async fn view_of(rt: &Runtime, s: Pid, id: &str) -> TreeView {
    sup::inspect(rt, s)
        .await
        .unwrap()
        .children
        .unwrap()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no child {id}"))
}

/// pending.init: a child no node can take does not fail the start (even
/// with intensity 0): the root starts, its other children run, and the
/// child shows `pending` with the placer's reason in `inspect` (and
/// `restarting`, not active, in OTP's views). Its retries follow the
/// capped backoff — about a dozen in 10 s, never counted — and it starts
/// as soon as a placement succeeds, with no restart counted.
#[tokio::test(start_paused = true)]
async fn a_child_no_node_can_take_waits_pending_and_the_start_succeeds() {
    let log = Log::new();
    let (rt, placer) = pool_node(&log, Some(no_node()));
    let spec = Spec::new("s", Strategy::OneForOne)
        .intensity(0)
        .child(plain(&log, "A"))
        .child(pinned("P"));
    let s = sup::start(&rt, spec)
        .await
        .expect("a pending child does not fail the start");
    running(&rt, s, "A").await;
    assert_eq!(state_of(&rt, s, "P").await, Some(ChildPid::Restarting));
    assert_eq!(sup::count_children(&rt, s).await.unwrap().active, 1);
    let p = view_of(&rt, s, "P").await;
    assert_eq!(p.status, ChildStatus::Pending);
    let why = p.reason.expect("a pending child says why");
    assert!(why.contains("no live node has label zone=z2"), "{why}");
    let t0 = tokio::time::Instant::now();
    tokio::time::sleep(secs(10)).await;
    assert!(rt.is_alive(s), "pending retries are not counted");
    // 100, 200, 400, 800, 1600 ms, then every 2 s at most (jitter shortens
    // each by at most a quarter): between 8 and 14 attempts in 10 s.
    let asked = placer.asked();
    assert!((8..=14).contains(&asked), "{asked} placements in 10 s");
    placer.refuse(None);
    wait_for("P to run", secs(3), || async {
        pid_of(&rt, s, "P").await.is_some()
    })
    .await;
    assert!(tokio::time::Instant::now() - t0 <= secs(12));
    assert_eq!(log.count("started P"), 1);
    let p = view_of(&rt, s, "P").await;
    assert_eq!(
        (p.status, p.reason, p.restarts),
        (ChildStatus::Running, None, 0)
    );
}

/// pending.nodes-changed: `Runtime::nodes_changed` (pool-worker calls it on
/// NodeUp) retries pending children at once, not at their next backoff
/// step.
#[tokio::test(start_paused = true)]
async fn nodes_changed_retries_pending_children_at_once() {
    let log = Log::new();
    let (rt, placer) = pool_node(&log, Some(no_node()));
    let spec = Spec::new("s", Strategy::OneForOne).child(pinned("P"));
    let s = sup::start(&rt, spec).await.unwrap();
    // Deep into the backoff: the next retry is more than a second away.
    tokio::time::sleep(secs(10)).await;
    let n = placer.asked();
    wait_for("a retry just ran", secs(3), || {
        let now = placer.asked();
        async move { now > n }
    })
    .await;
    placer.refuse(None);
    let t = tokio::time::Instant::now();
    rt.nodes_changed();
    wait_for("P to run", secs(3), || async {
        pid_of(&rt, s, "P").await.is_some()
    })
    .await;
    assert!(
        tokio::time::Instant::now() - t < ms(100),
        "retried at once, not after the backoff"
    );
}

/// pending.restart: a child lost (its restart counted once) whose
/// replacement no node can take waits pending without using up the
/// intensity (1 here: a counted retry would take the supervisor down); once
/// placed it runs, with one restart to its name.
#[tokio::test(start_paused = true)]
async fn a_restart_that_cannot_be_placed_waits_pending_and_counts_once() {
    let log = Log::new();
    let (rt, placer) = pool_node(&log, None);
    let spec = Spec::new("s", Strategy::OneForOne)
        .intensity(1)
        .child(pinned("P"));
    let s = sup::start(&rt, spec).await.unwrap();
    let old = running(&rt, s, "P").await;
    placer.refuse(Some(no_node()));
    crash_child(&rt, old).await;
    wait_for("P to be pending", DEADLINE, || async {
        view_of(&rt, s, "P").await.status == ChildStatus::Pending
    })
    .await;
    tokio::time::sleep(secs(10)).await;
    assert!(rt.is_alive(s));
    placer.refuse(None);
    wait_for("P to run again", secs(3), || async {
        pid_of(&rt, s, "P").await.is_some()
    })
    .await;
    assert_eq!(view_of(&rt, s, "P").await.restarts, 1);
}

/// pending.permanent: a placement refused for a reason that will not pass
/// (a bad spec) is a start failure as OTP has it: the start fails naming
/// the child and the reason.
#[tokio::test(start_paused = true)]
async fn a_permanent_placement_failure_still_fails_the_start() {
    let log = Log::new();
    let bad = RemoteError::new(ErrorCode::BadSpec, "bad label requirement \"=\"");
    let (rt, _placer) = pool_node(&log, Some(bad));
    let spec = Spec::new("s", Strategy::OneForOne)
        .child(plain(&log, "A"))
        .child(pinned("P"));
    let err = sup::start(&rt, spec).await.unwrap_err();
    assert!(!err.is_transient());
    let Error::Start(text) = &err else {
        panic!("expected a start error, got {err:?}")
    };
    assert!(
        text.starts_with("failed_to_start_child P: placement"),
        "{text}"
    );
    assert!(text.contains("bad label requirement"), "{text}");
    assert_eq!(log.take(), ["started A", "stopped A"]);
}

/// pending.ordered: under rest_for_one the children after a pending child
/// wait for it (they depend on it) — pending, saying so — and start after
/// it, in order.
#[tokio::test(start_paused = true)]
async fn under_rest_for_one_the_children_after_a_pending_one_wait_for_it() {
    let log = Log::new();
    let (rt, placer) = pool_node(&log, Some(no_node()));
    let spec = Spec::new("s", Strategy::RestForOne)
        .child(plain(&log, "A"))
        .child(pinned("P"))
        .child(plain(&log, "C"));
    let s = sup::start(&rt, spec).await.unwrap();
    assert_eq!(log.take(), ["started A"]);
    let c = view_of(&rt, s, "C").await;
    assert_eq!(c.status, ChildStatus::Pending);
    assert_eq!(c.reason.as_deref(), Some("waits for P to start first"));
    placer.refuse(None);
    rt.nodes_changed();
    wait_for("C to run", DEADLINE, || async {
        pid_of(&rt, s, "C").await.is_some()
    })
    .await;
    // Pids increase in start order: P started first.
    let (p, c) = (running(&rt, s, "P").await, running(&rt, s, "C").await);
    assert!(p < c, "P {p} started before C {c}");
}

/// pending.terminate: `terminate_child` of a pending child stops its
/// retries: it stays stopped (`undefined`), and no placement is asked for
/// any more.
#[tokio::test(start_paused = true)]
async fn terminate_child_of_a_pending_child_stops_its_retries() {
    let log = Log::new();
    let (rt, placer) = pool_node(&log, Some(no_node()));
    let spec = Spec::new("s", Strategy::OneForOne).child(pinned("P"));
    let s = sup::start(&rt, spec).await.unwrap();
    sup::terminate_child(&rt, s, "P").await.unwrap();
    assert_eq!(state_of(&rt, s, "P").await, Some(ChildPid::Undefined));
    let asked = placer.asked();
    placer.refuse(None);
    rt.nodes_changed();
    tokio::time::sleep(secs(10)).await;
    assert_eq!(placer.asked(), asked);
    assert_eq!(state_of(&rt, s, "P").await, Some(ChildPid::Undefined));
    assert_eq!(view_of(&rt, s, "P").await.status, ChildStatus::Stopped);
}

/// pending.dynamic: a dynamic start (`start_child`, `start_dynamic_child`)
/// that cannot be placed now answers `Unavailable` at once, transient, and
/// stores nothing: the caller is there to decide.
#[tokio::test(start_paused = true)]
async fn a_dynamic_start_that_cannot_be_placed_is_unavailable() {
    let log = Log::new();
    let (rt, _placer) = pool_node(&log, Some(no_node()));
    let s = sup::start(&rt, Spec::new("s", Strategy::OneForOne))
        .await
        .unwrap();
    let r = sup::start_child(&rt, s, pinned("P")).await;
    assert!(r.as_ref().is_err_and(Error::is_transient), "{r:?}");
    assert!(matches!(sup_err(r), SupError::Unavailable(t) if t.contains("zone=z2")));
    assert!(children(&rt, s).await.is_empty());
    let spec = Spec::new("d", Strategy::SimpleOneForOne).child(pinned("w"));
    let d = sup::start(&rt, spec).await.unwrap();
    let r = sup::start_dynamic_child(&rt, d, json!(null)).await;
    assert!(matches!(sup_err(r), SupError::Unavailable(_)));
    assert_eq!(
        sup::count_children(&rt, d).await.unwrap(),
        ChildCounts {
            specs: 1,
            active: 0,
            supervisors: 0,
            workers: 0
        }
    );
}

/// pending.sofo-old-pid: a simple_one_for_one child whose restart waits
/// pending answers to its old pid: `get_childspec(old)` gives the template
/// and `terminate_child(old)` removes it, and no retry brings it back.
#[tokio::test(start_paused = true)]
async fn a_pending_dynamic_child_answers_to_its_old_pid() {
    let log = Log::new();
    let (rt, placer) = pool_node(&log, None);
    let spec = Spec::new("d", Strategy::SimpleOneForOne)
        .intensity(1)
        .child(pinned("w"));
    let d = sup::start(&rt, spec).await.unwrap();
    let old = sup::start_dynamic_child(&rt, d, json!("W"))
        .await
        .unwrap()
        .unwrap();
    placer.refuse(Some(no_node()));
    crash_child(&rt, old).await;
    wait_for("the restart to be pending", DEADLINE, || async {
        sup::inspect(&rt, d).await.unwrap().children.unwrap()[0].status == ChildStatus::Pending
    })
    .await;
    assert_eq!(sup::get_childspec(&rt, d, old).await.unwrap().id, "w");
    sup::terminate_child(&rt, d, old).await.unwrap();
    assert!(children(&rt, d).await.is_empty());
    placer.refuse(None);
    rt.nodes_changed();
    tokio::time::sleep(secs(5)).await;
    assert!(children(&rt, d).await.is_empty());
    assert_eq!(log.count("started W"), 1);
}

/// intensity.failed-view: a transient nested supervisor that gave up is kept
/// stopped by its parent (`escalate.transient`) and `inspect` shows it
/// `failed`, with the give-up reason in words.
#[tokio::test(start_paused = true)]
async fn a_nested_supervisor_that_gave_up_shows_failed_with_its_reason() {
    let log = Log::new();
    let rt = node();
    let mid = Spec::new("mid", Strategy::OneForOne)
        .intensity(0)
        .child(plain(&log, "W"));
    let root = Spec::new("root", Strategy::OneForOne)
        .child(Child::supervisor("mid", mid).restart(Restart::Transient));
    let r = sup::start(&rt, root).await.unwrap();
    let m = running(&rt, r, "mid").await;
    let w = watch(&rt, m).await;
    crash_child(&rt, running(&rt, m, "W").await).await;
    let reason = w.reason().await;
    assert_eq!(
        reason,
        ExitReason::ShutdownWith(
            "restart intensity exceeded: 1 restart in 5 s, intensity 0".into()
        )
    );
    wait_for("mid to show failed", DEADLINE, || async {
        view_of(&rt, r, "mid").await.status == ChildStatus::Failed
    })
    .await;
    assert_eq!(
        view_of(&rt, r, "mid").await.reason,
        Some(reason.to_string())
    );
}
