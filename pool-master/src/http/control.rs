//! The HTTP operations that change the pool, each behind the token
//! ([`Authorized`]): spawn, kill, tree start and tree stop. They do what
//! `poolctl` does, through the same paths: a spawn is placed by the
//! master's placement (counted like any other) and then asked of the chosen
//! worker with `Request::Spawn` over its master connection; a kill is an
//! explicit exit signal from the master's system pid
//! (`Msg::Exit { explicit: true }`) pushed to the pid's node; trees go
//! through the same `TreeStart` / `TreeStop` code as the wire requests.
//!
//! Every operation is logged (never the token) and shows in the dashboard's
//! events feed.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use pool_place::placement::PlaceError;
use pool_proto::{
    ErrorCode, ExitReason, LabelReq, Msg, NodeKind, Pid, PlaceQuery, PlacementStrategy,
    RemoteError, Request, Response, SpawnRequest,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::info;

use super::auth::Authorized;
use super::context::{ApiError, Http};
use crate::clock::now_ms;
use crate::metrics::SpawnFailure;
use crate::node_requests;
use crate::outbox::RequestError;
use crate::shared::Shared;

/// The body of `POST /api/spawn`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpawnBody {
    /// A function registered on the workers, e.g. `builtin.echo`.
    function: String,
    /// Its argument; `{}` if left out (as `poolctl spawn`).
    #[serde(default)]
    args: Option<Value>,
    /// Run it on this node (by name).
    #[serde(default)]
    node: Option<String>,
    /// Place it by consistent hashing on this key.
    #[serde(default)]
    key: Option<String>,
    /// Only nodes with these labels: `["zone=a"]` or `{"zone": "a"}`.
    #[serde(default)]
    labels: Option<LabelsBody>,
    /// Override the master's default strategy.
    #[serde(default)]
    strategy: Option<PlacementStrategy>,
}

/// Label constraints in either spelling.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LabelsBody {
    /// `["zone=a", "disk=ssd"]`.
    List(Vec<String>),
    /// `{"zone": "a", "disk": "ssd"}`.
    Map(std::collections::BTreeMap<String, String>),
}

impl LabelsBody {
    fn parse(self) -> Result<Vec<LabelReq>, ApiError> {
        match self {
            LabelsBody::List(items) => items
                .iter()
                .map(|l| LabelReq::parse(l).map_err(|e| ApiError::bad_request(e.to_string())))
                .collect(),
            LabelsBody::Map(m) => Ok(m
                .into_iter()
                .map(|(key, value)| LabelReq { key, value })
                .collect()),
        }
    }
}

/// Parses a JSON body, answering a JSON error if it does not fit.
fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes, shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body must be JSON {shape}: {e}")))
}

/// `POST /api/spawn`: places the process as `poolctl spawn` would and asks
/// the chosen worker to start it. Answers `{pid, node}`.
pub(super) async fn spawn(
    _: Authorized,
    State(h): State<Arc<Http>>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body: SpawnBody = parse_body(
        &body,
        "{\"function\": NAME, \"args\"?: VALUE, \"node\"?: NAME, \"key\"?: KEY, \"labels\"?: [\"k=v\"], \"strategy\"?: NAME}",
    )?;
    if body.node.is_some() && body.key.is_some() {
        return Err(ApiError::bad_request(
            "give either `node` or `key`, not both",
        ));
    }
    let labels = match body.labels {
        Some(l) => l.parse()?,
        None => Vec::new(),
    };
    // A wasm function goes to the worker by its canonical name (a module
    // not stored is refused here).
    let function = h.shared.modules.resolve(&body.function)?;
    let req = SpawnRequest {
        function: function.clone(),
        args: body.args.unwrap_or_else(|| json!({})),
        link: None,
        monitor: None,
        owner: None,
        trace: None,
        sandbox: None,
    };
    let query = PlaceQuery {
        count: 1,
        strategy: body.strategy,
        key: body.key,
        labels,
        node: body.node,
        commit: true,
        function: Some(function),
        ..PlaceQuery::default()
    };
    let (pid, node) = spawn_placed(&h.shared, query, req).await?;
    info!(%pid, %node, function = %body.function, "spawned over HTTP");
    h.shared.lock().activity.api(
        Some(&node),
        None,
        format!("{} spawned on {node} over HTTP ({pid})", body.function),
        now_ms(),
    );
    Ok(Json(json!({ "pid": pid, "node": node })))
}

/// Places and spawns; a node lost between the two is excluded and the
/// placement made once more (as the Pool API does).
async fn spawn_placed(
    shared: &Arc<Shared>,
    mut query: PlaceQuery,
    req: SpawnRequest,
) -> Result<(Pid, String), RemoteError> {
    for attempt in 0..2 {
        let (link, name) = {
            let mut pool = shared.lock();
            // Placement keeps to the workers that have the function (and
            // checks a named node has it), with the same errors as `Place`.
            // One that no live worker registers is most likely misspelt:
            // a bad request over HTTP, as the node's own refusal would be.
            let placed = pool.place(&query, now_ms()).map_err(|e| match e {
                PlaceError::NoFunction { .. } => {
                    RemoteError::new(ErrorCode::UnknownFunction, e.to_string())
                }
                e => RemoteError::from(e),
            })?;
            let Some(p) = placed.into_iter().next() else {
                return Err(counted(
                    shared,
                    SpawnFailure::Other,
                    RemoteError::new(ErrorCode::Internal, "placement chose no node"),
                ));
            };
            let link = pool
                .members
                .get(p.id)
                .filter(|m| m.live && m.info.kind == NodeKind::Worker)
                .and_then(|m| pool.link(m.session))
                .ok_or_else(|| {
                    counted(
                        shared,
                        SpawnFailure::Unreachable,
                        RemoteError::new(ErrorCode::UnknownNode, format!("{} just left", p.name)),
                    )
                })?;
            (link, p.name)
        };
        match link
            .request(Request::Spawn(req.clone()), shared.config.request_timeout)
            .await
        {
            Ok(Response::Spawned(pid)) => return Ok((pid, name)),
            Ok(Response::Error(mut e)) => {
                e.message = format!("node {name}: {}", e.message);
                return Err(counted(shared, SpawnFailure::of(e.code), e));
            }
            Ok(other) => {
                return Err(counted(
                    shared,
                    SpawnFailure::Other,
                    RemoteError::new(
                        ErrorCode::Internal,
                        format!("{name} answered Spawn with {other:?} instead of a pid"),
                    ),
                ));
            }
            Err(RequestError::Closed) if attempt == 0 && query.node.is_none() => {
                query.exclude.push(link.conn.node);
            }
            Err(e) => {
                return Err(counted(
                    shared,
                    SpawnFailure::Unreachable,
                    RemoteError::new(
                        ErrorCode::Internal,
                        format!(
                            "{name} did not answer the spawn ({}): it may still start it; check with GET /api/processes?node={name}",
                            match e {
                                RequestError::Timeout => "no answer in time",
                                RequestError::Closed => "its connection closed",
                            }
                        ),
                    ),
                ));
            }
        }
    }
    Err(counted(
        shared,
        SpawnFailure::Unreachable,
        RemoteError::new(
            ErrorCode::NoNode,
            "the chosen nodes went away before spawning: try again",
        ),
    ))
}

/// Counts a spawn that failed other than by a refused placement (the
/// placement counts those itself) and hands the error on.
fn counted(shared: &Shared, why: SpawnFailure, e: RemoteError) -> RemoteError {
    shared.metrics.spawn_failed(why);
    e
}

/// The body of `POST /api/kill`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KillBody {
    /// The process, `<node.serial>`.
    pid: String,
    /// The exit reason; `kill` (untrappable) if left out, as `poolctl kill`.
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/kill`: sends the exit signal to the pid's node. Like OTP's
/// `exit/2`, it cannot tell whether the process existed: a signal to a dead
/// pid is dropped. Answers `{ok, pid, node, reason}`.
pub(super) async fn kill(
    _: Authorized,
    State(h): State<Arc<Http>>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body: KillBody = parse_body(&body, "{\"pid\": \"<node.serial>\", \"reason\"?: REASON}")?;
    let pid: Pid = body.pid.trim().parse().map_err(|e| {
        ApiError::bad_request(format!(
            "{:?} is not a pid ({e}): pids look like <3f2a9c1e04d1b2aa.17>",
            body.pid
        ))
    })?;
    let reason: ExitReason = body
        .reason
        .as_deref()
        .unwrap_or("kill")
        .parse()
        .unwrap_or_else(|e| match e {});
    let node = {
        let mut pool = h.shared.lock();
        let found = pool
            .members
            .get(pid.node())
            .filter(|m| m.live && m.info.kind == NodeKind::Worker)
            .and_then(|m| Some((pool.link(m.session)?, m.info.name.clone())));
        let (link, node) = match found {
            Some(found) => found,
            None => {
                return Err(ApiError::from(RemoteError::new(
                    ErrorCode::NotFound,
                    format!(
                        "no live worker hosts {pid} (its node {} is not in the pool)",
                        pid.node()
                    ),
                )));
            }
        };
        // Queued while the lock is held, so it is ordered with the pushes
        // the node gets from the master.
        link.push(&Msg::Exit {
            from: Pid::new(h.shared.identity.node, 0),
            to: pid,
            reason: reason.clone(),
            explicit: true,
        });
        pool.activity.api(
            Some(&node),
            None,
            format!("exit signal {reason} sent to {pid} on {node} over HTTP"),
            now_ms(),
        );
        node
    };
    info!(%pid, %node, %reason, "exit signal sent over HTTP");
    Ok(Json(
        json!({ "ok": true, "pid": pid, "node": node, "reason": reason.to_string() }),
    ))
}

/// `?source=NAME`: what to call the tree in messages.
#[derive(Debug, Deserialize)]
pub(super) struct TreeSource {
    source: Option<String>,
}

/// `POST /api/trees`: the body is a tree file (TOML). Checked as
/// `poolctl tree start FILE` is — an error names the line and the field —
/// then kept alive by the master. Answers the `tree ls` line.
pub(super) async fn tree_start(
    _: Authorized,
    State(h): State<Arc<Http>>,
    Query(q): Query<TreeSource>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the tree file must be UTF-8 text"))?
        .to_owned();
    let source = q.source.unwrap_or_else(|| "<http>".to_owned());
    // Syntax and spec rules here; functions are checked against the live
    // workers by the same code as `TreeStart`, which parses `text` again.
    let spec = pool_proto::tree::parse_tree_str(&source, &text, |_| true)
        .map_err(|e| ApiError::from(RemoteError::new(ErrorCode::BadSpec, e.to_string())))?;
    let id = spec.supervisor.id.clone();
    let summary =
        node_requests::tree_start(&h.shared, spec, Some(source.clone()), Some(text)).await?;
    info!(app = %id, %source, "tree started over HTTP");
    h.shared.lock().activity.api(
        None,
        Some(&id),
        format!("tree {id} submitted over HTTP"),
        now_ms(),
    );
    Ok(Json(summary))
}

/// `DELETE /api/trees/{id}`: stops the tree in order. Answers the `tree ls`
/// line once stopped.
pub(super) async fn tree_stop(
    _: Authorized,
    State(h): State<Arc<Http>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let summary = node_requests::tree_stop(&h.shared, &id).await?;
    info!(app = %id, "tree stopped over HTTP");
    h.shared.lock().activity.api(
        None,
        Some(&id),
        format!("tree {id} stop requested over HTTP"),
        now_ms(),
    );
    Ok(Json(summary))
}
