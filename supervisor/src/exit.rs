//! How a process function's return value, or its panic, becomes an exit
//! reason ([`IntoExit`]). A leaf: the runtime, the function registry and the
//! supervisor's child specs all turn return values into exits through it.
//! The exit reasons themselves are wire types ([`ExitReason`], in
//! pool-proto).

use std::any::Any;

use pool_proto::ExitReason;
use serde::Serialize;

use crate::envelope::Message;

/// What a process function's return value means as an exit.
///
/// `()` is a normal exit; an [`ExitReason`] is that reason; `Ok(v)` is a
/// normal exit with result `v` (for `run` and monitors that ask for it);
/// `Err(e)` exits with `e.into()` (any `Box<dyn Error + Send + Sync>`,
/// `String`, `io::Error` or `ExitReason`).
///
/// ```
/// use supervisor::{ExitReason, IntoExit};
/// assert_eq!(().into_exit().0, ExitReason::Normal);
/// let (reason, result) = Ok::<u32, String>(7).into_exit();
/// assert!(reason.is_normal());
/// assert_eq!(result.unwrap().take::<u32>().unwrap(), 7);
/// assert_eq!(Err::<(), _>("boom".to_string()).into_exit().0, ExitReason::Error("boom".into()));
/// ```
pub trait IntoExit {
    /// The exit reason and the optional result value.
    fn into_exit(self) -> (ExitReason, Option<Message>);
}

impl IntoExit for () {
    fn into_exit(self) -> (ExitReason, Option<Message>) {
        (ExitReason::Normal, None)
    }
}

impl IntoExit for (ExitReason, Option<Message>) {
    fn into_exit(self) -> (ExitReason, Option<Message>) {
        self
    }
}

impl IntoExit for ExitReason {
    fn into_exit(self) -> (ExitReason, Option<Message>) {
        (self, None)
    }
}

impl<T, E> IntoExit for Result<T, E>
where
    T: Serialize + Send + 'static,
    E: Into<ExitReason>,
{
    fn into_exit(self) -> (ExitReason, Option<Message>) {
        match self {
            Ok(v) => (ExitReason::Normal, Some(Message::new(v))),
            Err(e) => (e.into(), None),
        }
    }
}

/// The text of a panic's payload, for [`ExitReason::Panic`]: a process
/// body that panics and a supervisor's custom start function that panics
/// both exit with it.
pub(crate) fn panic_text(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
