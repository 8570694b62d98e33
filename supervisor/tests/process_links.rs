//! Links and exit signals (docs/semantics.md "Links and exit signals"): the
//! exit-signal table of OTP.md §2.1 cell by cell, `kill` versus `killed`,
//! `exit(self, normal)`, linking to a dead pid, the atomicity of
//! `spawn_link`/`spawn_monitor`, panics as exit reasons, and cooperative
//! scheduling.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use pool_proto::{ExitReason, Pid};
use supervisor::{CallError, Ctx, Envelope, Error, SpawnOpts};
use support::*;

/// How the signal reaches the target.
#[derive(Clone, Copy, Debug)]
enum How {
    /// A linked process ends with the reason.
    Linked,
    /// `exit(Target, Reason)` from another process.
    Explicit,
}

/// What became of the target.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    /// Still alive, nothing received.
    Ignored,
    /// Still alive; received `Exit { from: <the sender>, reason }`.
    Trapped(ExitReason),
    /// Died with this reason.
    Died(ExitReason),
}

/// A target process: traps exits if told to, forwards every exit signal it
/// receives as a message to `report`, answers calls while alive.
fn target(ctx: &Ctx, trap: bool, report: Pid) -> Pid {
    ctx.spawn_opts(SpawnOpts::new().trap_exit(trap), move |mut c| async move {
        loop {
            match c.recv().await {
                Envelope::Exit { from, reason } => c.send(report, (from, reason)),
                Envelope::Call(call) => c.reply(&call, "alive"),
                _ => {}
            }
        }
        #[allow(unreachable_code)]
        ()
    })
}

/// A [`target`] linked to `to` from the moment it is spawned.
fn linked_target(ctx: &Ctx, trap: bool, report: Pid, to: Pid) -> Pid {
    ctx.spawn_opts(
        SpawnOpts::new().link(to).trap_exit(trap),
        move |mut c| async move {
            loop {
                match c.recv().await {
                    Envelope::Exit { from, reason } => c.send(report, (from, reason)),
                    Envelope::Call(call) => c.reply(&call, "alive"),
                    _ => {}
                }
            }
            #[allow(unreachable_code)]
            ()
        },
    )
}

/// Sends the exit signal `reason` to a fresh target as `how` says and
/// reports what became of it (and checks who the signal came from).
async fn signal(how: How, reason: ExitReason, trap: bool) -> Outcome {
    let rt = node();
    with_ctx(&rt, move |mut ctx| async move {
        let me = ctx.pid();
        let p = target(&ctx, trap, me);
        let mref = ctx.monitor(p);
        let sender = match how {
            How::Explicit => {
                ctx.exit(p, reason);
                me
            }
            How::Linked => {
                let r = reason.clone();
                let s = ctx.spawn_opts(SpawnOpts::new().link(p), move |_c| async move { r });
                // The link signal is delivered before the monitor's Down.
                await_exit(&mut ctx, s).await;
                s
            }
        };
        // The target handles its mailbox in order: a trapped signal is
        // forwarded before the call is answered.
        match ctx.call(p, "ping", DEADLINE).await {
            Err(CallError::Exit(_)) => Outcome::Died(down_reason(&mut ctx, mref).await),
            Err(e) => panic!("call failed: {e}"),
            Ok(_) => match ctx.try_recv() {
                None => Outcome::Ignored,
                Some(env) => {
                    let (from, r): (Pid, ExitReason) = env.take().unwrap();
                    assert_eq!(from, sender, "the Exit message names the sender");
                    Outcome::Trapped(r)
                }
            },
        }
    })
    .await
}

macro_rules! cell {
    ($(#[doc = $doc:literal])* $name:ident: $how:expr, $reason:expr, trap = $trap:expr => $outcome:expr) => {
        $(#[doc = $doc])*
        #[tokio::test]
        async fn $name() {
            assert_eq!(signal($how, $reason, $trap).await, $outcome);
        }
    };
}

use ExitReason::{Kill, Killed, Normal, Shutdown};
use How::{Explicit, Linked};
use Outcome::{Died, Ignored, Trapped};

fn err() -> ExitReason {
    ExitReason::Error("boom".into())
}

cell!(
    /// link.table: `normal` from a linked process's exit is ignored by a
    /// process that does not trap exits.
    linked_normal_is_ignored_without_trap: Linked, Normal, trap = false => Ignored
);
cell!(
    /// link.table: `normal` from a linked process's exit becomes an `Exit`
    /// message for a trapping process.
    linked_normal_is_a_message_with_trap: Linked, Normal, trap = true => Trapped(Normal)
);
cell!(
    /// link.table: `exit(P, normal)` is ignored by a non-trapping P.
    explicit_normal_is_ignored_without_trap: Explicit, Normal, trap = false => Ignored
);
cell!(
    /// link.table: `exit(P, normal)` becomes an `Exit` message for a
    /// trapping P.
    explicit_normal_is_a_message_with_trap: Explicit, Normal, trap = true => Trapped(Normal)
);
cell!(
    /// link.kill: `exit(P, kill)` kills a non-trapping P with reason `killed`.
    explicit_kill_kills_as_killed_without_trap: Explicit, Kill, trap = false => Died(Killed)
);
cell!(
    /// link.kill: `exit(P, kill)` cannot be trapped: P dies `killed`.
    explicit_kill_is_untrappable: Explicit, Kill, trap = true => Died(Killed)
);
cell!(
    /// link.kill-reason: a linked process that exits with reason `kill`
    /// kills a non-trapping neighbour with reason `kill` (not `killed`).
    linked_kill_reason_kills_as_kill_without_trap: Linked, Kill, trap = false => Died(Kill)
);
cell!(
    /// link.kill-reason: a linked process's `kill` exit reason is an
    /// ordinary, trappable reason.
    linked_kill_reason_is_trappable: Linked, Kill, trap = true => Trapped(Kill)
);
cell!(
    /// link.table: any other reason from a linked process kills a
    /// non-trapping process with that reason.
    linked_error_kills_without_trap: Linked, err(), trap = false => Died(err())
);
cell!(
    /// link.table: any other reason from a linked process is a message for
    /// a trapping process.
    linked_error_is_a_message_with_trap: Linked, err(), trap = true => Trapped(err())
);
cell!(
    /// link.table: `shutdown` from a linked process kills a non-trapping
    /// process with `shutdown`.
    linked_shutdown_kills_without_trap: Linked, Shutdown, trap = false => Died(Shutdown)
);
cell!(
    /// link.table: `exit(P, R)` with any other R kills a non-trapping P
    /// with R.
    explicit_error_kills_without_trap: Explicit, err(), trap = false => Died(err())
);
cell!(
    /// link.table: `exit(P, R)` with any other R is a message for a trapping P.
    explicit_error_is_a_message_with_trap: Explicit, err(), trap = true => Trapped(err())
);
cell!(
    /// link.table: `exit(P, killed)` is an ordinary reason: trappable.
    explicit_killed_reason_is_trappable: Explicit, Killed, trap = true => Trapped(Killed)
);

/// link.killed-propagates: a process killed with `exit(P, kill)` sends
/// `killed` (not `kill`) to its links: a trapping neighbour receives
/// `Exit { P, killed }`, a non-trapping neighbour dies `killed`.
#[tokio::test]
async fn kill_propagates_as_killed_to_links() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let me = ctx.pid();
        let victim = target(&ctx, false, me);
        let trapping = linked_target(&ctx, true, me, victim);
        let plain = linked_target(&ctx, false, me, victim);
        let mref = ctx.monitor(plain);
        ctx.kill(victim);
        assert_eq!(down_reason(&mut ctx, mref).await, ExitReason::Killed);
        let (from, reason): (Pid, ExitReason) =
            ctx.recv_timeout(DEADLINE).await.unwrap().take().unwrap();
        assert_eq!((from, reason), (victim, ExitReason::Killed));
        let alive: String = ctx
            .call(trapping, "ping", DEADLINE)
            .await
            .unwrap()
            .take()
            .unwrap();
        assert_eq!(alive, "alive");
    })
    .await;
}

/// link.exit-self-normal: `exit(self, normal)` terminates the caller with
/// reason `normal`, and its non-trapping links survive (a normal exit does
/// not kill them).
#[tokio::test]
async fn exit_self_normal_terminates_the_caller() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let me = ctx.pid();
        let neighbour = target(&ctx, false, me);
        let p = ctx.spawn_opts(SpawnOpts::new().link(neighbour), |mut c| async move {
            let me = c.pid();
            c.exit(me, ExitReason::Normal);
            // Dies at this await.
            c.recv().await;
            ExitReason::Error("still running after exit(self, normal)".into())
        });
        assert_eq!(await_exit(&mut ctx, p).await, ExitReason::Normal);
        let alive: String = ctx
            .call(neighbour, "ping", DEADLINE)
            .await
            .unwrap()
            .take()
            .unwrap();
        assert_eq!(alive, "alive");
    })
    .await;
}

/// link.dead-pid: linking to a dead pid without trapping exits fails with
/// `noproc` and creates no link.
#[tokio::test]
async fn link_to_dead_pid_without_trap_exit_is_an_error() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let dead = ctx.spawn(|_c| async {});
        await_exit(&mut ctx, dead).await;
        match ctx.link(dead) {
            Err(Error::NoProc { pid }) => assert_eq!(pid, dead),
            other => panic!("expected noproc, got {other:?}"),
        }
        assert!(ctx.try_recv().is_none());
    })
    .await;
}

/// link.dead-pid: linking to a dead pid while trapping exits succeeds and
/// delivers `Exit { pid, noproc }`.
#[tokio::test]
async fn link_to_dead_pid_with_trap_exit_gives_an_exit_message() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        ctx.trap_exit(true);
        let dead = ctx.spawn(|_c| async {});
        await_exit(&mut ctx, dead).await;
        ctx.link(dead).unwrap();
        assert_eq!(next_exit(&mut ctx).await, (dead, ExitReason::NoProc));
    })
    .await;
}

/// link.bidirectional: a link made by either end carries the exit of
/// either end to the other.
#[tokio::test]
async fn links_are_bidirectional() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        ctx.trap_exit(true);
        let me = ctx.pid();
        // ctx links to a; a's death reaches ctx.
        let a = target(&ctx, false, me);
        ctx.link(a).unwrap();
        ctx.exit(a, err());
        assert_eq!(next_exit(&mut ctx).await, (a, err()));
        // b links to ctx (from b's side); b's death reaches ctx.
        let b = ctx.spawn(move |c| async move {
            c.link(me).unwrap();
            ExitReason::Error("b".into())
        });
        assert_eq!(
            next_exit(&mut ctx).await,
            (b, ExitReason::Error("b".into()))
        );
    })
    .await;
}

/// link.idempotent: linking twice and unlinking once leaves no link.
#[tokio::test]
async fn links_are_idempotent_and_one_unlink_removes_them() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        ctx.trap_exit(true);
        let me = ctx.pid();
        let p = target(&ctx, false, me);
        ctx.link(p).unwrap();
        ctx.link(p).unwrap();
        ctx.unlink(p);
        ctx.exit(p, err());
        assert_eq!(await_exit(&mut ctx, p).await, err());
        assert!(
            ctx.try_recv_match(|e| matches!(e, Envelope::Exit { .. }))
                .is_none(),
            "no exit signal: the link is gone"
        );
    })
    .await;
}

/// link.panic: a panic ends the process with reason `panic: <message>`,
/// kills its non-trapping links with that reason, and leaves the runtime
/// working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_becomes_the_exit_reason_and_the_runtime_survives() {
    quiet_panics();
    let rt = node();
    let rt2 = rt.clone();
    with_ctx(&rt, |mut ctx| async move {
        let me = ctx.pid();
        let neighbour = target(&ctx, false, me);
        let neighbour_down = ctx.monitor(neighbour);
        let p_down = ctx.make_ref();
        ctx.spawn_opts(
            SpawnOpts::new().link(neighbour).monitor(me, p_down, false),
            |_c| async move {
                if true {
                    panic!("{DELIBERATE}: the process panicked");
                }
            },
        );
        let want = ExitReason::Panic(format!("{DELIBERATE}: the process panicked"));
        assert_eq!(down_reason(&mut ctx, p_down).await, want.clone());
        assert_eq!(down_reason(&mut ctx, neighbour_down).await, want);
        assert_eq!(
            want.to_string(),
            format!("panic: {DELIBERATE}: the process panicked")
        );
    })
    .await;
    // The runtime still spawns and runs processes.
    let (reason, result) = rt2.run(|_c| async { Ok::<_, String>(7u8) }).await;
    assert_eq!(reason, ExitReason::Normal);
    assert_eq!(result.unwrap().take::<u8>().unwrap(), 7);
}

/// spawn.link-atomic: `spawn_link` makes the link before the child runs, so
/// even a child that ends at once is seen with its own reason, never as
/// `noproc`.
#[tokio::test]
async fn spawn_link_is_atomic() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        ctx.trap_exit(true);
        for i in 0..100u32 {
            let child = ctx.spawn_link(move |_c| async move { ExitReason::Error(format!("{i}")) });
            assert_eq!(
                next_exit(&mut ctx).await,
                (child, ExitReason::Error(format!("{i}")))
            );
        }
    })
    .await;
}

/// spawn.monitor-atomic: `spawn_monitor` makes the monitor before the child
/// runs: the `Down` carries the child's own reason, never `noproc`.
#[tokio::test]
async fn spawn_monitor_is_atomic() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        for i in 0..100u32 {
            let (child, mref) =
                ctx.spawn_monitor(move |_c| async move { ExitReason::Error(format!("{i}")) });
            let d = ctx.wait_down(mref, Some(DEADLINE)).await.unwrap();
            assert_eq!(
                (d.pid, d.reason),
                (child, ExitReason::Error(format!("{i}")))
            );
        }
    })
    .await;
}

/// link.trap-switch: `trap_exit` can be switched off again; from then on an
/// exit signal kills the process.
#[tokio::test]
async fn trap_exit_can_be_switched_off() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let me = ctx.pid();
        let p = ctx.spawn_opts(SpawnOpts::new().trap_exit(true), move |mut c| async move {
            let first = c.recv().await;
            assert!(matches!(first, Envelope::Exit { .. }));
            c.trap_exit(false);
            c.send(me, "untrapped");
            c.recv().await;
            ExitReason::Error("survived an exit signal without trapping".into())
        });
        ctx.exit(p, err());
        let _: String = ctx.recv_timeout(DEADLINE).await.unwrap().take().unwrap();
        ctx.exit(p, ExitReason::Error("second".into()));
        assert_eq!(
            await_exit(&mut ctx, p).await,
            ExitReason::Error("second".into())
        );
    })
    .await;
}

/// diff.cooperative: a process that computes without awaiting cannot be
/// stopped in the middle; a kill takes effect at its next `.await`, and
/// nothing after that await runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_never_yields_dies_at_its_next_await() {
    let rt = node();
    let spinning = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicUsize::new(0));
    let (s, r, p) = (spinning.clone(), release.clone(), progress.clone());
    let busy = rt.spawn(move |_c| async move {
        s.store(true, Ordering::SeqCst);
        while !r.load(Ordering::SeqCst) {
            std::hint::spin_loop();
        }
        p.store(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        p.store(2, Ordering::SeqCst);
    });
    wait_until("the process spins", DEADLINE, || {
        spinning.load(Ordering::SeqCst)
    })
    .await;
    let rt2 = rt.clone();
    with_ctx(&rt, move |mut ctx| async move {
        let mref = ctx.monitor(busy);
        ctx.kill(busy);
        assert!(rt2.is_alive(busy), "still running its loop");
        release.store(true, Ordering::SeqCst);
        assert_eq!(down_reason(&mut ctx, mref).await, ExitReason::Killed);
    })
    .await;
    assert_eq!(progress.load(Ordering::SeqCst), 1, "died at the await");
}

/// dist.incarnation: a pid of a node this runtime does not know (such as a
/// pid of an earlier incarnation of a restarted node) behaves as a dead
/// process: monitor gives `noproc`, link gives `noproc` (an error, or an
/// `Exit` message when trapping), a send is dropped silently.
#[tokio::test]
async fn a_pid_of_an_unknown_node_behaves_as_dead() {
    let rt = node();
    with_ctx(&rt, |mut ctx| async move {
        let old = Pid::new(pool_proto::NodeId::random(), 42);
        let mref = ctx.monitor(old);
        assert_eq!(down_reason(&mut ctx, mref).await, ExitReason::NoProc);
        assert!(matches!(ctx.link(old), Err(Error::NoProc { pid }) if pid == old));
        ctx.trap_exit(true);
        ctx.link(old).unwrap();
        assert_eq!(next_exit(&mut ctx).await, (old, ExitReason::NoProc));
        ctx.send(old, "dropped");
        assert!(ctx.try_recv().is_none());
    })
    .await;
}
