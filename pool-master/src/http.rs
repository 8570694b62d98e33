//! The master's HTTP API (axum): the pool as JSON, in the shapes of
//! `poolctl --json` (DESIGN.md "Interfaces"), health, and Prometheus
//! metrics. Bound to loopback by default; it stops with the master
//! (graceful shutdown on the root token).
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/nodes` | `[{name, id, addr, cpu, mem, procs, score, labels, ...}]` |
//! | `GET /api/processes[?node=NAME]` | `[{pid, node, function, status, age_ms, ...}]` |
//! | `GET /api/trees` | `[{id, root, node, status, reason}]` |
//! | `GET /api/trees?id=ID`, `GET /api/trees/{id}` | `{id, strategy, pid, node, restarts, status, children}` |
//! | `GET /api/names` | `{name: pid}` |
//! | `GET /healthz` | `ok` |
//! | `GET /metrics` | Prometheus text format |
//!
//! Errors are `{"error": message, "code": code}` with a matching status.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use pool_proto::{ErrorCode, RemoteError};
use serde::Deserialize;
use tokio::net::TcpListener;
use tracing::{error, info};

use crate::master::Shared;

/// Serves the API on `listener` until the master stops.
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let token = shared.token.clone();
    let addr = listener.local_addr().ok();
    let app = router(shared);
    info!(addr = ?addr, "HTTP API listening");
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(token.cancelled_owned())
        .await
    {
        error!(cause = %e, "HTTP server failed");
    }
}

/// Every route.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/nodes", get(nodes))
        .route("/api/processes", get(processes))
        .route("/api/trees", get(trees))
        .route("/api/trees/{id}", get(tree))
        .route("/api/names", get(names))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(dashboard())
        .with_state(shared)
}

/// The slot of the dashboard (`GET /` and its static assets, DESIGN.md
/// "HTTP"): empty until the dashboard lands, so `/` answers 404 meanwhile.
fn dashboard() -> Router<Arc<Shared>> {
    Router::new()
}

/// An API error as JSON.
struct ApiError(RemoteError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.0.code {
            ErrorCode::NotFound | ErrorCode::UnknownNode => StatusCode::NOT_FOUND,
            ErrorCode::BadRequest | ErrorCode::BadSpec => StatusCode::BAD_REQUEST,
            ErrorCode::NoNode | ErrorCode::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        };
        let body = serde_json::json!({ "error": self.0.message, "code": self.0.code });
        (status, Json(body)).into_response()
    }
}

async fn nodes(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    Json(s.lock().list_nodes(Instant::now()))
}

/// `?node=NAME`.
#[derive(Debug, Deserialize)]
struct NodeFilter {
    node: Option<String>,
}

async fn processes(
    State(s): State<Arc<Shared>>,
    Query(q): Query<NodeFilter>,
) -> Result<impl IntoResponse, ApiError> {
    s.list_processes(q.node.as_deref())
        .await
        .map(Json)
        .map_err(ApiError)
}

/// `?id=ID`.
#[derive(Debug, Deserialize)]
struct TreeFilter {
    id: Option<String>,
}

async fn trees(
    State(s): State<Arc<Shared>>,
    Query(q): Query<TreeFilter>,
) -> Result<Response, ApiError> {
    match q.id {
        Some(id) => tree(State(s), Path(id)).await,
        None => Ok(Json(s.lock().app_summaries()).into_response()),
    }
}

async fn tree(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    s.tree_show(&id)
        .await
        .map(|v| Json(v).into_response())
        .map_err(ApiError)
}

async fn names(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    Json(s.lock().names.all())
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let (nodes, loads) = {
        let pool = s.lock();
        let nodes = pool.list_nodes(Instant::now());
        let loads: Vec<f64> = nodes
            .iter()
            .map(|n| pool.table.load(n.id).unwrap_or(0.0))
            .collect();
        (nodes, loads)
    };
    let body = s.metrics.render(&nodes, &loads);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
