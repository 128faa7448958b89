//! `earshot-lambda`: the AWS Lambda bootstrap (`provided.al2023`). The init phase does only what
//! every invocation needs: read the config (`EARSHOT_CONFIG`, else `config/earshot.toml` in the
//! package, then `EARSHOT_…` variables), build the S3 client, and load the engines (the local
//! engine's library index). Each invocation then runs [`earshot::sources::lambda::handle`]; see
//! there which outcomes are retried.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use earshot::config::Config;
use earshot::pipeline::Pipeline;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use tokio::sync::Mutex;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = Instant::now();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_writer(std::io::stderr)
        .init();

    let config_path = std::env::var_os("EARSHOT_CONFIG").map(PathBuf::from);
    let config = Config::load(config_path.as_deref()).inspect_err(|e| {
        tracing::error!(error = %e, "Configuration refused; every invocation will fail.");
    })?;
    let refresh = config.refresh_every();
    let pipeline = Arc::new(Pipeline::new(config).await?);
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        "Init done: config, S3 client and engines ready."
    );

    let last_refresh = Arc::new(Mutex::new(Instant::now()));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (pipeline, last_refresh) = (pipeline.clone(), last_refresh.clone());
        async move {
            // A warm environment lives for hours: pick up library changes between invocations.
            if let Some(every) = refresh {
                let mut last = last_refresh.lock().await;
                if last.elapsed() >= every {
                    pipeline.refresh_engines().await;
                    *last = Instant::now();
                }
            }
            let request_id = event.context.request_id.clone();
            let answer = earshot::sources::lambda::handle(&pipeline, event.payload).await;
            if let Err(e) = &answer {
                tracing::error!(%request_id, error = %e, "Invocation failed.");
            }
            answer.map_err(Error::from)
        }
    }))
    .await
}
