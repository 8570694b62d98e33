//! The epoch ticker: one plain thread per backend that advances the
//! engine's epoch every tick, which is what makes a running wasm process
//! yield to tokio (each store yields at every epoch change). It owns its
//! thread; the thread ends when the [`Ticker`] is dropped (its channel
//! closes), and the drop joins it.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::Engine;

/// The ticker thread and its stop signal.
#[derive(Debug)]
pub(crate) struct Ticker {
    /// Dropping it closes the channel the thread waits on: the thread ends
    /// within one tick.
    stop: Option<mpsc::Sender<()>>,
    /// The thread, joined by the drop.
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts a thread that increments `engine`'s epoch every `tick`.
    pub(crate) fn start(engine: Engine, tick: Duration) -> std::io::Result<Ticker> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                // Ends when the ticker is dropped (the channel disconnects;
                // nothing is ever sent).
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
