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
//! Room for more: another deadline (a lease the master grants, which runs
//! out while the link is down) is one more field, one more candidate in
//! [`LinkMachine::next_deadline`] and one more case in
//! [`LinkMachine::tick`].

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
