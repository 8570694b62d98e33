//! `count`: the word count of `{"text": "..."}`, as the process's result.

use serde::Deserialize;

/// The arguments of `count`.
#[derive(Deserialize)]
struct Args {
    /// The text to count the words of.
    text: String,
}

/// The number of whitespace-separated words of the text.
#[no_mangle]
pub extern "C" fn count() {
    let args: Args = crate::args_or_exit();
    let words = args.text.split_whitespace().count() as u64;
    spawnpool_guest::set_result(&words).expect("a u64 encodes");
}
