//! `ApiError`: an HTTP status with a plain-text message, as Consul answers errors.

use crate::agent::AgentError;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    /// 400 with a message.
    pub fn bad_request(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: m.into(),
        }
    }
    /// 404 with a message.
    pub fn not_found(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: m.into(),
        }
    }
    /// 500 with a message.
    pub fn internal(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: m.into(),
        }
    }
    /// Any status.
    pub fn new(status: StatusCode, m: impl Into<String>) -> Self {
        ApiError {
            status,
            message: m.into(),
        }
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::BadRequest(m) => ApiError::bad_request(m),
            AgentError::NotFound(m) => ApiError::not_found(m),
            AgentError::Store(StoreError::Invalid(m)) => ApiError::bad_request(m),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [("Content-Type", "text/plain; charset=utf-8")],
            self.message,
        )
            .into_response()
    }
}
