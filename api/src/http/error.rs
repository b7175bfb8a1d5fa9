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

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadParam { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
        resp
    }
}

/// Handlers' result type.
pub type ApiResult<T> = Result<T, ApiError>;
