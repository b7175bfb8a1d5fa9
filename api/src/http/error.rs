//! [`ApiError`]: the one error type of the HTTP API and its JSON shape `{error, message}`.
//!
//! Client errors say what was wrong (a bad parameter names it); server errors are logged with
//! their cause and answered with a generic message.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Everything a handler or middleware can answer instead of data.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No bearer token, or one that is not configured (401).
    #[error("a valid bearer token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    /// The token's role or station scope does not cover the request (403).
    #[error("{0}")]
    Forbidden(String),
    /// A query or path parameter is missing, unknown or malformed (400).
    #[error("parameter `{param}`: {reason}")]
    BadParam {
        /// The parameter's name.
        param: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No such route or object (404).
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The feature behind the route is not available in this build or deployment (503).
    #[error("{0}")]
    Unavailable(String),
    /// The caller already holds as many of a limited resource (open streams, running jobs) as
    /// a token may (429, with `Retry-After`).
    #[error("{what}")]
    TooMany {
        /// What is limited, and the limit.
        what: String,
        /// Seconds after which asking again may succeed.
        retry_after_s: u64,
    },
    /// The server is busy with other callers' work and cannot start this request's in time
    /// (503, with `Retry-After`).
    #[error("{reason}")]
    Busy {
        /// What the request waited for.
        reason: String,
        /// Seconds after which asking again may succeed.
        retry_after_s: u64,
    },
    /// The request's work did not finish within the route's deadline and was stopped (504).
    #[error("{0}")]
    Timeout(String),
    /// The request target (path and query) is longer than the server reads (414).
    #[error("the request target is longer than {0} bytes")]
    UriTooLong(usize),
    /// The request's header section is larger than the server reads (431).
    #[error("the request headers exceed {0}")]
    HeadersTooLarge(String),
    /// Anything else; logged, never shown (500).
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A [`ApiError::BadParam`].
    pub fn param(param: &str, reason: impl Into<String>) -> ApiError {
        ApiError::BadParam {
            param: param.to_owned(),
            reason: reason.into(),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadParam { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) | ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BadParam { .. } => "bad_parameter",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::TooMany { .. } => "too_many_requests",
            ApiError::Busy { .. } => "busy",
            ApiError::Timeout(_) => "timeout",
            ApiError::UriTooLong(_) => "uri_too_long",
            ApiError::HeadersTooLarge(_) => "headers_too_large",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Internal(e)
    }
}

/// The body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(error) = &self {
            tracing::error!(error = format!("{error:#}"), "Request failed");
        }
        let status = self.status();
        let retry_after = match &self {
            ApiError::TooMany { retry_after_s, .. } | ApiError::Busy { retry_after_s, .. } => {
                Some(*retry_after_s)
            }
            _ => None,
        };
        let body = Json(ErrorBody {
            error: self.code(),
            message: self.to_string(),
        });
        let mut resp = (status, body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(s) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        resp
    }
}

/// Handlers' result type.
pub type ApiResult<T> = Result<T, ApiError>;
