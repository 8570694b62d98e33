//! `echo`: answers every call with its request, and sends every plain
//! message back to its sender, until it is stopped (as `builtin.echo`).

use spawnpool_guest::{recv, reply_body, send_body, Envelope};

/// Echoes forever; the bodies pass through undecoded.
#[no_mangle]
pub extern "C" fn echo() {
    loop {
        match recv() {
            Envelope::Call(call) => reply_body(&call, &call.body),
            Envelope::Message {
                from: Some(from),
                body,
            } => send_body(from, &body),
            _ => {}
        }
    }
}
