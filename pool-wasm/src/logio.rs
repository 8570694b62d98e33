//! A wasm process's stdout and stderr, as WASI sees them: lines to the
//! node's log with the process's pid. A leaf.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use pool_proto::Pid;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// A partial line longer than this is logged as it is.
const MAX_LINE: usize = 4096;

/// The stdout or stderr of process `pid`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogOutput {
    /// The process whose output it is.
    pub(crate) pid: Pid,
    /// `stdout` or `stderr`.
    pub(crate) stream: &'static str,
}

impl IsTerminal for LogOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LogWriter {
            out: *self,
            line: Vec::new(),
        })
    }
}

/// Collects bytes into lines and logs each whole line.
struct LogWriter {
    /// Whose output, and which.
    out: LogOutput,
    /// The line being collected.
    line: Vec<u8>,
}

impl LogWriter {
    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end_matches(['\n', '\r']);
        tracing::info!(target: "wasm", pid = %self.out.pid, stream = self.out.stream, "{text}");
        self.line.clear();
    }
}

impl AsyncWrite for LogWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        for &b in buf {
            self.line.push(b);
            if b == b'\n' || self.line.len() >= MAX_LINE {
                self.emit();
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.emit();
    }
}
