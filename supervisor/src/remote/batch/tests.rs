use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

struct Counter(AtomicUsize);

impl Flush for Counter {
    fn flush(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn counter() -> Arc<Counter> {
    Arc::new(Counter(AtomicUsize::new(0)))
}

/// A nested batch holds its connections until the outermost one ends.
#[test]
fn only_the_outermost_batch_flushes() {
    let c = counter();
    batch_sends(|| {
        batch_sends(|| assert!(defer_flush(|| c.clone())));
        assert_eq!(c.0.load(Ordering::Relaxed), 0, "flushed by the inner batch");
    });
    assert_eq!(c.0.load(Ordering::Relaxed), 1);
}

/// A batch that unwinds still flushes what it held, and leaves no batch
/// open behind it (the next send outside is written at once).
#[test]
fn a_panicking_batch_still_flushes_and_closes() {
    let c = counter();
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        batch_sends(|| {
            assert!(defer_flush(|| c.clone()));
            panic!("the process panicked");
        })
    }));
    assert!(res.is_err());
    assert_eq!(c.0.load(Ordering::Relaxed), 1);
    assert!(!defer_flush(|| c.clone()), "a batch was left open");
}

/// Each registration is flushed once per batch, and the next batch starts
/// empty.
#[test]
fn each_batch_flushes_its_own_registrations() {
    let a = counter();
    let b = counter();
    batch_sends(|| {
        assert!(defer_flush(|| a.clone()));
        assert!(defer_flush(|| b.clone()));
    });
    batch_sends(|| assert!(defer_flush(|| a.clone())));
    assert_eq!(a.0.load(Ordering::Relaxed), 2);
    assert_eq!(b.0.load(Ordering::Relaxed), 1);
}
