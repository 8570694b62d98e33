//! A process's mailbox: a queue senders push to under a short lock, and a
//! waker for the receiver.
//!
//! The receiver never pops under the lock one message at a time: it swaps
//! the whole queue into its own buffer (the "save queue" of selective
//! receive) and works on that without locking. Under load a sender and a
//! receiver on different threads therefore meet on the lock once per batch,
//! not once per message. Senders wake the receiver only when it is waiting
//! (its waker is registered), so a busy receiver is not woken spuriously.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use crate::envelope::Envelope;

thread_local! {
    /// Receivers' wakers held back by [`defer_wakes`] on this thread.
    static DEFERRED: RefCell<Option<Vec<Waker>>> = const { RefCell::new(None) };
}

/// Runs `f`, holding back every receiver wake-up its pushes cause on this
/// thread until `f` returns, then wakes each waiting receiver once.
///
/// For a thread that delivers a batch of messages (a connection reader with
/// a buffer of frames): each receiver is woken once per batch rather than
/// once per message, which saves a cross-thread wake-up (often a futex
/// call) for every message but the first. A receiver's waker is taken out
/// of its mailbox by the first push, so it is held here at most once.
/// Nested calls join the outer batch.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use supervisor::{Runtime, process::defer_wakes};
/// let rt = Runtime::standalone();
/// let p = rt.spawn(|mut ctx| async move {
///     let a: u32 = ctx.recv().await.take().unwrap();
///     let b: u32 = ctx.recv().await.take().unwrap();
///     assert_eq!((a, b), (1, 2));
/// });
/// tokio::task::yield_now().await; // let it wait
/// defer_wakes(|| {
///     rt.send(p, 1u32);
///     rt.send(p, 2u32);
/// });
/// rt.wait(p).await;
/// # }
/// ```
pub fn defer_wakes<R>(f: impl FnOnce() -> R) -> R {
    let outer = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_some() {
            true
        } else {
            *d = Some(Vec::new());
            false
        }
    });
    if outer {
        return f();
    }
    /// Wakes the held receivers even if `f` panics.
    struct Flush;
    impl Drop for Flush {
        fn drop(&mut self) {
            let held = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
            for w in held {
                w.wake();
            }
        }
    }
    let _flush = Flush;
    f()
}

/// Wakes `w` now, or holds it until the enclosing [`defer_wakes`] ends.
fn wake_or_defer(w: Waker) {
    let held = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(list) => {
            list.push(w);
            None
        }
        None => Some(w),
    });
    if let Some(w) = held {
        w.wake();
    }
}

/// What became of an envelope pushed with a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// It is queued.
    Queued,
    /// The process has exited: dropped.
    Closed,
    /// The mailbox is at its limit: dropped, and the process must die.
    Full,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Envelopes not yet taken by the receiver, oldest first.
    queue: VecDeque<Envelope>,
    /// The receiver's waker while it waits for an envelope.
    waker: Option<Waker>,
    /// Set when the process has exited: pushes are dropped.
    closed: bool,
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an envelope and wakes a waiting receiver. Returns false if
    /// the mailbox is closed (the envelope is dropped, as a send to a dead
    /// process is).
    pub(crate) fn push(&self, env: Envelope) -> bool {
        let waker = {
            let mut g = self.lock();
            if g.closed {
                return false;
            }
            g.queue.push_back(env);
            g.waker.take()
        };
        if let Some(w) = waker {
            wake_or_defer(w);
        }
        true
    }

    /// Like [`push`](Self::push), but refuses the envelope (returning
    /// [`Push::Full`]) when `limit` (0: none) envelopes are already waiting,
    /// `saved` of them in the receiver's save queue.
    pub(crate) fn push_bounded(&self, env: Envelope, limit: usize, saved: usize) -> Push {
        let waker = {
            let mut g = self.lock();
            if g.closed {
                return Push::Closed;
            }
            if limit > 0 && g.queue.len() + saved >= limit {
                drop(g);
                drop(env);
                return Push::Full;
            }
            g.queue.push_back(env);
            g.waker.take()
        };
        if let Some(w) = waker {
            wake_or_defer(w);
        }
        Push::Queued
    }

    /// Moves every queued envelope to the end of `local`; returns how many.
    pub(crate) fn drain_into(&self, local: &mut VecDeque<Envelope>) -> usize {
        let mut g = self.lock();
        move_all(&mut g.queue, local)
    }

    /// Like [`drain_into`](Self::drain_into), but if nothing is queued
    /// registers the receiver's waker and returns `Pending`.
    pub(crate) fn poll_drain(
        &self,
        local: &mut VecDeque<Envelope>,
        cx: &mut Context<'_>,
    ) -> Poll<usize> {
        let mut g = self.lock();
        if g.queue.is_empty() {
            match &g.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => g.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        g.waker = None;
        Poll::Ready(move_all(&mut g.queue, local))
    }

    /// Removes queued envelopes matching `pred` (for `demonitor` with flush).
    pub(crate) fn remove_where(&self, mut pred: impl FnMut(&Envelope) -> bool) {
        let removed: Vec<Envelope> = {
            let mut g = self.lock();
            let mut kept = VecDeque::with_capacity(g.queue.len());
            let mut removed = Vec::new();
            for e in g.queue.drain(..) {
                if pred(&e) {
                    removed.push(e);
                } else {
                    kept.push_back(e);
                }
            }
            g.queue = kept;
            removed
        };
        drop(removed);
    }

    /// Number of envelopes waiting in the shared queue.
    pub(crate) fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Closes the mailbox; queued envelopes are dropped outside the lock.
    pub(crate) fn close(&self) {
        let dropped = {
            let mut g = self.lock();
            g.closed = true;
            g.waker = None;
            std::mem::take(&mut g.queue)
        };
        drop(dropped);
    }
}

/// Moves all of `from` to the end of `to`, swapping buffers when `to` is
/// empty so that no envelope is copied one by one.
fn move_all(from: &mut VecDeque<Envelope>, to: &mut VecDeque<Envelope>) -> usize {
    let n = from.len();
    if to.is_empty() {
        std::mem::swap(from, to);
    } else {
        to.extend(from.drain(..));
    }
    n
}

#[cfg(test)]
mod tests;
