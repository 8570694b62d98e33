//! Restart intensity: the per-supervisor window that decides when a
//! supervisor gives up (OTP.md §1.6). Pure state machine; the caller passes
//! the time in, so tests drive it without a clock.
//!
//! # The precise-time rule
//!
//! OTP stamps restarts in whole seconds, so a previous restart `e` seconds
//! old is always counted if `e < period`, never if `e >= period + 1`, and in
//! between it depends on where the second boundaries fall. We keep exact
//! [`Instant`]s and count a previous restart **iff `e < period`**: that is
//! the tightest rule meeting both guarantees, and it has no
//! timing-dependent band (a restart exactly `period` old is not counted).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use pool_proto::{ExitReason, SupervisorSpec};

/// How the exit reason of a supervisor that gave up begins
/// ([`RestartIntensity::give_up_reason`]).
pub const GAVE_UP: &str = "restart intensity exceeded";

/// Whether `reason` is the exit reason of a supervisor that gave up (its
/// restart intensity was exceeded).
///
/// ```
/// use pool_proto::ExitReason;
/// use supervisor::supervisor::intensity::gave_up;
///
/// assert!(gave_up(&ExitReason::ShutdownWith(
///     "restart intensity exceeded: 2 restarts in 5 s, intensity 1".into()
/// )));
/// assert!(!gave_up(&ExitReason::Shutdown));
/// ```
pub fn gave_up(reason: &ExitReason) -> bool {
    matches!(reason, ExitReason::ShutdownWith(t) if t.starts_with(GAVE_UP))
}

/// The restart window of one supervisor: at most `intensity` restarts within
/// `period`, shared by all its children.
///
/// Call [`add_restart`](Self::add_restart) **before** every restart attempt,
/// including each retry of a restart whose start failed (OTP.md §1.7).
/// Restarts asked for through the API (`restart_child`) and stops
/// (`terminate_child`) are not counted, and neither are exits that do not lead
/// to a restart (a transient child exiting normally, any temporary exit).
///
/// ```
/// use std::time::{Duration, Instant};
/// use supervisor::supervisor::intensity::RestartIntensity;
///
/// // intensity 1, period 5 s (OTP's defaults)
/// let mut window = RestartIntensity::new(1, Duration::from_secs(5));
/// let t0 = Instant::now();
/// assert!(window.add_restart(t0)); // first restart: allowed
/// assert!(!window.add_restart(t0 + Duration::from_secs(1))); // second within 5 s: give up
/// ```
#[derive(Clone, Debug)]
pub struct RestartIntensity {
    /// How many restarts are allowed within `period` (OTP `intensity`).
    intensity: u32,
    /// The sliding window (OTP `period`).
    period: Duration,
    /// When the restarts still inside the window happened, oldest first.
    /// Pruned on every call, so it never holds more than `intensity + 1`.
    recent: VecDeque<Instant>,
    /// Every restart ever counted, for the `restarts` figure of
    /// `poolctl tree show` (a supervisor's restarts are all it made).
    total: u64,
}

impl RestartIntensity {
    /// A window allowing `intensity` restarts within `period`.
    ///
    /// A zero `period` is refused by spec validation
    /// ([`validate_flags`](pool_proto::tree::validate_flags)); if
    /// one arrives anyway, no previous restart is ever counted.
    pub fn new(intensity: u32, period: Duration) -> Self {
        RestartIntensity {
            intensity,
            period,
            recent: VecDeque::new(),
            total: 0,
        }
    }

    /// The window of a supervisor spec (its `intensity` and `period`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use pool_proto::{Strategy, SupervisorSpec};
    /// use supervisor::supervisor::intensity::RestartIntensity;
    ///
    /// let w = RestartIntensity::from_spec(&SupervisorSpec::new("root", Strategy::OneForOne));
    /// assert_eq!((w.intensity(), w.period()), (1, Duration::from_secs(5)));
    /// ```
    pub fn from_spec(spec: &SupervisorSpec) -> Self {
        Self::new(spec.intensity, spec.period.0)
    }

    /// The allowed number of restarts within [`period`](Self::period).
    pub fn intensity(&self) -> u32 {
        self.intensity
    }

    /// The window length.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Records a restart attempt at `now` and says whether it may go ahead.
    ///
    /// Returns `false` when the limit is exceeded: counting this attempt,
    /// more than `intensity` restarts fall within `period`. The supervisor
    /// must then not restart the child, terminate its remaining children in
    /// reverse start order and exit with `shutdown` (OTP.md §1.6). With
    /// `intensity == 0` the first attempt already returns `false`.
    ///
    /// A previous restart counts iff it is less than `period` older than
    /// `now` (see the module docs). `now` should not go backwards; if it
    /// does, the earlier stamps count as age zero.
    pub fn add_restart(&mut self, now: Instant) -> bool {
        // OTP: restarts = [now | [t || t <- restarts, inPeriod(t, now)]],
        // then compare the length with intensity. The new stamp is recorded
        // even when giving up, as OTP does; the supervisor dies anyway.
        self.prune(now);
        self.recent.push_back(now);
        self.total += 1;
        self.recent.len() <= self.intensity as usize
    }

    /// How many restarts recorded so far are still inside the window at
    /// `now` (they would count against the next attempt).
    pub fn restarts_in_window(&self, now: Instant) -> usize {
        self.recent
            .iter()
            .filter(|&&t| self.in_window(t, now))
            .count()
    }

    /// The exit reason of a supervisor that gave up at `now`, in words
    /// users need (OTP exits plain `shutdown`): a `{shutdown, _}`, so that
    /// a parent treats it exactly as OTP's `shutdown` (§1.4: clean for a
    /// transient child, restarted if permanent).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use pool_proto::ExitReason;
    /// use supervisor::supervisor::intensity::RestartIntensity;
    ///
    /// let mut w = RestartIntensity::new(1, Duration::from_secs(5));
    /// let t0 = Instant::now();
    /// w.add_restart(t0);
    /// assert!(!w.add_restart(t0 + Duration::from_secs(1)));
    /// assert_eq!(
    ///     w.give_up_reason(t0 + Duration::from_secs(1)),
    ///     ExitReason::ShutdownWith("restart intensity exceeded: 2 restarts in 5 s, intensity 1".into())
    /// );
    /// ```
    pub fn give_up_reason(&self, now: Instant) -> ExitReason {
        let n = self.restarts_in_window(now);
        let secs = self.period.as_secs_f64();
        let restarts = if n == 1 { "restart" } else { "restarts" };
        ExitReason::ShutdownWith(format!(
            "{GAVE_UP}: {n} {restarts} in {secs} s, intensity {}",
            self.intensity
        ))
    }

    /// Every restart attempt counted since this window was created.
    pub fn total_restarts(&self) -> u64 {
        self.total
    }

    /// Whether a restart at `t` still counts at `now`.
    fn in_window(&self, t: Instant, now: Instant) -> bool {
        now.saturating_duration_since(t) < self.period
    }

    /// Drops the stamps that no longer count. Stamps are in time order, so
    /// the expired ones are at the front.
    fn prune(&mut self, now: Instant) {
        while let Some(&oldest) = self.recent.front() {
            if self.in_window(oldest, now) {
                break;
            }
            self.recent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests;
