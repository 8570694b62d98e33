//! What every HTTP handler shares: [`Http`], the handlers' state (the
//! master, and the dashboard's cache of tree views), and [`ApiError`], the
//! JSON error they all answer. A leaf of `http/`: the routes (`http.rs`),
//! the token check, the operations and the dashboard import it, and it
//! imports none of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use pool_proto::{ErrorCode, Pid, RemoteError, TreeView};

use crate::shared::Shared;

/// What every handler gets: the master, and the dashboard's cache of tree
/// views.
#[derive(Debug)]
pub(crate) struct Http {
    /// The master's shared state.
    pub(super) shared: Arc<Shared>,
    /// The last tree view of each running app, so that several open
    /// dashboards do not each ask the root's node every second.
    pub(super) views: ViewCache,
}

/// The last view of each tree.
#[derive(Debug, Default)]
pub(crate) struct ViewCache(Mutex<HashMap<String, CachedView>>);

/// One tree's last view.
#[derive(Clone, Debug)]
pub(super) struct CachedView {
    /// When it was fetched.
    pub(super) at: Instant,
    /// The root it shows (a new root means a new view is needed).
    pub(super) root: Option<Pid>,
    /// The view.
    pub(super) view: TreeView,
}

impl ViewCache {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedView>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An API error as JSON: `{"error": message, "code": code}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// The HTTP status.
    pub(super) status: StatusCode,
    /// The code and the message for people.
    error: RemoteError,
}

impl ApiError {
    /// An error with an explicit status.
    pub(super) fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error: RemoteError::new(code, message),
        }
    }

    /// A malformed request.
    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }
}

impl From<RemoteError> for ApiError {
    fn from(error: RemoteError) -> Self {
        let status = match error.code {
            ErrorCode::NotFound | ErrorCode::UnknownNode => StatusCode::NOT_FOUND,
            ErrorCode::BadRequest
            | ErrorCode::BadSpec
            | ErrorCode::BadArgs
            | ErrorCode::UnknownFunction => StatusCode::BAD_REQUEST,
            ErrorCode::AlreadyRunning | ErrorCode::DuplicateName => StatusCode::CONFLICT,
            ErrorCode::NoNode | ErrorCode::Overloaded | ErrorCode::Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::Refused => StatusCode::FORBIDDEN,
            ErrorCode::Internal => StatusCode::BAD_GATEWAY,
        };
        ApiError { status, error }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error.message, "code": self.error.code });
        (self.status, Json(body)).into_response()
    }
}
