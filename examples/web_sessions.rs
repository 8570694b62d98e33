//! A web frontend (axum) that routes each user's requests to a per-user
//! session process, placed with `spawn_keyed(user)`: the same user always
//! reaches the same process on the same node, because a key maps to one
//! live node (rendezvous hashing). When that node dies the next request
//! finds the session gone (`noconnection`), spawns it again by the same key
//! — only the dead node's keys move — and carries on (the visit counter
//! starts over: session state lived in the process).
//!
//! Needs workers with `session.user` (the `custom_worker` example):
//!
//! ```sh
//! cargo run --release --bin pool-master &
//! cargo run --release -p pool-examples --example custom_worker -- --name w1 &
//! cargo run --release -p pool-examples --example custom_worker -- --name w2 &
//! cargo run --release -p pool-examples --example web_sessions &
//! curl localhost:8080/user/alice      # {"user":"alice","node":"w2","visits":1,...}
//! curl localhost:8080/user/alice      # same pid and node, visits 2
//! curl localhost:8080/user/bob        # maybe the other node
//! # kill the node alice is on, then:
//! curl localhost:8080/user/alice      # "respawned": true, on the surviving node
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use pool_proto::Pid;
use pool_worker::{Client, Pool};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// Flags.
#[derive(Debug, Parser)]
struct Args {
    /// Where the web frontend listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: String,
    /// The master's address.
    #[arg(long, env = "POOL_MASTER", default_value = "127.0.0.1:7400")]
    master: String,
    /// The cookie file (else POOL_COOKIE, else ~/.spawnpool/cookie).
    #[arg(long, env = "POOL_COOKIE_FILE")]
    cookie_file: Option<PathBuf>,
}

/// What a session answers to "visit" (see `custom_worker`).
#[derive(Debug, Deserialize)]
struct Visit {
    visits: u64,
}

/// The frontend's answer.
#[derive(Debug, Serialize)]
struct Page {
    user: String,
    node: String,
    pid: Pid,
    visits: u64,
    /// True when the session had to be spawned (first visit, or its node
    /// died).
    respawned: bool,
}

/// Shared state of the frontend: the pool and where each user's session is.
struct App {
    pool: Pool,
    sessions: Mutex<HashMap<String, (Pid, String)>>,
}

async fn visit(
    State(app): State<Arc<App>>,
    Path(user): Path<String>,
) -> Result<Json<Page>, (StatusCode, String)> {
    let known = app.sessions.lock().await.get(&user).cloned();
    let mut respawned = false;
    let (pid, node) = match known {
        Some(s) => s,
        None => spawn_session(&app, &user, &mut respawned).await?,
    };
    let (pid, node, visit) = match call_visit(&app.pool, pid).await {
        Ok(v) => (pid, node, v),
        Err(why) => {
            // The session (or its node) is gone: spawn it again by key.
            eprintln!("session of {user} at {pid} on {node} is gone ({why}); spawning it again");
            let (pid, node) = spawn_session(&app, &user, &mut respawned).await?;
            let v = call_visit(&app.pool, pid)
                .await
                .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?;
            (pid, node, v)
        }
    };
    Ok(Json(Page {
        user,
        node,
        pid,
        visits: visit.visits,
        respawned,
    }))
}

async fn call_visit(pool: &Pool, pid: Pid) -> Result<Visit, String> {
    let reply = pool
        .call(pid, "visit", Duration::from_secs(2))
        .await
        .map_err(|e| e.to_string())?;
    reply.take().map_err(|e| e.to_string())
}

async fn spawn_session(
    app: &App,
    user: &str,
    respawned: &mut bool,
) -> Result<(Pid, String), (StatusCode, String)> {
    let s = app
        .pool
        .spawn_keyed(user, "session.user", serde_json::json!({ "user": user }))
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    *respawned = true;
    app.sessions
        .lock()
        .await
        .insert(user.to_owned(), (s.pid, s.node.clone()));
    Ok((s.pid, s.node))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // A client: TLS files from POOL_TLS_*, a unique name web-HOST-PID-RANDOM.
    let mut client = Client::new().name_prefix("web").master(args.master);
    if let Some(file) = args.cookie_file {
        client = client.cookie_file(file);
    }
    let node = client.connect().await?;
    let app = Arc::new(App {
        pool: node.pool(),
        sessions: Mutex::new(HashMap::new()),
    });
    let router = Router::new()
        .route("/user/{name}", get(visit))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(&args.http).await?;
    eprintln!(
        "web frontend on http://{}/user/NAME",
        listener.local_addr()?
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    node.shutdown().await;
    Ok(())
}
