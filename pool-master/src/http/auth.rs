//! The token check of the operations that change the pool: an extractor,
//! [`Authorized`], that every mutating handler takes first, so the check
//! runs before the body is even read.
//!
//! - no token configured: `403`, with how to enable the operations;
//! - no `Authorization: Bearer` header, or the wrong token: `401` with
//!   `WWW-Authenticate: Bearer`;
//! - the right token: the handler runs.
//!
//! The comparison takes the same time wherever a guess differs
//! ([`HttpToken::matches`](crate::HttpToken::matches)); the token is never
//! logged, and neither is what a client presented.
//!
//! Browsers cannot be turned against this from another site: a form cannot
//! set an `Authorization` header, and a script on another origin that sets
//! one needs a CORS preflight, which the master never grants.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pool_proto::ErrorCode;
use tracing::warn;

use super::context::{ApiError, Http};

#[cfg(test)]
mod tests;

/// Tokens shorter than this get a warning at startup.
pub(crate) const MIN_TOKEN_LEN: usize = 16;

/// Proof that the request carried the configured token.
#[derive(Debug)]
pub(crate) struct Authorized;

/// Why a request was not let through.
#[derive(Debug)]
pub(crate) struct Denied(ApiError);

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let unauthorized = self.0.status == StatusCode::UNAUTHORIZED;
        let mut resp = self.0.into_response();
        if unauthorized {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"spawnpool\""),
            );
        }
        resp
    }
}

impl FromRequestParts<Arc<Http>> for Authorized {
    type Rejection = Denied;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Http>,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = &state.shared.config.http_token else {
            return Err(Denied(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Refused,
                "operations that change the pool are disabled over HTTP: start pool-master with \
                 --http-token-file FILE (or POOL_HTTP_TOKEN, or http_token in its config file) \
                 and send `Authorization: Bearer <token>`",
            )));
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        match presented {
            Some(p) if token.matches(p.as_bytes()) => Ok(Authorized),
            other => {
                warn!(method = %parts.method, path = %parts.uri.path(),
                    presented = other.is_some(), "HTTP operation refused: missing or wrong token");
                Err(Denied(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Refused,
                    match other {
                        None => {
                            "this operation needs `Authorization: Bearer <token>` with the master's HTTP token"
                        }
                        Some(_) => {
                            "wrong token: send the master's HTTP token as `Authorization: Bearer <token>`"
                        }
                    },
                )))
            }
        }
    }
}

/// The token of an `Authorization` value of the `Bearer` scheme (the scheme
/// name is case-insensitive, RFC 9110).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}
