//! The operational endpoints: `/healthz` (the process answers), `/readyz` (every rule's bucket and
//! every engine answer), `/metrics` (Prometheus text), and `POST /engines/<engine>/results/<token>`
//! where asynchronous engines (AMS, Shumei) deliver their results. Served on the webhook's listener
//! and, with `[admin] listen`, on a listener of their own; [`serve`] runs either listener.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::engines::Headers;
use crate::pipeline::Pipeline;

/// The three endpoints, to be merged into a listener's router.
pub fn router(pipeline: Arc<Pipeline>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/engines/{engine}/results/{token}", post(engine_result))
        .with_state(pipeline)
}

async fn engine_result(
    State(pipeline): State<Arc<Pipeline>>,
    Path((engine, token)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let mut taken = Headers::default();
    for (name, value) in &headers {
        if let Ok(value) = value.to_str() {
            taken.insert(name.as_str(), value);
        }
    }
    let (status, message) = match pipeline
        .receive_result(&engine, &token, &taken, &body)
        .await
    {
        Ok(received) => {
            // The provider is answered as soon as its result is stored; the block and the
            // callback follow without holding its connection (tracked, so shutdown waits).
            let message = received.message();
            let finisher = pipeline.clone();
            pipeline
                .tasks
                .spawn(async move { finisher.finish_after(&received).await });
            (StatusCode::OK, message.to_owned())
        }
        Err(rejection) => (
            StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            rejection.to_string(),
        ),
    };
    pipeline
        .metrics
        .webhook_request("engine-result", status.as_u16());
    (status, format!("{message}\n"))
}

async fn readyz(State(pipeline): State<Arc<Pipeline>>) -> impl IntoResponse {
    let problems = pipeline.readiness().await;
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        tracing::warn!(?problems, "Not ready.");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", problems.join("\n")),
        )
    }
}

async fn metrics(State(pipeline): State<Arc<Pipeline>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        pipeline.metrics.render(),
    )
}

/// Serves `router` on `listen` until `shutdown` is cancelled.
///
/// # Errors
/// The address could not be bound.
pub async fn serve(
    listen: &str,
    router: Router,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "Listening.");
    // With the peer's address, for the handlers that ask (the console's trusted proxy).
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
