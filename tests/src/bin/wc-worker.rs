//! `wc-worker`: a user's own worker, as a user would build one with the
//! pool-worker library: the stock built-ins plus one function of its own,
//! `wc.count`, that no stock worker has. The cluster tests of placement by
//! function (`cluster_functions`) start it beside stock workers.
//!
//! ```text
//! wc-worker --master ADDR --name NAME [--label K=V]... [--report-interval DUR]
//!           (cookie from POOL_COOKIE_FILE, POOL_COOKIE or ~/.spawnpool/cookie)
//! ```
//!
//! | function | args | behaviour |
//! |---|---|---|
//! | `wc.count` | `{text?, serve?}` | counts the words of `text` and ends with `{"words": N}`; with `serve`, stays up instead and answers every call `{text}` with `{"words": N}` |

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use pool_proto::{ExitReason, Labels};
use pool_worker::{Node, NodeConfig};
use serde::Deserialize;
use serde_json::{Value, json};
use supervisor::{Ctx, Envelope, Functions};

/// `wc.count` arguments.
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
#[derive(Debug, Default)]
struct Args {
    master: Option<String>,
    name: Option<String>,
    labels: Vec<String>,
    report_interval: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--master" => a.master = Some(value()?),
            "--name" => a.name = Some(value()?),
            "--label" => a.labels.push(value()?),
            "--report-interval" => a.report_interval = Some(value()?),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cookie_file = std::env::var_os("POOL_COOKIE_FILE").map(PathBuf::from);
    let env_cookie = std::env::var("POOL_COOKIE").ok();
    let cookie = pool_proto::cookie::resolve_cookie(
        cookie_file.as_deref(),
        env_cookie.as_deref(),
        home.as_deref(),
    )?;
    let name = args.name.context("--name is required")?;
    let master = args.master.context("--master is required")?;
    let mut config = NodeConfig::worker(name, master, cookie);
    if let Some(r) = &args.report_interval {
        config.report_interval = Some(pool_proto::parse_duration(r)?);
    }
    let mut labels = Labels::new();
    for l in &args.labels {
        let l = pool_proto::LabelReq::parse(l)?;
        labels.insert(l.key, l.value);
    }
    config.labels = labels;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("binding the peer listener on 127.0.0.1:0")?;
    let mut functions = Functions::new();
    functions.register("wc.count", count);
    let node = Node::builder(config)
        .functions(functions)
        .listener(listener)
        .start()
        .await?;
    eprintln!("wc-worker running at {} as {}", node.addr(), node.id());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    node.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wc-worker: {e:#}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wc-worker: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wc-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
