//! The live dashboard: one page (`GET /`, with its stylesheet and script
//! under `/assets/`, all compiled into the binary — no CDN, works offline)
//! that polls `GET /api/dashboard` once a second and redraws without
//! reloading.
//!
//! `GET /api/dashboard?since=MS&after=SEQ[&kinds=K1,K2]` answers, compactly:
//!
//! ```text
//! { now_ms, step_ms, window_ms,
//!   master:  { id, name, placement, node_timeout_ms, operations },
//!   summary: { nodes_up, nodes_down, processes, restarts_1m, spawns_1m,
//!              trees_running, trees_pending, trees_failed, frames_per_s },
//!   nodes:   [ { state: "up", name, id, addr, cpu, mem, procs, score, load, labels,
//!                capacity, self_cpu, run_queue, report_age_ms,
//!                traffic: {frames_out, bytes_out, frames_in, bytes_in},
//!                history: [[t, score, procs, cpu, out/s, in/s], ...] }
//!            | { state: "down", ...its last status..., reason, reason_code,
//!                down_at_ms, history } ],
//!   trees:   [ { id, root, node, status, reason, view: TreeView | null, stale } ],
//!   events:  [ { seq, t_ms, kind, node?, tree?, text } ],
//!   last_seq }
//! ```
//!
//! `since` is the time of the newest history sample the page has: only
//! newer samples are sent (all of them for 0). `after` is the number of
//! the last event it has; `kinds` keeps only events of those kinds
//! (`node_down`, `app_failed`, `app_pending`, `node_up`, `app_started`,
//! `app_stopped`, `child_restarted`, `api`, `placement`). `GET
//! /api/events?after=SEQ&kinds=...` answers `{events, last_seq}` alone. The history, the events and the nodes down lately
//! are kept by the master in bounded buffers (`activity`); tree views are
//! asked of the root's node at most every [`VIEW_TTL`] however many pages
//! are open.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use futures_util::future::join_all;
use pool_proto::{AppStatus, AppSummary, NodeId, NodeStatus, TreeView};
use serde::{Deserialize, Serialize};

use super::context::{ApiError, CachedView, Http};
use crate::activity::{self, DownNode, Event, EventKind, Sample};
use crate::clock::now_ms;
use crate::node_requests;

/// The page.
const INDEX_HTML: &str = include_str!("dashboard/index.html");
/// Its stylesheet.
const DASHBOARD_CSS: &str = include_str!("dashboard/dashboard.css");
/// Its script.
const DASHBOARD_JS: &str = include_str!("dashboard/dashboard.js");
/// Its icon.
const FAVICON_SVG: &str = include_str!("dashboard/favicon.svg");

/// The page may load only what the master serves, and run no inline code:
/// nothing a node name or an exit reason could smuggle in would execute.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How long a tree view is reused: the page polls every second, so with
/// any number of pages open the root's node is asked about once a second.
pub(crate) const VIEW_TTL: Duration = Duration::from_millis(700);

/// How long the dashboard waits for a root's node to show its tree: less
/// than a poll interval, so one slow node cannot stall the page (its last
/// view is shown instead, marked stale).
const VIEW_TIMEOUT: Duration = Duration::from_millis(800);

/// The dashboard's routes: the page and its assets.
pub(super) fn assets() -> Router<Arc<Http>> {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/dashboard.css", get(css))
        .route("/assets/dashboard.js", get(js))
        .route("/assets/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
}

/// A static asset with its type; always revalidated, so a master upgrade
/// shows at the next reload.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response();
    if content_type.starts_with("text/html") {
        resp.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        resp.headers_mut()
            .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    resp
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", DASHBOARD_CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", DASHBOARD_JS)
}

async fn favicon() -> Response {
    asset("image/svg+xml", FAVICON_SVG)
}

/// `?since=MS&after=SEQ&kinds=K1,K2`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Since {
    /// Only history samples newer than this (ms since the epoch).
    #[serde(default)]
    since: u64,
    /// Only events after this one.
    #[serde(default)]
    after: u64,
    /// Only events of these kinds (comma-separated; all if left out).
    #[serde(default)]
    kinds: Option<String>,
}

/// The event kinds of `?kinds=`: all if none is given; an unknown name is
/// refused with the list of known ones.
fn parse_kinds(kinds: Option<&str>) -> Result<Vec<EventKind>, ApiError> {
    let Some(list) = kinds.filter(|k| !k.trim().is_empty()) else {
        return Ok(EventKind::ALL.to_vec());
    };
    list.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            EventKind::parse(k).ok_or_else(|| {
                let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                ApiError::bad_request(format!(
                    "unknown event kind {k:?}: use any of {}",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

/// The answer of `GET /api/events`.
#[derive(Debug, Serialize)]
struct Events {
    events: Vec<Event>,
    last_seq: u64,
}

/// `GET /api/events?after=SEQ&kinds=K1,K2`: the events feed alone, oldest
/// first, for scripts and for the dashboard's filter.
pub(super) async fn events(
    State(h): State<Arc<Http>>,
    Query(q): Query<Since>,
) -> Result<Response, ApiError> {
    let kinds = parse_kinds(q.kinds.as_deref())?;
    let pool = h.shared.lock();
    let body = Events {
        events: pool.activity.events_of(q.after, &kinds),
        last_seq: pool.activity.last_seq(),
    };
    drop(pool);
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// The answer of `GET /api/dashboard`.
#[derive(Debug, Serialize)]
struct Dashboard {
    now_ms: u64,
    step_ms: u64,
    window_ms: u64,
    master: MasterLine,
    summary: Summary,
    nodes: Vec<NodeCard>,
    trees: Vec<TreeCard>,
    events: Vec<Event>,
    last_seq: u64,
}

/// The header's line about the master.
#[derive(Debug, Serialize)]
struct MasterLine {
    /// Its node id: a new one means the master restarted (the page starts
    /// over).
    id: NodeId,
    name: String,
    placement: &'static str,
    node_timeout_ms: u64,
    /// Whether the HTTP operations are enabled (a token is configured).
    operations: bool,
}

/// The header's tiles.
#[derive(Debug, Default, Serialize)]
struct Summary {
    nodes_up: usize,
    nodes_down: usize,
    processes: u64,
    restarts_1m: u64,
    spawns_1m: u64,
    trees_running: usize,
    /// Trees waiting for a node able to take them (retried).
    trees_pending: usize,
    trees_failed: usize,
    /// Frames per second leaving all nodes, at the last sample.
    frames_per_s: f64,
}

/// A node's card.
#[derive(Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum NodeCard {
    /// A live worker.
    Up {
        #[serde(flatten)]
        status: NodeStatus,
        load: f64,
        traffic: Traffic,
        history: Vec<Sample>,
    },
    /// A worker that went down lately.
    Down {
        #[serde(flatten)]
        node: DownNode,
        history: Vec<Sample>,
    },
}

/// A node's cumulative traffic, as it last reported.
#[derive(Debug, Default, Serialize)]
struct Traffic {
    frames_out: u64,
    bytes_out: u64,
    frames_in: u64,
    bytes_in: u64,
}

/// A tree's card.
#[derive(Debug, Serialize)]
struct TreeCard {
    #[serde(flatten)]
    summary: AppSummary,
    /// The live tree (`null` if it could not be had).
    view: Option<TreeView>,
    /// The view is the last one known: the root's node did not answer now.
    stale: bool,
}

/// `GET /api/dashboard`.
pub(super) async fn data(
    State(h): State<Arc<Http>>,
    Query(q): Query<Since>,
) -> Result<Response, ApiError> {
    let kinds = parse_kinds(q.kinds.as_deref())?;
    let now = Instant::now();
    let shared = &h.shared;
    // 1. Everything that is in the master, under one short lock.
    let (mut dash, apps, down_names) = {
        let pool = shared.lock();
        let t = now_ms();
        let act = &pool.activity;
        let mut nodes = Vec::new();
        let mut summary = Summary {
            restarts_1m: act.restarts_last_minute(t),
            spawns_1m: act.placements_last_minute(t),
            ..Summary::default()
        };
        for status in pool.list_nodes(now) {
            let history = act.history_since(status.id, q.since);
            let traffic = pool
                .table
                .last_report(status.id)
                .map_or_else(Traffic::default, |r| Traffic {
                    frames_out: r.frames_out,
                    bytes_out: r.bytes_out,
                    frames_in: r.frames_in,
                    bytes_in: r.bytes_in,
                });
            summary.nodes_up += 1;
            summary.processes += status.procs;
            summary.frames_per_s += act.last_sample(status.id).map_or(0.0, |s| f64::from(s.4));
            nodes.push(NodeCard::Up {
                load: pool.table.load(status.id).unwrap_or(0.0),
                status,
                traffic,
                history,
            });
        }
        for d in act.down_nodes() {
            summary.nodes_down += 1;
            // The page has the history of a node it saw go down; a page
            // opened later gets it once.
            let history = if q.since == 0 {
                d.history.clone()
            } else {
                Vec::new()
            };
            nodes.push(NodeCard::Down {
                node: d.clone(),
                history,
            });
        }
        let apps = pool.app_summaries();
        for a in &apps {
            match a.status {
                AppStatus::Running => summary.trees_running += 1,
                AppStatus::Failed => summary.trees_failed += 1,
                AppStatus::Pending => summary.trees_pending += 1,
                AppStatus::Stopped => {}
            }
        }
        let down_names: HashMap<NodeId, String> = act
            .down_nodes()
            .map(|d| (d.status.id, d.status.name.clone()))
            .collect();
        let dash = Dashboard {
            now_ms: t,
            step_ms: activity::HISTORY_STEP_MS,
            window_ms: activity::DOWN_VISIBLE_MS,
            master: MasterLine {
                id: shared.identity.node,
                name: shared.config.name.clone(),
                placement: pool.settings.placement.as_str(),
                node_timeout_ms: u64::try_from(pool.settings.node_timeout.as_millis())
                    .unwrap_or(u64::MAX),
                operations: shared.config.http_token.is_some(),
            },
            summary,
            nodes,
            trees: Vec::new(),
            events: act.events_of(q.after, &kinds),
            last_seq: act.last_seq(),
        };
        (dash, apps, down_names)
    };
    // 2. The trees, from their roots' nodes, all at once.
    let views = join_all(apps.iter().map(|a| tree_view(&h, a))).await;
    dash.trees = apps
        .into_iter()
        .zip(views)
        .map(|(summary, (view, stale))| {
            let view = view.map(|mut v| {
                name_down_nodes(&mut v, &down_names);
                v
            });
            TreeCard {
                summary,
                view,
                stale,
            }
        })
        .collect();
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(dash)).into_response())
}

/// The view of one app: from the cache if fresh, else from its root's node
/// (within [`VIEW_TIMEOUT`]); the last known one, marked stale, if that
/// fails.
async fn tree_view(h: &Arc<Http>, app: &AppSummary) -> (Option<TreeView>, bool) {
    let now = Instant::now();
    if let Some(c) = h.views.lock().get(&app.id)
        && c.root == app.root
        && now.duration_since(c.at) < VIEW_TTL
    {
        return (Some(c.view.clone()), false);
    }
    match node_requests::tree_show_within(&h.shared, &app.id, VIEW_TIMEOUT).await {
        Ok(view) => {
            let mut cache = h.views.lock();
            // Apps that are gone leave the cache with them.
            if cache.len() > 4 * 1024 {
                cache.clear();
            }
            cache.insert(
                app.id.clone(),
                CachedView {
                    at: now,
                    root: app.root,
                    view: view.clone(),
                },
            );
            (Some(view), false)
        }
        Err(_) => {
            let last = h
                .views
                .lock()
                .get(&app.id)
                .filter(|c| c.root == app.root)
                .map(|c| c.view.clone());
            (last, true)
        }
    }
}

/// Replaces the ids of nodes that went down lately (left in a view because
/// they are no members any more) by their names.
fn name_down_nodes(view: &mut TreeView, names: &HashMap<NodeId, String>) {
    if let Some(node) = &view.node
        && let Ok(id) = node.parse::<NodeId>()
        && let Some(name) = names.get(&id)
    {
        view.node = Some(name.clone());
    }
    for child in view.children.iter_mut().flatten() {
        name_down_nodes(child, names);
    }
}
