//! The master's HTTP side (axum): the pool as JSON, in the shapes of
//! `poolctl --json` (DESIGN.md "Interfaces"), health, Prometheus metrics,
//! the live dashboard, and the few operations that change the pool. Bound
//! to loopback by default; it stops with the master (graceful shutdown on
//! the root token).
//!
//! Reading is open; changing is not. Every `GET` answers anyone who can
//! reach the port; every `POST`/`DELETE` requires `Authorization: Bearer
//! <token>` with the token the master was given (`--http-token-file`,
//! `POOL_HTTP_TOKEN`, config key `http_token`). A master without a token
//! answers them all `403` with how to enable them; a missing or wrong token
//! gets `401` (see [`auth`]).
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/nodes` | `[{name, id, addr, cpu, mem, procs, score, labels, ..., unreachable_from?}]` |
//! | `GET /api/processes[?node=NAME]` | `[{pid, node, function, status, age_ms, ...}]` |
//! | `GET /api/nodes/{node}/processes` | the same, of one node |
//! | `GET /api/trees` | `[{id, root, node, status, reason}]` |
//! | `GET /api/trees?id=ID`, `GET /api/trees/{id}` | `{id, strategy, pid, node, restarts, status, children}` |
//! | `GET /api/names` | `{name: pid}` |
//! | `GET /api/modules` | `[{hash, file, size, pushed_at}]`, as `poolctl module ls --json` |
//! | `GET /api/dashboard[?since=MS&after=SEQ&kinds=K,..]` | what the dashboard draws ([`dashboard`]) |
//! | `GET /api/events[?after=SEQ&kinds=K,..]` | `{events: [{seq, t_ms, kind, node?, tree?, text}], last_seq}` |
//! | `GET /healthz` | `ok` |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /` | the dashboard (its assets under `/assets/`) |
//! | `POST /api/spawn` `{function, args?, node?, key?, labels?, strategy?}` | `{pid, node}` |
//! | `POST /api/kill` `{pid, reason?}` | `{ok, pid, node, reason}` |
//! | `POST /api/trees` (a tree file's TOML as the body) | `[{id, root, node, status}]` |
//! | `DELETE /api/trees/{id}` | `[{id, root, node, status}]` once stopped |
//!
//! Errors are `{"error": message, "code": code}` with a matching status.

mod auth;
mod context;
mod control;
mod dashboard;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use pool_proto::{AppSummary, ErrorCode};
use serde::Deserialize;
use tokio::net::TcpListener;
use tracing::{error, info, warn};

use self::context::{ApiError, Http, ViewCache};
use crate::metrics::NodeRow;
use crate::node_requests;
use crate::shared::Shared;

/// Serves the API on `listener` until the master stops.
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let token = shared.token.clone();
    let addr = listener.local_addr().ok();
    let guarded = shared.config.http_token.is_some();
    if let Some(t) = &shared.config.http_token
        && t.len() < auth::MIN_TOKEN_LEN
    {
        warn!(
            length = t.len(),
            "the HTTP token is short: use at least {} random characters",
            auth::MIN_TOKEN_LEN
        );
    }
    let app = router(shared);
    info!(addr = ?addr, operations = if guarded { "enabled (token)" } else { "disabled (no token)" },
        "HTTP API and dashboard listening");
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(token.cancelled_owned())
        .await
    {
        error!(cause = %e, "HTTP server failed");
    }
}

/// Every route.
fn router(shared: Arc<Shared>) -> Router {
    let state = Arc::new(Http {
        shared,
        views: ViewCache::default(),
    });
    Router::new()
        .route("/api/nodes", get(nodes))
        .route("/api/processes", get(processes))
        .route("/api/nodes/{node}/processes", get(node_processes))
        .route("/api/trees", get(trees).post(control::tree_start))
        .route("/api/trees/{id}", get(tree).delete(control::tree_stop))
        .route("/api/names", get(names))
        .route("/api/modules", get(modules))
        .route("/api/dashboard", get(dashboard::data))
        .route("/api/events", get(dashboard::events))
        .route("/api/spawn", post(control::spawn))
        .route("/api/kill", post(control::kill))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(dashboard::assets())
        // Unknown routes answer JSON like every other error.
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such route: the API is under /api/ (nodes, processes, trees, names, modules, dashboard, events), plus /metrics, /healthz and the dashboard at /",
    )
}

async fn nodes(State(h): State<Arc<Http>>) -> impl IntoResponse {
    Json(h.shared.lock().list_nodes(Instant::now()))
}

/// `?node=NAME`.
#[derive(Debug, Deserialize)]
struct NodeFilter {
    node: Option<String>,
}

async fn processes(
    State(h): State<Arc<Http>>,
    Query(q): Query<NodeFilter>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        node_requests::list_processes(&h.shared, q.node.as_deref()).await?,
    ))
}

/// `GET /api/nodes/{node}/processes`: one node's processes, asked of the
/// node as `poolctl ps --node` does (the dashboard's node card lists them).
async fn node_processes(
    State(h): State<Arc<Http>>,
    Path(node): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(
        node_requests::list_processes(&h.shared, Some(&node)).await?,
    ))
}

/// `?id=ID`.
#[derive(Debug, Deserialize)]
struct TreeFilter {
    id: Option<String>,
}

async fn trees(
    State(h): State<Arc<Http>>,
    Query(q): Query<TreeFilter>,
) -> Result<Response, ApiError> {
    match q.id {
        Some(id) => tree(State(h), Path(id)).await,
        None => Ok(Json(h.shared.lock().app_summaries()).into_response()),
    }
}

async fn tree(State(h): State<Arc<Http>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(node_requests::tree_show(&h.shared, &id).await?).into_response())
}

async fn names(State(h): State<Arc<Http>>) -> impl IntoResponse {
    Json(h.shared.lock().names.all())
}

async fn modules(State(h): State<Arc<Http>>) -> impl IntoResponse {
    Json(h.shared.modules.list())
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(h): State<Arc<Http>>) -> impl IntoResponse {
    let (rows, apps): (Vec<NodeRow>, Vec<AppSummary>) = {
        let pool = h.shared.lock();
        let rows = pool
            .list_nodes(Instant::now())
            .into_iter()
            .map(|status| NodeRow {
                load: pool.table.load(status.id).unwrap_or(0.0),
                report: pool.table.last_report(status.id).cloned(),
                status,
            })
            .collect();
        (rows, pool.app_summaries())
    };
    let body = h.shared.metrics.render(&rows, &apps);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
