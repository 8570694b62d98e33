//! The master link's decisions as a pure state machine (STYLE.md point 15,
//! in the shape of pool-master's `failure.rs`): when to dial, whether a join
//! is a rejoin, whether to fence before counting as joined, how long to wait
//! before the next attempt (exponential back-off, capped and jittered), when
//! to give up, and what a request to the master does meanwhile.
//!
//! Time and jitter are arguments. The async shell (`master_link.rs`) does
//! the I/O the returned [`Action`] asks for, sleeps until
//! [`LinkMachine::next_deadline`], and feeds every outcome back.
//!
//! ```text
//!                 start
//!                   │
//!            ┌──> Connecting ── welcome, fenced ──> Fencing
//!            │      │    │                           │   │
//!    timer   │      │    └── welcome ──> Up <─ ready ┘   │
//!            │      │                    │               │
//!            └── Waiting <──── lost ─────┘               │
//!                   ^ └───────── failed ─────────────────┘ (and from Connecting)
//!                   │
//!     failed for good before the first join (or any failure of a hidden
//!     node before its first join) ──> GaveUp
//! ```
//!
//! [`Lease`] is the second machine here: the worker's lease on its master
//! session (docs/semantics.md, "The worker's lease"). It runs beside the
//! link's, whatever the link's phase: a partition may leave the
//! connection silent but open, or closed with every redial failing.
//!
//! ```text
//!   Off ── start (joined) ──> Unarmed ── first ack ──┐
//!    ^                                               v
//!    │                         Held ── lease out ──> Asking ──┬── a peer heard the master
//!    │                         ^  ^                   │       │   an interval more recently,
//!    │                         │  └── ack renews ─────┤       │   or no peer answered ──> CutOff
//!    └──── welcome ────────────┘                      │       └── otherwise, or no peers
//!                                                     │           ──> KeptRunning
//!                                   ack renews <──────┘  (KeptRunning too)
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use pool_proto::NodeKind;

#[cfg(test)]
mod tests;

/// Where the link is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Dialing, handshaking and joining (`rejoin`: this incarnation was
    /// joined before).
    Connecting {
        /// The Join says so.
        rejoin: bool,
    },
    /// The master declared this incarnation down while it was cut off: the
    /// node fences, then sends `Ready`.
    Fencing,
    /// Fenced; `Ready` is on its way. Requests wait (they no longer fail):
    /// the master starts application roots here as soon as it handles
    /// `Ready`, before its answer arrives, and their children's placements
    /// must not fail with "this node is fencing".
    Readying,
    /// Joined (and fenced, if it had to).
    Up,
    /// Waiting to dial again.
    Waiting {
        /// When.
        until: Instant,
    },
    /// Stopped trying (the first join failed for good).
    GaveUp,
}

/// What the shell does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Dial the master, handshake, send `Join` with `rejoin`.
    Connect {
        /// The Join's `rejoin`.
        rejoin: bool,
    },
    /// Fence (through the node task), then send `Ready`.
    Fence,
    /// The link is up: report until it closes. `first`: the first join of
    /// this incarnation (the node's start waits for it).
    Joined {
        /// True on the first join.
        first: bool,
    },
    /// Sleep until then, and [`tick`](LinkMachine::tick).
    WaitUntil(Instant),
    /// Give up: the node's start fails with the last error.
    GiveUp,
}

/// How a join attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Retrying may help (unreachable, timed out, closed).
    Transient,
    /// Retrying cannot help (duplicate name, wrong cookie, version or TLS
    /// mismatch, refused).
    Permanent,
}

/// Where the link is, as a request to the master sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkStatus {
    /// Not joined: connecting or waiting to.
    Down,
    /// Fencing before counting as joined.
    Fencing,
    /// Joined.
    Up,
    /// The link ended (the node stops, or gave up joining).
    Stopped,
}

/// What a request to the master does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestPolicy {
    /// Send it now.
    Send,
    /// Wait (up to the request timeout) for the link to come up: a short
    /// master restart is invisible to callers.
    Wait,
    /// Fail at once: a stale supervisor that asks the master to place a
    /// restart while this node fences must not wait for a link that comes
    /// up only once that very supervisor has stopped.
    FailFencing,
    /// Fail at once: the node is stopping.
    FailStopped,
}

impl LinkStatus {
    /// What a request made now does.
    pub(crate) fn policy(self) -> RequestPolicy {
        match self {
            LinkStatus::Up => RequestPolicy::Send,
            LinkStatus::Down => RequestPolicy::Wait,
            LinkStatus::Fencing => RequestPolicy::FailFencing,
            LinkStatus::Stopped => RequestPolicy::FailStopped,
        }
    }
}

/// The jitter range: a wait is this share of the current back-off step,
/// so that nodes cut off together do not all dial at the same instant.
pub(crate) const JITTER: std::ops::RangeInclusive<f64> = 0.5..=1.0;

/// The link's state: its phase and back-off.
///
/// ```text
/// let mut m = LinkMachine::new(NodeKind::Worker, 100ms, 5s);
/// m.start()                         -> Connect { rejoin: false }
/// m.on_failed(Transient, t0, 1.0)   -> WaitUntil(t0 + 100ms)
/// m.tick(t0 + 100ms)                -> Some(Connect { rejoin: false })
/// m.on_welcome(false)               -> Joined { first: true }
/// m.on_lost(t1, 0.5)                -> WaitUntil(t1 + 50ms)
/// ```
#[derive(Clone, Debug)]
pub(crate) struct LinkMachine {
    /// Worker or hidden: a hidden node (a client) gives up on its first
    /// failed join instead of waiting for a master that is not there.
    kind: NodeKind,
    /// The first back-off step (after a success, back to it).
    min: Duration,
    /// The largest back-off step.
    max: Duration,
    /// The next back-off step.
    step: Duration,
    /// Joined at least once: a reconnect is a rejoin, and no failure makes
    /// it give up.
    joined: bool,
    /// Where the link is.
    phase: Phase,
}

impl LinkMachine {
    /// A link that has not dialed yet, with back-off steps from `min` to
    /// `max`.
    pub(crate) fn new(kind: NodeKind, min: Duration, max: Duration) -> Self {
        LinkMachine {
            kind,
            min,
            max: max.max(min),
            step: min,
            joined: false,
            phase: Phase::Connecting { rejoin: false },
        }
    }

    /// The first action: dial.
    pub(crate) fn start(&mut self) -> Action {
        self.connect()
    }

    fn connect(&mut self) -> Action {
        let rejoin = self.joined;
        self.phase = Phase::Connecting { rejoin };
        Action::Connect { rejoin }
    }

    /// The master answered the Join with a Welcome; `fenced` when it
    /// carries a fence.
    pub(crate) fn on_welcome(&mut self, fenced: bool) -> Action {
        if fenced {
            self.phase = Phase::Fencing;
            Action::Fence
        } else {
            self.up()
        }
    }

    /// The node finished fencing; `Ready` is sent next. From now on
    /// requests wait for the link instead of failing (the fencing flag is
    /// cleared before `Ready` leaves).
    pub(crate) fn on_fenced(&mut self) {
        if self.phase == Phase::Fencing {
            self.phase = Phase::Readying;
        }
    }

    /// Fenced, and the master answered `Ready`.
    pub(crate) fn on_ready(&mut self) -> Action {
        self.up()
    }

    fn up(&mut self) -> Action {
        let first = !self.joined;
        self.joined = true;
        self.step = self.min;
        self.phase = Phase::Up;
        Action::Joined { first }
    }

    /// Dialing, the handshake, the Join or the fence failed at `now`;
    /// `jitter` is drawn from [`JITTER`].
    pub(crate) fn on_failed(&mut self, failure: Failure, now: Instant, jitter: f64) -> Action {
        let give_up =
            !self.joined && (failure == Failure::Permanent || self.kind == NodeKind::Hidden);
        if give_up {
            self.phase = Phase::GaveUp;
            return Action::GiveUp;
        }
        self.wait(now, jitter)
    }

    /// The joined link closed at `now` (processes keep running; dial
    /// again after a back-off).
    pub(crate) fn on_lost(&mut self, now: Instant, jitter: f64) -> Action {
        self.wait(now, jitter)
    }

    fn wait(&mut self, now: Instant, jitter: f64) -> Action {
        let share = jitter.clamp(*JITTER.start(), *JITTER.end());
        let until = now + self.step.mul_f64(share);
        self.step = (self.step * 2).min(self.max);
        self.phase = Phase::Waiting { until };
        Action::WaitUntil(until)
    }

    /// Time passed: dial once the wait is over.
    pub(crate) fn tick(&mut self, now: Instant) -> Option<Action> {
        match self.phase {
            Phase::Waiting { until } if now >= until => Some(self.connect()),
            _ => None,
        }
    }

    /// When [`tick`](Self::tick) has something to do, if ever.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting { until } => Some(until),
            _ => None,
        }
    }

    /// Where the link is.
    #[cfg(test)]
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Where the link is, as requests see it.
    pub(crate) fn status(&self) -> LinkStatus {
        match self.phase {
            Phase::Connecting { .. } | Phase::Waiting { .. } | Phase::Readying => LinkStatus::Down,
            Phase::Fencing => LinkStatus::Fencing,
            Phase::Up => LinkStatus::Up,
            Phase::GaveUp => LinkStatus::Stopped,
        }
    }
}

/// Reports whose send time is remembered until acknowledged: an ack for
/// an older one finds nothing and renews nothing.
const MAX_UNACKED: usize = 256;

/// The lease's length for a master with `node_timeout` and a report
/// `interval`: half the node timeout, and never more than the node timeout
/// less two intervals (one to ask the peers, one to stop the work), so the
/// work here has stopped before the master can declare this node down
/// and restart it elsewhere. At least one interval.
pub(crate) fn lease_length(node_timeout: Duration, interval: Duration) -> Duration {
    (node_timeout / 2)
        .min(node_timeout.saturating_sub(interval * 2))
        .max(interval)
}

/// What the lease asks of the shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaseAction {
    /// The lease ran out: ask every live worker peer `MasterSeen`, tell
    /// the machine how many were asked ([`Lease::asked`]) and feed it the
    /// answers until `until`.
    Ask {
        /// When the answers stop counting.
        until: Instant,
    },
    /// This node is the one cut off: stop the supervised work it hosts
    /// at once and drop the master session (rejoin when it is reachable).
    StopWork,
    /// The master is down or paused for everyone (or there is no peer to
    /// ask): keep running and keep reconnecting.
    KeepRunning,
}

/// Where the lease is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LeaseState {
    /// No master session to hold a lease on (not joined yet, or joining).
    Off,
    /// A session, but the master has not acknowledged a report in it yet:
    /// no lease until it does (a master that does not acknowledge
    /// reports, as one before protocol version 2 did, grants none).
    Unarmed,
    /// Held: it runs out at the send time of the last acknowledged report
    /// plus the lease's length.
    Held,
    /// Ran out; asking the peers until `until`.
    Asking {
        /// When the answers stop counting.
        until: Instant,
        /// How many peers were asked (`None`: not told yet).
        asked: Option<usize>,
        /// Their answers so far (`heard_ms_ago`).
        answers: Vec<Option<u64>>,
    },
    /// Decided: cut off, the work was stopped. Until the next join.
    CutOff,
    /// Decided: the master is gone for everyone. Renewed by an ack.
    KeptRunning,
}

/// The worker's lease on its master session (see the module docs and
/// docs/semantics.md). Pure: time is an argument.
#[derive(Clone, Debug)]
pub(crate) struct Lease {
    /// How long after the send time of the last acknowledged report the
    /// lease runs out ([`lease_length`]).
    length: Duration,
    /// One report interval: how long the peers have to answer, and the
    /// margin by which a peer must have heard the master more recently.
    interval: Duration,
    /// Send times of the reports not acknowledged yet, oldest first.
    sent: VecDeque<(u64, Instant)>,
    /// Send time of the last acknowledged report (or of the Join or Ready
    /// that made the session).
    acked: Option<Instant>,
    /// Where the lease is.
    state: LeaseState,
}

impl Default for Lease {
    fn default() -> Self {
        Lease {
            length: Duration::ZERO,
            interval: Duration::ZERO,
            sent: VecDeque::new(),
            acked: None,
            state: LeaseState::Off,
        }
    }
}

impl Lease {
    /// A session began (joined, and fenced if it had to): the master heard
    /// this node at `heard` (when the Join or Ready it answered was sent).
    pub(crate) fn start(&mut self, heard: Instant, node_timeout: Duration, interval: Duration) {
        self.length = lease_length(node_timeout, interval);
        self.interval = interval;
        self.sent.clear();
        self.acked = Some(heard);
        self.state = LeaseState::Unarmed;
    }

    /// A Welcome arrived: no lease until the session is up (a fence may
    /// take a while, and stops what it must by itself).
    pub(crate) fn pause(&mut self) {
        self.state = LeaseState::Off;
        self.sent.clear();
    }

    /// Report `seq` was sent at `now`.
    pub(crate) fn on_sent(&mut self, seq: u64, now: Instant) {
        if self.state == LeaseState::Off {
            return;
        }
        if self.sent.len() >= MAX_UNACKED {
            self.sent.pop_front();
        }
        self.sent.push_back((seq, now));
    }

    /// The master acknowledged report `seq` (received at `now`): the lease
    /// runs from that report's send time. It renews a lease that ran out
    /// only if that send time is recent enough (a late ack of an old
    /// report does not); after a cut off it changes nothing.
    pub(crate) fn on_ack(&mut self, seq: u64, now: Instant) {
        let Some(pos) = self.sent.iter().position(|(s, _)| *s == seq) else {
            return;
        };
        let (_, at) = self.sent[pos];
        self.sent.drain(..=pos);
        if matches!(self.state, LeaseState::Off | LeaseState::CutOff) {
            return;
        }
        if self.acked.is_none_or(|a| at > a) {
            self.acked = Some(at);
        }
        if self.state == LeaseState::Unarmed
            || (self.state != LeaseState::Held && now < self.expiry().unwrap_or(now))
        {
            self.state = LeaseState::Held;
        }
    }

    /// When the held lease runs out.
    fn expiry(&self) -> Option<Instant> {
        self.acked.map(|a| a + self.length)
    }

    /// Whether the master may still count on this node at `now`: false
    /// once the lease ran out unrenewed (asking the peers, cut off, or past
    /// its expiry before a tick noticed, as after this node was stopped).
    /// A request the master sent before it gave this node up, read only
    /// now, must not start anything: the master may have placed the same
    /// work elsewhere already.
    pub(crate) fn is_current(&self, now: Instant) -> bool {
        match self.state {
            LeaseState::Off | LeaseState::Unarmed => true,
            LeaseState::Asking { .. } | LeaseState::CutOff => false,
            LeaseState::Held | LeaseState::KeptRunning => self.expiry().is_none_or(|e| now < e),
        }
    }

    /// How long ago the master last acknowledged a report of ours (what a
    /// peer asking `MasterSeen` is told); `None` without a session.
    pub(crate) fn heard_ms_ago(&self, now: Instant) -> Option<u64> {
        match self.state {
            LeaseState::Off | LeaseState::Unarmed | LeaseState::CutOff => None,
            _ => self
                .acked
                .map(|a| now.saturating_duration_since(a).as_millis() as u64),
        }
    }

    /// When [`tick`](Self::tick) has something to do, if ever.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            LeaseState::Held => self.expiry(),
            LeaseState::Asking { until, .. } => Some(*until),
            _ => None,
        }
    }

    /// Time passed: the lease runs out (ask the peers), or the answers'
    /// time is up (decide).
    pub(crate) fn tick(&mut self, now: Instant) -> Option<LeaseAction> {
        match &self.state {
            LeaseState::Held if self.expiry().is_some_and(|e| now >= e) => {
                let until = now + self.interval;
                self.state = LeaseState::Asking {
                    until,
                    asked: None,
                    answers: Vec::new(),
                };
                Some(LeaseAction::Ask { until })
            }
            LeaseState::Asking { until, .. } if now >= *until => Some(self.decide(now)),
            _ => None,
        }
    }

    /// `n` peers were asked. With none to ask, the decision is at once:
    /// keep running.
    pub(crate) fn asked(&mut self, n: usize, now: Instant) -> Option<LeaseAction> {
        let LeaseState::Asking { asked, answers, .. } = &mut self.state else {
            return None;
        };
        *asked = Some(n);
        (answers.len() >= n).then(|| self.decide(now))
    }

    /// A peer answered `MasterSeen` at `now`. Answers after the asking
    /// time are ignored. A peer that heard the master more recently than
    /// we did (by [`fresher_by`](Self::fresher_by)) decides at once (cut
    /// off); the last answer
    /// decides too.
    pub(crate) fn on_answer(
        &mut self,
        heard_ms_ago: Option<u64>,
        now: Instant,
    ) -> Option<LeaseAction> {
        let ours = self.ours_ms(now);
        let margin = self.fresher_by();
        let LeaseState::Asking {
            until,
            asked,
            answers,
        } = &mut self.state
        else {
            return None;
        };
        if now >= *until {
            return None;
        }
        answers.push(heard_ms_ago);
        let fresher = heard_ms_ago.is_some_and(|h| h.saturating_add(margin) <= ours);
        let all = asked.is_some_and(|n| answers.len() >= n);
        (fresher || all).then(|| self.decide(now))
    }

    /// Milliseconds since the master last acknowledged a report of ours.
    fn ours_ms(&self, now: Instant) -> u64 {
        self.acked.map_or(u64::MAX, |a| {
            now.saturating_duration_since(a).as_millis() as u64
        })
    }

    /// The decision (docs/semantics.md, "The worker's lease").
    /// By how much more recently (ms) a peer must have heard the master
    /// than we did to show that we are the one cut off. A peer that still
    /// hears the master heard it about one interval ago; we last heard it
    /// a lease ago. Across a cut that took us all, our last acks differ by
    /// up to an interval (the reports' phases), more right after a rejoin:
    /// half the lease (at least an interval) tells the two apart with room
    /// on both sides.
    fn fresher_by(&self) -> u64 {
        (self.length / 2).max(self.interval).as_millis() as u64
    }

    fn decide(&mut self, now: Instant) -> LeaseAction {
        let LeaseState::Asking { asked, answers, .. } = &self.state else {
            return LeaseAction::KeepRunning;
        };
        let ours = self.ours_ms(now);
        let margin = self.fresher_by();
        let fresher = answers
            .iter()
            .any(|h| h.is_some_and(|h| h.saturating_add(margin) <= ours));
        // The workers we reach, ourselves included, are no more than half
        // of the live workers we know: the master (which counts the
        // workers it hears the same way) judges our side cut off, so we
        // must be the ones who stop. With no peer known there is nothing
        // to measure: keep running.
        let asked = asked.unwrap_or(0);
        let minority = asked > 0 && (answers.len() + 1) * 2 <= asked + 1;
        if fresher || minority {
            self.state = LeaseState::CutOff;
            LeaseAction::StopWork
        } else {
            self.state = LeaseState::KeptRunning;
            LeaseAction::KeepRunning
        }
    }

    /// Where the lease is.
    #[cfg(test)]
    pub(crate) fn state(&self) -> &LeaseState {
        &self.state
    }
}
