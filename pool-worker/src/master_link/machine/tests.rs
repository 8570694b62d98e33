use super::*;

const MIN: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn worker() -> LinkMachine {
    LinkMachine::new(NodeKind::Worker, MIN, MAX)
}

/// The wait a `WaitUntil` asks for, from `now`.
fn wait_of(a: Action, now: Instant) -> Duration {
    match a {
        Action::WaitUntil(t) => t - now,
        other => panic!("expected a wait, got {other:?}"),
    }
}

/// A first join without a fence: dial (not a rejoin), then joined, first
/// time; requests are sent from then on, and wait before.
#[test]
fn a_plain_first_join() {
    let mut m = worker();
    assert_eq!(m.start(), Action::Connect { rejoin: false });
    assert_eq!(m.status(), LinkStatus::Down);
    assert_eq!(m.status().policy(), RequestPolicy::Wait);
    assert_eq!(m.on_welcome(false), Action::Joined { first: true });
    assert_eq!(m.status(), LinkStatus::Up);
    assert_eq!(m.status().policy(), RequestPolicy::Send);
    assert_eq!(m.next_deadline(), None);
}

/// A permanent failure (duplicate name, wrong cookie) before the first
/// join gives up at once; requests then fail instead of waiting.
#[test]
fn a_permanent_failure_before_joining_gives_up() {
    let mut m = worker();
    m.start();
    assert_eq!(
        m.on_failed(Failure::Permanent, Instant::now(), 1.0),
        Action::GiveUp
    );
    assert_eq!(m.phase(), Phase::GaveUp);
    assert_eq!(m.status().policy(), RequestPolicy::FailStopped);
    assert_eq!(m.next_deadline(), None);
    assert_eq!(m.tick(Instant::now() + MAX), None);
}

/// A worker that cannot reach the master keeps trying: each wait is the
/// current step times the jitter, the step doubles up to the cap, and a
/// tick before the deadline does nothing.
#[test]
fn a_worker_retries_with_capped_doubling_back_off() {
    let mut m = worker();
    let t0 = Instant::now();
    m.start();
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..9 {
        let w = wait_of(m.on_failed(Failure::Transient, now, 1.0), now);
        waits.push(w);
        assert_eq!(m.next_deadline(), Some(now + w));
        assert_eq!(m.tick(now + w - ms(1)), None, "dialed early");
        now += w;
        assert_eq!(m.tick(now), Some(Action::Connect { rejoin: false }));
    }
    assert_eq!(
        waits,
        [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000].map(ms)
    );
}

/// Jitter scales each wait to between half and all of the step, and a
/// value outside that range is clamped to it.
#[test]
fn jitter_is_half_to_full_of_the_step() {
    let now = Instant::now();
    for (jitter, expect) in [(0.5, 50), (0.75, 75), (1.0, 100), (0.0, 50), (7.0, 100)] {
        let mut m = worker();
        m.start();
        let w = wait_of(m.on_failed(Failure::Transient, now, jitter), now);
        assert_eq!(w, ms(expect), "jitter {jitter}");
    }
}

/// Losing a joined link waits the first step again (the back-off restarts
/// after a success), then rejoins; once joined, not even a permanent
/// failure makes the link give up.
#[test]
fn a_lost_link_rejoins_from_the_first_step() {
    let mut m = worker();
    let t0 = Instant::now();
    m.start();
    wait_of(m.on_failed(Failure::Transient, t0, 1.0), t0);
    m.tick(t0 + MIN);
    wait_of(m.on_failed(Failure::Transient, t0, 1.0), t0);
    m.tick(t0 + MAX);
    assert_eq!(m.on_welcome(false), Action::Joined { first: true });
    let t1 = t0 + Duration::from_secs(60);
    assert_eq!(wait_of(m.on_lost(t1, 1.0), t1), MIN);
    assert_eq!(m.status().policy(), RequestPolicy::Wait);
    assert_eq!(m.tick(t1 + MIN), Some(Action::Connect { rejoin: true }));
    assert_eq!(
        wait_of(m.on_failed(Failure::Permanent, t1, 1.0), t1),
        2 * MIN
    );
    assert_eq!(m.tick(t1 + 2 * MIN), Some(Action::Connect { rejoin: true }));
    assert_eq!(m.on_welcome(false), Action::Joined { first: false });
}

/// A hidden node (poolctl) gives up on its first failure of any kind
/// before it joined; once joined, it reconnects like a worker.
#[test]
fn a_hidden_node_gives_up_only_before_its_first_join() {
    let now = Instant::now();
    let mut m = LinkMachine::new(NodeKind::Hidden, MIN, MAX);
    m.start();
    assert_eq!(m.on_failed(Failure::Transient, now, 1.0), Action::GiveUp);
    let mut m = LinkMachine::new(NodeKind::Hidden, MIN, MAX);
    m.start();
    m.on_welcome(false);
    m.on_lost(now, 1.0);
    m.tick(now + MIN);
    assert_eq!(
        wait_of(m.on_failed(Failure::Transient, now, 1.0), now),
        2 * MIN
    );
}

/// A Welcome with a fence: fence first; meanwhile requests fail at once
/// (not wait); Ready makes the link up. A failed fence or Ready waits and
/// dials again as a rejoin when the node had joined before.
#[test]
fn a_fenced_rejoin_is_up_only_after_ready() {
    let now = Instant::now();
    let mut m = worker();
    m.start();
    m.on_welcome(false);
    m.on_lost(now, 1.0);
    assert_eq!(m.tick(now + MIN), Some(Action::Connect { rejoin: true }));
    assert_eq!(m.on_welcome(true), Action::Fence);
    assert_eq!(m.status(), LinkStatus::Fencing);
    assert_eq!(m.status().policy(), RequestPolicy::FailFencing);
    assert_eq!(
        wait_of(m.on_failed(Failure::Transient, now, 1.0), now),
        2 * MIN
    );
    assert_eq!(
        m.tick(now + 2 * MIN),
        Some(Action::Connect { rejoin: true })
    );
    assert_eq!(m.on_welcome(true), Action::Fence);
    assert_eq!(m.on_ready(), Action::Joined { first: false });
    assert_eq!(m.status(), LinkStatus::Up);
}

/// A first join can be fenced too (the master kept this id as declared
/// down): joined counts as the first once Ready is answered.
#[test]
fn a_fenced_first_join_is_the_first_join() {
    let mut m = worker();
    m.start();
    assert_eq!(m.on_welcome(true), Action::Fence);
    assert_eq!(m.on_ready(), Action::Joined { first: true });
}

/// Once the fence is done, requests wait for the link instead of failing
/// (the master may start roots here before `Ready`'s answer arrives);
/// `Ready`'s answer makes the link up.
#[test]
fn the_fencing_flag_is_cleared_before_ready_is_sent() {
    let mut m = worker();
    m.start();
    assert_eq!(m.on_welcome(true), Action::Fence);
    assert_eq!(m.status().policy(), RequestPolicy::FailFencing);
    m.on_fenced();
    assert_eq!(m.phase(), Phase::Readying);
    assert_eq!(m.status().policy(), RequestPolicy::Wait);
    assert_eq!(m.on_ready(), Action::Joined { first: true });
    assert_eq!(m.status().policy(), RequestPolicy::Send);
}
