//! The record of a live process, shared by its own task and every sender:
//! its [`Mailbox`], its state behind a lock (links, monitors, the exit in
//! progress), and the atomics the scheduler and listings read.
//!
//! Senders push to the mailbox and, for signals, lock the state; the
//! runtime's process table holds the record (`runtime/table.rs`); the
//! process's `Ctx` holds it too. It names nothing above the mailbox, so the
//! runtime can hold it without depending on the process API.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Wake;
use std::time::Duration;

use futures_util::task::AtomicWaker;
use pool_proto::{ExitReason, NodeId, Pid, ProcStatus, Ref};
use tokio::task::AbortHandle;

use super::mailbox::{Mailbox, Push};
use crate::envelope::Envelope;

/// Scheduling state of a process, for the run-queue count: waiting for a
/// wake-up (not runnable).
pub(crate) const SCHED_IDLE: u8 = 0;
/// Woken and queued to run.
pub(crate) const SCHED_QUEUED: u8 = 1;
/// Being polled.
pub(crate) const SCHED_RUNNING: u8 = 2;
/// Being polled, and woken again meanwhile.
pub(crate) const SCHED_RUNNING_WOKEN: u8 = 3;

/// A monitor someone holds on this process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MonitorIn {
    pub(crate) mref: Ref,
    pub(crate) watcher: Pid,
    pub(crate) with_result: bool,
}

/// The mutable part of a process record, behind its lock.
#[derive(Debug, Default)]
pub(crate) struct ProcState {
    /// Set once the exit sequence has started: no new links or monitors.
    pub(crate) exiting: bool,
    /// The reason a signal asked the process to die with; it wins over
    /// whatever the function returns afterwards. Set together with
    /// [`Process::exit_pending`], which the receive path reads without
    /// this lock.
    pub(crate) pending_exit: Option<ExitReason>,
    /// Cancels the process's task (set right after spawning).
    pub(crate) abort: Option<AbortHandle>,
    /// Linked processes, local or remote.
    pub(crate) links: Vec<Pid>,
    /// Monitors others hold on this process.
    pub(crate) monitored_by: Vec<MonitorIn>,
    /// Monitors this process holds on others.
    pub(crate) monitoring: Vec<(Ref, Pid)>,
    /// Locally registered name.
    pub(crate) name: Option<String>,
    /// Monitors this process set by a local name (`monitor_name`): the
    /// name its `Down` reports, by monitor reference. Usually empty.
    pub(crate) named_monitors: Vec<(Ref, String)>,
    /// Nodes this process monitors (`monitor_node`), once per call: each
    /// entry is one `NodeDown` message when that node goes down.
    pub(crate) node_monitors: Vec<NodeId>,
}

/// A monotonic time read cheaply: `CLOCK_MONOTONIC_COARSE` (a few
/// milliseconds of resolution, no system call), enough for the ages shown
/// in listings and read once per spawn.
pub(crate) fn coarse_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass; the clock id is a
    // constant Linux supports.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) } == 0;
    if ok {
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    } else {
        Duration::ZERO
    }
}

/// Descriptive fields of a process, fixed at spawn.
#[derive(Debug)]
pub(crate) struct Meta {
    /// The function it runs (for listings).
    pub(crate) function: Cow<'static, str>,
    /// When it was spawned, on the coarse clock ([`coarse_now`]).
    pub(crate) started: Duration,
    /// What it belongs to, e.g. `app/sup/child`.
    pub(crate) owner: Option<String>,
}

/// The shared record of a live process.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) pid: Pid,
    pub(crate) mailbox: Mailbox,
    pub(crate) state: Mutex<ProcState>,
    /// Whether exit signals become messages.
    pub(crate) trap_exit: AtomicBool,
    /// Set (once, never cleared) when a signal has decided that the
    /// process dies: every await point of the process checks it before it
    /// hands over another envelope, and the task ends as soon as the body
    /// returns `Pending` with it set. The reason is in
    /// [`ProcState::pending_exit`].
    pub(crate) exit_pending: AtomicBool,
    /// SCHED_* value.
    pub(crate) sched: AtomicU8,
    /// The tokio task's waker, re-registered at each poll.
    pub(crate) task_waker: AtomicWaker,
    /// Envelopes in the receiver's save queue (approximate, for listings
    /// and the mailbox limit).
    pub(crate) saved: AtomicU32,
    /// The most messages that may wait in the mailbox (0: no limit); one
    /// more kills the process with a `mailbox overflow` reason.
    pub(crate) max_mailbox: usize,
    /// The trace id the process works for (0: none); only the process
    /// itself changes it ([`Ctx::set_trace`]). Kept here rather than in
    /// [`Ctx`] so that every idle process's task stays small.
    pub(crate) trace: AtomicU64,
    pub(crate) meta: Meta,
}

impl Process {
    pub(crate) fn new(pid: Pid, meta: Meta, trap_exit: bool, max_mailbox: usize) -> Self {
        Process {
            pid,
            mailbox: Mailbox::default(),
            state: Mutex::new(ProcState::default()),
            trap_exit: AtomicBool::new(trap_exit),
            exit_pending: AtomicBool::new(false),
            sched: AtomicU8::new(SCHED_QUEUED),
            task_waker: AtomicWaker::new(),
            saved: AtomicU32::new(0),
            max_mailbox,
            trace: AtomicU64::new(0),
            meta,
        }
    }

    /// Queues a message or a call, within the mailbox limit.
    pub(crate) fn push_message(&self, env: Envelope) -> Push {
        self.mailbox.push_bounded(
            env,
            self.max_mailbox,
            self.saved.load(Ordering::Relaxed) as usize,
        )
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ProcState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True if runnable: running or queued to run.
    pub(crate) fn is_runnable(&self) -> bool {
        self.sched.load(Ordering::Relaxed) != SCHED_IDLE
    }

    /// True while the process's function is being polled: it is between
    /// two await points, running its own code.
    pub(crate) fn is_running(&self) -> bool {
        matches!(
            self.sched.load(Ordering::Acquire),
            SCHED_RUNNING | SCHED_RUNNING_WOKEN
        )
    }

    /// True once a signal has decided that the process dies (it may still
    /// be running its code until its next await point).
    #[inline]
    pub(crate) fn exit_is_pending(&self) -> bool {
        self.exit_pending.load(Ordering::Acquire)
    }

    /// Status for listings: a process that must die but has not reached an
    /// await point yet is already `Exiting`.
    pub(crate) fn status(&self) -> ProcStatus {
        if self.exit_is_pending() || self.lock().exiting {
            ProcStatus::Exiting
        } else if self.is_runnable() {
            ProcStatus::Running
        } else {
            ProcStatus::Waiting
        }
    }

    /// Envelopes waiting, shared queue and save queue together.
    pub(crate) fn mailbox_len(&self) -> usize {
        self.mailbox.len() + self.saved.load(Ordering::Relaxed) as usize
    }
}

/// The waker a process's function is polled with: it marks the process
/// runnable (for the run-queue count) and wakes the tokio task.
impl Wake for Process {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut cur = self.sched.load(Ordering::Acquire);
        loop {
            let next = match cur {
                SCHED_IDLE => SCHED_QUEUED,
                SCHED_RUNNING => SCHED_RUNNING_WOKEN,
                // Already queued (or re-woken while running): tokio has it.
                _ => return,
            };
            match self
                .sched
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        self.task_waker.wake();
    }
}
