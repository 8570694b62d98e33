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

// ----- the lease ------------------------------------------------------------

/// Node timeout 2 s, reports every 200 ms: a 1 s lease.
const NODE_TIMEOUT: Duration = Duration::from_secs(2);
const EVERY: Duration = Duration::from_millis(200);

/// A lease started at `t0`, with reports 1..=n sent every interval after
/// it and all acknowledged; returns the lease and the last send time.
fn held(t0: Instant, n: u64) -> (Lease, Instant) {
    let mut l = Lease::default();
    l.start(t0, NODE_TIMEOUT, EVERY);
    let mut at = t0;
    for seq in 1..=n {
        at = t0 + EVERY * seq as u32;
        l.on_sent(seq, at);
        l.on_ack(seq, at + ms(5));
    }
    (l, at)
}

/// The length: half the node timeout, below the node timeout less two
/// intervals, at least one interval.
#[test]
fn the_lease_is_half_the_node_timeout_and_leaves_room_to_stop() {
    assert_eq!(lease_length(NODE_TIMEOUT, EVERY), ms(1000));
    assert_eq!(lease_length(ms(1000), ms(300)), ms(400));
    assert_eq!(lease_length(ms(300), ms(200)), ms(200));
    assert!(lease_length(NODE_TIMEOUT, EVERY) + EVERY < NODE_TIMEOUT - EVERY);
}

/// Acks keep the lease: it runs out one length after the send time of the
/// last acknowledged report, then the peers are asked for one interval.
#[test]
fn the_lease_runs_from_the_last_acknowledged_report() {
    let t0 = Instant::now();
    let (mut l, last) = held(t0, 3);
    assert_eq!(l.next_deadline(), Some(last + ms(1000)));
    // Sent but never acknowledged: no renewal.
    l.on_sent(4, last + EVERY);
    assert_eq!(l.tick(last + ms(999)), None);
    assert_eq!(
        l.tick(last + ms(1000)),
        Some(LeaseAction::Ask {
            until: last + ms(1200)
        })
    );
    assert_eq!(l.next_deadline(), Some(last + ms(1200)));
}

/// Cut off: a peer heard the master an interval more recently than we
/// did. The decision comes with that answer, before the asking time is up.
#[test]
fn a_peer_that_still_hears_the_master_means_we_are_cut_off() {
    let t0 = Instant::now();
    let (mut l, last) = held(t0, 1);
    let out = last + ms(1000);
    l.tick(out);
    assert_eq!(l.asked(3, out), None);
    // Another cut-off peer first: no decision yet.
    assert_eq!(l.on_answer(Some(1000), out + ms(10)), None);
    assert_eq!(
        l.on_answer(Some(50), out + ms(20)),
        Some(LeaseAction::StopWork)
    );
    assert_eq!(l.state(), &LeaseState::CutOff);
    assert_eq!(l.heard_ms_ago(out + ms(30)), None);
    assert_eq!(l.next_deadline(), None);
}

/// Cut off: peers are known but none answers within the interval.
#[test]
fn no_answer_from_known_peers_means_we_are_cut_off() {
    let t0 = Instant::now();
    let (mut l, last) = held(t0, 1);
    let out = last + ms(1000);
    l.tick(out);
    assert_eq!(l.asked(2, out), None);
    assert_eq!(l.tick(out + ms(199)), None);
    assert_eq!(l.tick(out + ms(200)), Some(LeaseAction::StopWork));
}

/// The master down (or paused) for everyone: every peer that answers
/// heard it no more recently than we did (or has no session) — keep
/// running; the last answer decides.
#[test]
fn a_master_gone_for_everyone_keeps_everything_running() {
    let t0 = Instant::now();
    let (mut l, last) = held(t0, 1);
    let out = last + ms(1000);
    l.tick(out);
    l.asked(2, out);
    // 900 ms + 500 ms margin (half the lease) > our 1010 ms: not fresher.
    assert_eq!(l.on_answer(Some(900), out + ms(10)), None);
    assert_eq!(
        l.on_answer(None, out + ms(20)),
        Some(LeaseAction::KeepRunning)
    );
    assert_eq!(l.state(), &LeaseState::KeptRunning);
}

/// Some peers answer that they lost the master too, one does not answer
/// in time: keep running (the silent one is not evidence).
#[test]
fn a_silent_peer_beside_answering_ones_keeps_everything_running() {
    let t0 = Instant::now();
    let (mut l, last) = held(t0, 1);
    let out = last + ms(1000);
    l.tick(out);
    l.asked(2, out);
    assert_eq!(l.on_answer(Some(1200), out + ms(10)), None);
    assert_eq!(l.tick(out + ms(200)), Some(LeaseAction::KeepRunning));
}

/// An even split: four workers, we reach one other and neither hears the
/// master. The master hears the other half and judges ours cut off (it
/// declares down when it hears half or more), so we must stop our work.
#[test]
fn reaching_only_half_of_the_workers_means_we_are_cut_off() {
    let t0 = Instant::now();
    let (mut l, last) = held(t0, 1);
    let out = last + ms(1000);
    l.tick(out);
    l.asked(3, out);
    assert_eq!(l.on_answer(Some(1200), out + ms(10)), None);
    assert_eq!(l.tick(out + ms(200)), Some(LeaseAction::StopWork));
}

/// No known peers: nothing to ask, keep running at once.
#[test]
fn no_peers_at_all_keeps_everything_running() {
    let t0 = Instant::now();
    let (mut l, last) = held(t0, 1);
    let out = last + ms(1000);
    l.tick(out);
    assert_eq!(l.asked(0, out), Some(LeaseAction::KeepRunning));
}

/// An answer after the asking time does not count: the decision was made
/// without it.
#[test]
fn a_late_answer_is_ignored() {
    let t0 = Instant::now();
    let (mut l, last) = held(t0, 1);
    let out = last + ms(1000);
    l.tick(out);
    l.asked(1, out);
    assert_eq!(l.tick(out + ms(200)), Some(LeaseAction::StopWork));
    assert_eq!(l.on_answer(Some(0), out + ms(250)), None);
    assert_eq!(l.state(), &LeaseState::CutOff);
}

/// An ack that arrives after the lease ran out renews it only if the
/// report it acknowledges was sent recently enough: the lease counts
/// from the send time, not from when the ack arrived. After a cut off no
/// ack changes anything.
#[test]
fn an_ack_after_expiry_renews_only_from_its_reports_send_time() {
    let t0 = Instant::now();
    let (mut l, last) = held(t0, 1);
    l.on_sent(2, last + EVERY);
    l.on_sent(3, last + ms(900));
    let out = last + ms(1000);
    l.tick(out);
    l.asked(2, out);
    // Report 2 (sent 200 ms after the last ack) acknowledged now: its
    // lease ran out at last + 1200 > now, so it renews.
    l.on_ack(2, out + ms(10));
    assert_eq!(l.state(), &LeaseState::Held);
    assert_eq!(l.next_deadline(), Some(last + ms(1200)));
    // Out again; a very late ack of an old report would not renew, a
    // recent one does.
    l.tick(last + ms(1200));
    l.on_ack(3, last + ms(1250));
    assert_eq!(l.next_deadline(), Some(last + ms(1900)));
    // Cut off: acks change nothing.
    l.tick(last + ms(1900));
    l.asked(0, last + ms(1900));
    let mut cut = l.clone();
    cut.state = LeaseState::CutOff;
    cut.on_sent(9, last + ms(1950));
    cut.on_ack(9, last + ms(1960));
    assert_eq!(cut.state(), &LeaseState::CutOff);
}

/// A late ack of a report sent long before: the lease stays run out.
#[test]
fn a_late_ack_of_an_old_report_does_not_renew() {
    let t0 = Instant::now();
    let (mut l, last) = held(t0, 1);
    l.on_sent(2, last + ms(10));
    let out = last + ms(1000);
    l.tick(out);
    l.asked(1, out);
    // Report 2's lease ran out at last + 1010, before this ack arrives.
    l.on_ack(2, out + ms(50));
    assert!(matches!(l.state(), LeaseState::Asking { .. }));
}

/// After keeping running, an ack (the paused master is back on the same
/// connection) holds the lease again; a Welcome pauses it until the
/// session is up.
#[test]
fn a_master_back_renews_the_lease_and_a_welcome_pauses_it() {
    let t0 = Instant::now();
    let (mut l, last) = held(t0, 1);
    let out = last + ms(1000);
    l.tick(out);
    l.asked(0, out);
    assert_eq!(l.state(), &LeaseState::KeptRunning);
    l.on_sent(2, out + ms(100));
    l.on_ack(2, out + ms(150));
    assert_eq!(l.state(), &LeaseState::Held);
    l.pause();
    assert_eq!(l.next_deadline(), None);
    assert_eq!(l.heard_ms_ago(out + ms(200)), None);
}

/// No lease before the master acknowledged a report of the session: a
/// master that never does (before protocol version 2) grants none, and a
/// peer asking is told nothing.
#[test]
fn no_lease_before_the_first_ack() {
    let t0 = Instant::now();
    let mut l = Lease::default();
    l.start(t0, NODE_TIMEOUT, EVERY);
    l.on_sent(1, t0 + EVERY);
    assert_eq!(l.next_deadline(), None);
    assert_eq!(l.tick(t0 + NODE_TIMEOUT * 10), None);
    assert_eq!(l.heard_ms_ago(t0 + EVERY), None);
    l.on_ack(1, t0 + NODE_TIMEOUT * 10);
    assert_eq!(l.state(), &LeaseState::Held);
}

/// A lease is current until it runs out: past its expiry a request read
/// late (this node did not run) must not start anything, even before a
/// tick noticed; asking the peers or cut off, it is not current either;
/// a new ack renews it.
#[test]
fn a_lease_past_its_expiry_is_not_current_even_before_a_tick() {
    let t0 = Instant::now();
    let mut l = Lease::default();
    assert!(l.is_current(t0), "no session: nothing to protect");
    let (mut l2, last) = held(t0, 3);
    assert!(l2.is_current(last + ms(999)));
    // The node was stopped for 5 s: no tick ran, the lease is over.
    assert!(!l2.is_current(last + ms(5000)));
    assert!(matches!(
        l2.tick(last + ms(5000)),
        Some(LeaseAction::Ask { .. })
    ));
    assert!(!l2.is_current(last + ms(5001)));
    l.start(t0, NODE_TIMEOUT, EVERY);
    assert!(l.is_current(t0 + ms(10)), "a fresh session, unarmed");
}

/// A cut that took us all, just after we rejoined: a peer's last ack is
/// 300 ms fresher than ours (more than an interval, from the reports'
/// phases and our new session) — the master is gone for it too: keep
/// running. A peer that still hears the master (its ack 150 ms old)
/// is fresher by more than half the lease: we are cut off.
#[test]
fn a_peer_a_little_fresher_across_a_common_cut_is_no_evidence() {
    let t0 = Instant::now();
    let (mut l, last) = held(t0, 1);
    let out = last + ms(1000);
    l.tick(out);
    l.asked(1, out);
    assert_eq!(
        l.on_answer(Some(710), out + ms(10)),
        Some(LeaseAction::KeepRunning)
    );
    let (mut l, last) = held(t0, 1);
    let out = last + ms(1000);
    l.tick(out);
    l.asked(1, out);
    assert_eq!(
        l.on_answer(Some(150), out + ms(10)),
        Some(LeaseAction::StopWork)
    );
}
