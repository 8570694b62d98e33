//! Sends held back for the length of a batch ([`batch_sends`]): the frames
//! one process poll (or one batch of frames read) sends to a node go out in
//! one write when the batch ends, instead of one write each.
//!
//! A router that writes a frame to the socket at once when the connection
//! is idle saves a thread hand-off per message, but a process that sends a
//! thousand messages in one poll would then make a thousand system calls.
//! Inside a batch the router queues the frame instead and registers its
//! connection with [`defer_flush`]; when the batch ends, each registered
//! connection is flushed once. A process that sends one message and then
//! waits (a call, a ping-pong) still has it written before its thread moves
//! on: the poll ends at the wait.
//!
//! The runtime opens a batch around every poll of a process; a router's
//! reader may open one around each batch of frames it delivers, so the
//! answers they cause (spawn replies, exit signals) leave together.

use std::cell::RefCell;
use std::sync::Arc;

#[cfg(test)]
mod tests;

/// Something holding frames queued during a batch: a connection's queue.
pub trait Flush: Send + Sync {
    /// Writes what was queued during the batch, or hands it to the
    /// connection's writer. Called once per batch in which it was
    /// registered, on the thread that ran the batch, after the batch ended.
    fn flush(&self);
}

/// The batch open on this thread.
struct Batch {
    /// Nesting depth: only the outermost batch flushes.
    depth: u32,
    /// What to flush when the outermost batch ends, each once.
    held: Vec<Arc<dyn Flush>>,
}

thread_local! {
    static BATCH: RefCell<Batch> = const {
        RefCell::new(Batch {
            depth: 0,
            held: Vec::new(),
        })
    };
}

/// Runs `f` with sends batched: what routers hold back with
/// [`defer_flush`] during `f` is flushed when it returns (or unwinds).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use supervisor::remote::{batch_sends, defer_flush, Flush};
///
/// struct Counter(AtomicUsize);
/// impl Flush for Counter {
///     fn flush(&self) { self.0.fetch_add(1, Ordering::Relaxed); }
/// }
///
/// let c = Arc::new(Counter(AtomicUsize::new(0)));
/// batch_sends(|| {
///     assert!(defer_flush(|| c.clone()));
///     assert_eq!(c.0.load(Ordering::Relaxed), 0);
/// });
/// assert_eq!(c.0.load(Ordering::Relaxed), 1);
/// // Outside a batch nothing is held: the caller writes at once.
/// assert!(!defer_flush(|| c.clone()));
/// ```
pub fn batch_sends<R>(f: impl FnOnce() -> R) -> R {
    /// Ends the batch even if `f` unwinds, so the depth stays right and
    /// nothing queued is left without a flush.
    struct End;
    impl Drop for End {
        fn drop(&mut self) {
            end_batch();
        }
    }
    BATCH.with(|b| b.borrow_mut().depth += 1);
    let _end = End;
    f()
}

/// Registers a connection to be flushed when the batch open on this thread
/// ends: true if a batch is open (the caller queues its frame and the flush
/// will write it), false if not (the caller writes at once). `make` is
/// called only when the connection is registered, once per batch: the
/// caller registers when its first frame of the batch is queued.
pub fn defer_flush(make: impl FnOnce() -> Arc<dyn Flush>) -> bool {
    BATCH.with(|b| {
        let mut b = b.borrow_mut();
        if b.depth == 0 {
            return false;
        }
        b.held.push(make());
        true
    })
}

/// Closes one level of batch; the outermost flushes what was held.
fn end_batch() {
    let held = BATCH.with(|b| {
        let mut b = b.borrow_mut();
        b.depth -= 1;
        if b.depth > 0 || b.held.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut b.held))
    });
    let Some(mut held) = held else { return };
    // Flushed with the batch closed and not borrowed: a send made by a
    // flush (none today) would go out at once instead of being lost.
    for f in held.drain(..) {
        f.flush();
    }
    // Keep the vector's memory for the next batch.
    BATCH.with(|b| {
        let mut b = b.borrow_mut();
        if b.held.is_empty() {
            b.held = held;
        }
    });
}
