//! `wc-worker`: a user's own worker, as a user would build one with the
//! pool-worker library: the stock built-ins plus one function of its own,
//! `wc.count`, that no stock worker has, and every flag of the stock worker
//! (`pool_worker::cli::Worker`). The cluster tests of placement by
//! function (`cluster_functions`) start it beside stock workers.
//!
//! ```text
//! wc-worker [every flag of pool-worker: --master, --name, --label, ...]
//! ```
//!
//! | function | args | behaviour |
//! |---|---|---|
//! | `wc.count` | `{text?, serve?}` | counts the words of `text` and ends with `{"words": N}`; with `serve`, stays up instead and answers every call `{text}` with `{"words": N}` |

use std::process::ExitCode;

use pool_proto::ExitReason;
use pool_worker::cli::Worker;
use serde::Deserialize;
use serde_json::{Value, json};
use supervisor::{Ctx, Envelope, Functions};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountArgs {
    /// The text whose words are counted.
    #[serde(default)]
    text: String,
    /// Stay up and answer calls instead of ending.
    #[serde(default)]
    serve: bool,
}

/// Words of `text`, as JSON.
fn words(text: &str) -> Value {
    json!({ "words": text.split_whitespace().count() })
}

async fn count(mut ctx: Ctx, args: CountArgs) -> Result<Value, ExitReason> {
    if !args.serve {
        return Ok(words(&args.text));
    }
    loop {
        if let Envelope::Call(call) = ctx.recv().await {
            let req = call.msg.take::<Value>().unwrap_or(Value::Null);
            let text = req["text"].as_str().unwrap_or_default().to_owned();
            ctx.reply_to(call.from, call.mref, &words(&text));
        }
    }
}

/// The flags the test passes.
fn main() -> ExitCode {
    let mut functions = Functions::new();
    functions.register("wc.count", count);
    Worker::new().functions(functions).main()
}
