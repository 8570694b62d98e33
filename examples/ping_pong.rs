//! Two processes on one node: one calls the other (request/reply with a
//! timeout), then they play ping-pong with plain messages.
//!
//! ```sh
//! cargo run -p pool-examples --example ping_pong
//! ```

use std::time::{Duration, Instant};

use pool_proto::NodeId;
use supervisor::{Envelope, Runtime};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rt = Runtime::new(NodeId::random());

    // The ponger answers calls, and sends plain messages back to their sender.
    let ponger = rt.spawn(|mut ctx| async move {
        loop {
            match ctx.recv().await {
                Envelope::Call(call) => {
                    let n: u64 = call.msg.take().unwrap_or_default();
                    ctx.reply_to(call.from, call.mref, &(n + 1));
                }
                Envelope::Message {
                    from: Some(from),
                    msg,
                } => ctx.send_message(from, msg),
                _ => break,
            }
        }
    });

    let reply = rt.call(ponger, 41u64, Duration::from_secs(1)).await?;
    println!("call: 41 -> {}", reply.take::<u64>()?);

    let (tx, rx) = tokio::sync::oneshot::channel();
    rt.spawn(move |mut ctx| async move {
        let rounds = 100_000;
        let t = Instant::now();
        for i in 0..rounds {
            ctx.send(ponger, i as u64);
            ctx.recv().await;
        }
        let _ = tx.send(t.elapsed() / rounds);
    });
    println!("ping-pong: {:?} per round trip", rx.await?);
    rt.kill(ponger);
    Ok(())
}
