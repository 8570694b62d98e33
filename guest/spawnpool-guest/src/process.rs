//! The process API: safe wrappers over the host ABI (the imports of module
//! `"spawnpool"`), one function per import. Every function acts on the calling process (the
//! one the module instance runs as).

use std::ops::BitOr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::envelope::{Body, Call, Envelope};
use crate::error::{CallError, Error, SpawnError};
use crate::exit::ExitReason;
use crate::id::{Pid, Ref};
use crate::sys;

/// Copies `len` bytes out of the host's pending buffer (and empties it).
fn take_pending(len: i32) -> Vec<u8> {
    let len = len.max(0) as usize;
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    // SAFETY: the host writes exactly the `len` bytes it announced, into
    // the capacity reserved just above.
    unsafe {
        sys::take(buf.as_mut_ptr());
        buf.set_len(len);
    }
    buf
}

/// Maps an import's return to a length or an error. `what` says, for the
/// codes that carry text on the host side, what was refused: the ABI gives
/// no length for that text, so it is not read.
pub(crate) fn check(rc: i32, what: &str) -> Result<i32, Error> {
    match rc {
        rc if rc >= 0 => Ok(rc),
        sys::code::TIMEOUT => Err(Error::Timeout),
        sys::code::NOPROC => Err(Error::NoProc),
        sys::code::NOCONNECTION => Err(Error::NoConnection),
        sys::code::BAD_ARGUMENT => Err(Error::BadArgument(what.to_owned())),
        rc => Err(Error::Other(format!("{what} (code {rc})"))),
    }
}

/// A timeout in the ABI's milliseconds, saturating.
fn millis(timeout: Duration) -> i64 {
    i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)
}

/// A pid (and a reference after it) that the host wrote at `out`.
fn read_pid(out: &[u8; 32]) -> (Pid, Ref) {
    let mut pid = [0u8; 16];
    let mut mref = [0u8; 16];
    pid.copy_from_slice(&out[..16]);
    mref.copy_from_slice(&out[16..]);
    (Pid::from_bytes(pid), Ref::from_bytes(mref))
}

/// The spawn's arguments as JSON text (`{}`-like, exactly as given to
/// `poolctl spawn` or the Pool API).
pub fn args_json() -> String {
    // SAFETY: no arguments; the host answers a length.
    let len = unsafe { sys::args() };
    String::from_utf8_lossy(&take_pending(len)).into_owned()
}

/// The spawn's arguments, decoded from JSON into `T`.
///
/// ```no_run
/// #[derive(serde::Deserialize)]
/// struct Args { text: String }
/// let args: Args = spawnpool_guest::args().unwrap();
/// ```
pub fn args<T: DeserializeOwned>() -> Result<T, Error> {
    // SAFETY: as in `args_json`.
    let len = unsafe { sys::args() };
    serde_json::from_slice(&take_pending(len)).map_err(|e| Error::Args(e.to_string()))
}

/// This process's pid.
///
/// ```no_run
/// println!("I am {}", spawnpool_guest::self_pid());
/// ```
pub fn self_pid() -> Pid {
    let mut out = [0u8; 16];
    // SAFETY: the host writes 16 bytes at `out`.
    unsafe { sys::self_pid(out.as_mut_ptr()) };
    Pid::from_bytes(out)
}

/// Sends `value` to `to` (`Pid ! Msg`). Sending never fails, as in Erlang:
/// a message to a dead process is dropped. Only the encoding can fail.
///
/// ```no_run
/// # let peer = spawnpool_guest::self_pid();
/// spawnpool_guest::send(peer, &("ping", 7u32)).unwrap();
/// ```
pub fn send<T: Serialize + ?Sized>(to: Pid, value: &T) -> Result<(), Error> {
    send_body(to, &Body::encode(value)?);
    Ok(())
}

/// Sends an already encoded body (e.g. one received, passed on as is).
///
/// ```no_run
/// # let peer = spawnpool_guest::self_pid();
/// spawnpool_guest::send_body(peer, &spawnpool_guest::Body::encode("hi").unwrap());
/// ```
pub fn send_body(to: Pid, body: &Body) {
    let (node, serial) = to.abi();
    // SAFETY: the body's pointer and length describe live memory.
    unsafe { sys::send(node, serial, body.0.as_ptr(), body.0.len()) };
}

/// Sends `value` to the process registered as `name` on this node;
/// [`Error::NoProc`] if nobody here has the name.
///
/// ```no_run
/// spawnpool_guest::send_name("logger", "started").unwrap();
/// ```
pub fn send_name<T: Serialize + ?Sized>(name: &str, value: &T) -> Result<(), Error> {
    let body = codec::encode(value)?;
    // SAFETY: both slices describe live memory.
    let rc = unsafe { sys::send_name(name.as_ptr(), name.len(), body.as_ptr(), body.len()) };
    check(rc, "send to a name").map(|_| ())
}

/// Waits for the next envelope, forever.
///
/// Envelope bytes that do not parse mean that the module and the node
/// disagree on the ABI: the process then exits with that error.
///
/// ```no_run
/// use spawnpool_guest::{recv, Envelope};
/// if let Envelope::Message { body, .. } = recv() {
///     let n: u32 = body.take().unwrap();
/// }
/// ```
pub fn recv() -> Envelope {
    loop {
        // SAFETY: no pointers; a negative timeout waits forever.
        let rc = unsafe { sys::recv(-1) };
        if let Some(env) = envelope_or_exit(rc) {
            return env;
        }
    }
}

/// Waits for the next envelope at most `timeout`; `None` if none came.
///
/// ```no_run
/// use std::time::Duration;
/// assert!(spawnpool_guest::recv_timeout(Duration::ZERO).is_none()); // an empty mailbox
/// ```
pub fn recv_timeout(timeout: Duration) -> Option<Envelope> {
    // SAFETY: no pointers.
    let rc = unsafe { sys::recv(millis(timeout)) };
    envelope_or_exit(rc)
}

/// The envelope in pending after `recv` answered `rc`.
fn envelope_or_exit(rc: i32) -> Option<Envelope> {
    match check(rc, "recv") {
        Ok(len) => match Envelope::parse(&take_pending(len)) {
            Ok(env) => Some(env),
            Err(e) => exit(&ExitReason::Error(format!("spawnpool-guest: {e}"))),
        },
        Err(_) => None,
    }
}

/// Calls `to` with `request` and waits at most `timeout` for its reply,
/// decoded as `R` (gen_server-style: the callee sees an
/// [`Envelope::Call`] and answers with [`reply`]).
///
/// ```no_run
/// use std::time::Duration;
/// # let server = spawnpool_guest::self_pid();
/// let n: i64 = spawnpool_guest::call(server, "inc", Duration::from_secs(5)).unwrap();
/// ```
pub fn call<T: Serialize + ?Sized, R: DeserializeOwned>(
    to: Pid,
    request: &T,
    timeout: Duration,
) -> Result<R, CallError> {
    call_body(to, &Body::encode(request)?, timeout)?.take()
}

/// [`call`] with an encoded request, answering the encoded reply.
///
/// ```no_run
/// use std::time::Duration;
/// use spawnpool_guest::Body;
/// # let server = spawnpool_guest::self_pid();
/// let reply = spawnpool_guest::call_body(server, &Body::encode("get").unwrap(), Duration::from_secs(5));
/// ```
pub fn call_body(to: Pid, request: &Body, timeout: Duration) -> Result<Body, CallError> {
    let (node, serial) = to.abi();
    // SAFETY: the request's pointer and length describe live memory.
    let rc = unsafe {
        sys::call(
            node,
            serial,
            request.0.as_ptr(),
            request.0.len(),
            millis(timeout),
        )
    };
    let len = check(rc, "call")?;
    Ok(Body(take_pending(len)))
}

/// Answers `call` with `value`.
///
/// ```no_run
/// use spawnpool_guest::{recv, reply, Envelope};
/// if let Envelope::Call(call) = recv() {
///     reply(&call, "pong").unwrap();
/// }
/// ```
pub fn reply<R: Serialize + ?Sized>(call: &Call, value: &R) -> Result<(), Error> {
    reply_body(call, &Body::encode(value)?);
    Ok(())
}

/// Answers `call` with an encoded body (e.g. its own request, as an echo).
///
/// ```no_run
/// use spawnpool_guest::{recv, reply_body, Envelope};
/// if let Envelope::Call(call) = recv() {
///     reply_body(&call, &call.body);
/// }
/// ```
pub fn reply_body(call: &Call, body: &Body) {
    let (node, serial) = call.from.abi();
    let (ref_node, ref_serial) = call.mref.abi();
    // SAFETY: the body's pointer and length describe live memory.
    unsafe {
        sys::reply(
            node,
            serial,
            ref_node,
            ref_serial,
            body.0.as_ptr(),
            body.0.len(),
        )
    };
}

/// How [`spawn`] ties the child to its parent: combine with `|`.
///
/// ```
/// use spawnpool_guest::SpawnFlags;
/// let both = SpawnFlags::LINK | SpawnFlags::MONITOR;
/// assert!(both.contains(SpawnFlags::LINK) && both.contains(SpawnFlags::MONITOR));
/// assert!(!SpawnFlags::NONE.contains(SpawnFlags::LINK));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SpawnFlags(i32);

impl SpawnFlags {
    /// Neither linked nor monitored.
    pub const NONE: SpawnFlags = SpawnFlags(0);
    /// Linked (`spawn_link`).
    pub const LINK: SpawnFlags = SpawnFlags(1);
    /// Monitored (`spawn_monitor`): [`spawn_opt`] answers the reference.
    pub const MONITOR: SpawnFlags = SpawnFlags(2);

    /// Whether every flag of `other` is set.
    ///
    /// ```
    /// assert!(spawnpool_guest::SpawnFlags::LINK.contains(spawnpool_guest::SpawnFlags::NONE));
    /// ```
    pub fn contains(self, other: SpawnFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for SpawnFlags {
    type Output = SpawnFlags;

    fn bitor(self, other: SpawnFlags) -> SpawnFlags {
        SpawnFlags(self.0 | other.0)
    }
}

/// Spawns `function` with `args` (sent as JSON) on this node, and answers
/// its pid. `function` is a native name (`builtin.echo`) or a canonical
/// wasm name (`<64 hex>:export`); a named form (`app.wasm:count`) is for
/// the master to resolve and is refused here.
///
/// ```no_run
/// use spawnpool_guest::{spawn, SpawnFlags};
/// let child = spawn("builtin.echo", &serde_json::json!({}), SpawnFlags::LINK).unwrap();
/// ```
pub fn spawn<A: Serialize + ?Sized>(
    function: &str,
    args: &A,
    flags: SpawnFlags,
) -> Result<Pid, SpawnError> {
    spawn_opt(function, args, flags).map(|(pid, _)| pid)
}

/// [`spawn`], answering also the monitor's reference when `flags` holds
/// [`SpawnFlags::MONITOR`].
///
/// ```no_run
/// use spawnpool_guest::{spawn_opt, SpawnFlags};
/// let (child, mref) = spawn_opt("builtin.echo", &(), SpawnFlags::MONITOR).unwrap();
/// assert!(mref.is_some());
/// ```
pub fn spawn_opt<A: Serialize + ?Sized>(
    function: &str,
    args: &A,
    flags: SpawnFlags,
) -> Result<(Pid, Option<Ref>), SpawnError> {
    let args = serde_json::to_vec(args).map_err(|e| Error::Encode(e.to_string()))?;
    let mut out = [0u8; 32];
    // SAFETY: both slices describe live memory; the host writes at most 32
    // bytes at `out` (the pid, and the ref when monitoring).
    let rc = unsafe {
        sys::spawn(
            function.as_ptr(),
            function.len(),
            args.as_ptr(),
            args.len(),
            flags.0,
            out.as_mut_ptr(),
        )
    };
    check(
        rc,
        &format!("spawn of {function:?}: an unknown function or arguments it refuses"),
    )?;
    let (pid, mref) = read_pid(&out);
    Ok((pid, flags.contains(SpawnFlags::MONITOR).then_some(mref)))
}

/// Links this process to `pid`: when one ends with a reason other than
/// `normal`, the other gets an exit signal (see [`trap_exit`]).
/// [`Error::NoProc`] if `pid` is a local process that is gone (an exit
/// signal `noproc` follows, as in OTP).
///
/// ```no_run
/// # let peer = spawnpool_guest::self_pid();
/// spawnpool_guest::link(peer).unwrap();
/// ```
pub fn link(pid: Pid) -> Result<(), Error> {
    let (node, serial) = pid.abi();
    // SAFETY: no pointers.
    check(unsafe { sys::link(node, serial) }, "link").map(|_| ())
}

/// Removes the link to `pid`.
///
/// ```no_run
/// # let peer = spawnpool_guest::self_pid();
/// spawnpool_guest::unlink(peer).unwrap();
/// ```
pub fn unlink(pid: Pid) -> Result<(), Error> {
    let (node, serial) = pid.abi();
    // SAFETY: no pointers.
    check(unsafe { sys::unlink(node, serial) }, "unlink").map(|_| ())
}

/// Monitors `pid`: an [`Envelope::Down`] with this reference arrives when it
/// ends (at once, with `noproc`, if it is already gone).
///
/// ```no_run
/// # let peer = spawnpool_guest::self_pid();
/// let mref = spawnpool_guest::monitor(peer);
/// ```
pub fn monitor(pid: Pid) -> Ref {
    let (node, serial) = pid.abi();
    let mut out = [0u8; 16];
    // SAFETY: the host writes 16 bytes at `out`.
    unsafe { sys::monitor(node, serial, out.as_mut_ptr()) };
    Ref::from_bytes(out)
}

/// Removes a monitor, and its down message if it is already in the mailbox.
///
/// ```no_run
/// # let peer = spawnpool_guest::self_pid();
/// spawnpool_guest::demonitor(spawnpool_guest::monitor(peer));
/// ```
pub fn demonitor(mref: Ref) {
    let (node, serial) = mref.abi();
    // SAFETY: no pointers.
    unsafe { sys::demonitor(node, serial) };
}

/// While on, exit signals from linked processes arrive as
/// [`Envelope::Exit`] instead of ending this process (except `kill`).
///
/// ```no_run
/// spawnpool_guest::trap_exit(true);
/// ```
pub fn trap_exit(on: bool) {
    // SAFETY: no pointers.
    unsafe { sys::trap_exit(i32::from(on)) };
}

/// Sends `pid` an exit signal with `reason` (`exit(Pid, Reason)`).
///
/// ```no_run
/// # let peer = spawnpool_guest::self_pid();
/// spawnpool_guest::exit_pid(peer, &spawnpool_guest::ExitReason::Kill);
/// ```
pub fn exit_pid(pid: Pid, reason: &ExitReason) {
    let (node, serial) = pid.abi();
    let text = reason.to_string();
    // SAFETY: the text's pointer and length describe live memory.
    unsafe { sys::exit_pid(node, serial, text.as_ptr(), text.len()) };
}

/// Registers this process under a local `name`; [`Error::BadArgument`] if
/// the name is taken.
///
/// ```no_run
/// spawnpool_guest::register("counter").unwrap();
/// ```
pub fn register(name: &str) -> Result<(), Error> {
    // SAFETY: the name's pointer and length describe live memory.
    let rc = unsafe { sys::register(name.as_ptr(), name.len()) };
    check(rc, &format!("register {name:?}: the name is taken")).map(|_| ())
}

/// The pid registered as `name`, if any.
///
/// ```no_run
/// let counter = spawnpool_guest::whereis("counter");
/// ```
pub fn whereis(name: &str) -> Option<Pid> {
    let mut out = [0u8; 16];
    // SAFETY: the name describes live memory; the host writes 16 bytes at `out`.
    let rc = unsafe { sys::whereis(name.as_ptr(), name.len(), out.as_mut_ptr()) };
    check(rc, "whereis").ok().map(|_| Pid::from_bytes(out))
}

/// Sets this process's result: what `poolctl spawn --wait` prints and a
/// monitor's [`Envelope::Down`] carries. The last one set wins.
///
/// ```no_run
/// spawnpool_guest::set_result(&42u64).unwrap();
/// ```
pub fn set_result<T: Serialize + ?Sized>(value: &T) -> Result<(), Error> {
    let body = codec::encode(value)?;
    // SAFETY: the body's pointer and length describe live memory.
    unsafe { sys::set_result(body.as_ptr(), body.len()) };
    Ok(())
}

/// Ends this process with `reason` at once. (Returning from the exported
/// function ends it with `normal`.)
///
/// ```no_run
/// spawnpool_guest::exit(&"bad input".into());
/// ```
pub fn exit(reason: &ExitReason) -> ! {
    let text = reason.to_string();
    // SAFETY: the text's pointer and length describe live memory.
    unsafe { sys::exit(text.as_ptr(), text.len()) };
    unreachable!("the host's exit returned")
}

/// Milliseconds of the node's monotonic clock, for the module's own
/// deadlines.
///
/// ```no_run
/// let start = spawnpool_guest::now_ms();
/// ```
pub fn now_ms() -> u64 {
    // SAFETY: no pointers.
    let ms = unsafe { sys::now_ms() };
    u64::try_from(ms).unwrap_or(0)
}

#[cfg(test)]
mod tests;
