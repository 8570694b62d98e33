//! `pingpong`: calls a peer (native or wasm, any node) `n` times and checks
//! that every reply is its request, as an echo answers.

use std::time::Duration;

use serde::Deserialize;
use spawnpool_guest::{call, exit, set_result, Pid};

/// The arguments of `pingpong`.
#[derive(Deserialize)]
struct Args {
    /// The process to call, in text form (`<node.serial>`).
    peer: Pid,
    /// How many calls.
    n: u32,
}

/// How long one call may take before the process gives up.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes the calls; result: n. A call that fails or comes back changed
/// ends the process with a reason saying which.
#[no_mangle]
pub extern "C" fn pingpong() {
    let args: Args = crate::args_or_exit();
    for i in 0..args.n {
        let request = ("ping".to_owned(), i);
        let answer: Result<(String, u32), _> = call(args.peer, &request, CALL_TIMEOUT);
        match answer {
            Ok(back) if back == request => {}
            Ok(back) => exit(&format!("call {i}: reply {back:?} is not the request").into()),
            Err(e) => exit(&format!("call {i} to {}: {e}", args.peer).into()),
        }
    }
    set_result(&args.n).expect("a u32 encodes");
}
