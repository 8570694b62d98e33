//! The bytes of an envelope as the host ABI hands it to a guest (`recv`):
//! a kind byte, a pid, a ref, then the body (see the crate docs). A leaf.

use pool_proto::{Pid, Ref};
use supervisor::{Envelope, Message};

/// The kind byte of a plain message.
pub(crate) const KIND_MESSAGE: u8 = 0;
/// The kind byte of a call.
pub(crate) const KIND_CALL: u8 = 1;
/// The kind byte of an exit signal (trapping exits).
pub(crate) const KIND_EXIT: u8 = 2;
/// The kind byte of a monitor's `Down`.
pub(crate) const KIND_DOWN: u8 = 3;

/// The 16 bytes of a pid or ref: node u64 LE, serial u64 LE.
pub(crate) fn id_bytes(node: u64, serial: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&node.to_le_bytes());
    out[8..].copy_from_slice(&serial.to_le_bytes());
    out
}

/// The 16 bytes of `pid`.
pub(crate) fn pid_bytes(pid: Pid) -> [u8; 16] {
    id_bytes(pid.node().as_u64(), pid.serial())
}

/// The 16 bytes of `r`.
pub(crate) fn ref_bytes(r: Ref) -> [u8; 16] {
    id_bytes(r.node().as_u64(), r.serial())
}

/// The MessagePack bytes of a message, or `None` (logged) for a value that
/// cannot be encoded: a local-only message cannot reach a guest, as it
/// cannot leave its node.
fn body(msg: &Message, to: Pid) -> Option<Vec<u8>> {
    match msg.encode() {
        Ok(p) => Some(p.0),
        Err(e) => {
            tracing::warn!(pid = %to, cause = %e, "message to a wasm process dropped: it cannot be encoded");
            None
        }
    }
}

/// Encodes `env` for the guest of process `to`; `None` if it cannot be
/// handed over (dropped, and the receive goes on).
pub(crate) fn encode(env: Envelope, to: Pid) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    let header = |out: &mut Vec<u8>, kind: u8, pid: Option<Pid>, r: Option<Ref>| {
        out.push(kind);
        out.extend_from_slice(&pid.map_or([0; 16], pid_bytes));
        out.extend_from_slice(&r.map_or([0; 16], ref_bytes));
    };
    match env {
        Envelope::Message { from, msg } => {
            let b = body(&msg, to)?;
            header(&mut out, KIND_MESSAGE, from, None);
            out.extend_from_slice(&b);
        }
        Envelope::Call(call) => {
            let b = body(&call.msg, to)?;
            header(&mut out, KIND_CALL, Some(call.from), Some(call.mref));
            out.extend_from_slice(&b);
        }
        Envelope::Exit { from, reason } => {
            header(&mut out, KIND_EXIT, Some(from), None);
            out.extend_from_slice(reason.to_string().as_bytes());
        }
        Envelope::Down(d) => {
            header(&mut out, KIND_DOWN, Some(d.pid), Some(d.mref));
            let reason = d.reason.to_string();
            out.extend_from_slice(&(reason.len() as u32).to_le_bytes());
            out.extend_from_slice(reason.as_bytes());
            if let Some(result) = &d.result
                && let Some(b) = body(result, to)
            {
                out.extend_from_slice(&b);
            }
        }
        // Replies are consumed by `call` itself; a receive never sees one.
        Envelope::Reply { .. } => return None,
    }
    Some(out)
}
