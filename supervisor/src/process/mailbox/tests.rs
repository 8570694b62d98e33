//! Unit tests of the mailbox: wakes at once, or once per batch when they
//! are deferred, even if the batch panics.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Wake;

use super::*;
use crate::Message;

struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn envelope() -> Envelope {
    Envelope::Message {
        from: None,
        msg: Message::new(1u32),
    }
}

/// Registers a waiting receiver on `mb` whose wakes are counted.
fn waiting(mb: &Mailbox) -> Arc<Count> {
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut local = VecDeque::new();
    let mut cx = Context::from_waker(&waker);
    assert!(mb.poll_drain(&mut local, &mut cx).is_pending());
    count
}

#[test]
fn a_push_wakes_a_waiting_receiver_at_once() {
    let mb = Mailbox::default();
    let count = waiting(&mb);
    assert!(mb.push(envelope()));
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
}

#[test]
fn deferred_wakes_come_once_when_the_batch_ends() {
    let a = Mailbox::default();
    let b = Mailbox::default();
    let (ca, cb) = (waiting(&a), waiting(&b));
    defer_wakes(|| {
        for _ in 0..10 {
            assert!(a.push(envelope()));
            assert_eq!(b.push_bounded(envelope(), 0, 0), Push::Queued);
        }
        // Nested: joins the outer batch.
        defer_wakes(|| assert!(a.push(envelope())));
        assert_eq!(ca.0.load(Ordering::SeqCst), 0, "woken inside the batch");
        assert_eq!(cb.0.load(Ordering::SeqCst), 0, "woken inside the batch");
    });
    assert_eq!(ca.0.load(Ordering::SeqCst), 1);
    assert_eq!(cb.0.load(Ordering::SeqCst), 1);
    assert_eq!(a.len(), 11);
    assert_eq!(b.len(), 10);
}

#[test]
fn a_panicking_batch_still_wakes() {
    let a = Mailbox::default();
    let ca = waiting(&a);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        defer_wakes(|| {
            a.push(envelope());
            panic!("in the batch");
        })
    }));
    assert!(r.is_err());
    assert_eq!(ca.0.load(Ordering::SeqCst), 1);
    // And the next push outside a batch wakes at once again.
    let ca = waiting_after_drain(&a);
    a.push(envelope());
    assert_eq!(ca.0.load(Ordering::SeqCst), 1);
}

fn waiting_after_drain(mb: &Mailbox) -> Arc<Count> {
    let mut local = VecDeque::new();
    mb.drain_into(&mut local);
    waiting(mb)
}
