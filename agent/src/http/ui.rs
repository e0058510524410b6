//! The web UI at `/ui/` (with `-ui`, `ui_config.enabled`, or `-dev`): one page embedded in
//! the binary that drives the HTTP API (services and their health, nodes, KV browser and
//! editor, sessions, datacenter switcher) and refreshes itself through blocking queries.

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

const INDEX: &str = include_str!("../../ui/index.html");

/// `GET /ui/` and everything below it (the page routes in the browser).
pub async fn index(State(agent): State<AppState>) -> Response {
    if !agent.config().ui_enabled {
        return (
            StatusCode::NOT_FOUND,
            "UI is disabled; start the agent with -ui or ui_config { enabled = true }",
        )
            .into_response();
    }
    (
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

/// `GET /ui` redirects to `/ui/`.
pub async fn redirect() -> Redirect {
    Redirect::permanent("/ui/")
}
