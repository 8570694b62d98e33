//! A one_for_one supervision tree on one node, no pool: two workers, one
//! of which crashes every second; the supervisor restarts only that one.
//!
//! ```sh
//! cargo run -p pool-examples --example local_supervisor
//! ```

use std::time::Duration;

use pool_worker::prelude::*;
use pool_worker::supervisor as sup;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rt = Runtime::new(NodeId::random());

    let spec = Spec::new("root", Strategy::OneForOne)
        .intensity(5)
        .period(Duration::from_secs(10))
        // A steady worker: answers calls with how long it has been up.
        .child(Child::worker("steady", |mut ctx| async move {
            let started = tokio::time::Instant::now();
            while let Envelope::Call(call) = ctx.recv().await {
                ctx.reply(&call, &(started.elapsed().as_millis() as u64));
            }
        }))
        // A flaky worker: crashes after a second.
        .child(Child::worker("flaky", |_ctx| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Err::<(), _>(ExitReason::Error("flaky gave up".into()))
        }));

    let root = sup::start(&rt, spec).await?;
    println!("root supervisor {root} started");
    for round in 1..=4 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        for child in sup::which_children(&rt, root).await? {
            println!(
                "round {round}: {:<7} pid {:<24} restarts {}",
                child.id.unwrap_or_default(),
                child.pid.to_string(),
                child.restarts
            );
        }
    }
    sup::stop(&rt, root).await?;
    println!("stopped: children first, in reverse start order");
    Ok(())
}
