//! `earshot serve`: runs the configured sources until SIGTERM or Ctrl-C, with the admin listener,
//! the review console, library refresh, the sweep and the review timeouts beside them. Every task runs on one [`TaskTracker`]; on a signal
//! the sources stop taking work, jobs in flight finish, and nothing outlives the return.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::CommandError;
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::{admin, sources, storage};

/// Serves until a signal arrives.
///
/// # Errors
/// No source is configured, an engine cannot load, or a source cannot start (its address is
/// taken): a daemon running with half its sources would look healthy and miss events.
pub async fn run(config: Config) -> Result<(), CommandError> {
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("Signal received; finishing jobs in flight.");
        signals.cancel();
    });
    serve(config, shutdown).await
}

/// Serves until `shutdown` is cancelled.
///
/// # Errors
/// See [`run`].
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), CommandError> {
    let sqs_config = config.sources.sqs.clone();
    let webhook_config = config.sources.webhook.clone();
    if sqs_config.is_none() && webhook_config.is_none() {
        return Err(CommandError::Usage(
            "no source configured: add a [sources.sqs] or [sources.webhook] section".to_owned(),
        ));
    }
    let admin_listen = config.admin.listen.clone();
    let refresh_every = config.refresh_every();
    let asynchronous = config.async_jobs.token_key.is_some();
    let sweep_every = Duration::from_secs(config.async_jobs.sweep_secs);
    let pipeline = Arc::new(Pipeline::new(config).await?);
    let tracker = TaskTracker::new();
    if let Some(every) = refresh_every {
        // Library entries added or removed while serving take effect without a restart.
        // Rules with `retro.auto` then hunt the kept prints for what was added.
        let pipeline = pipeline.clone();
        let hunts = pipeline.rules().all().iter().any(|r| r.retro.auto);
        tracker.spawn(every_until(every, false, shutdown.clone(), move || {
            let pipeline = pipeline.clone();
            async move {
                pipeline.refresh_engines().await;
                if hunts {
                    crate::retro::hunt_automatically(&pipeline).await;
                }
            }
        }));
    }
    if asynchronous {
        // Jobs waiting on a provider: late results polled for, overdue ones called back, complete
        // ones finished (also those another replica, or a process before a restart, submitted).
        let pipeline = pipeline.clone();
        tracker.spawn(every_until(
            sweep_every,
            true,
            shutdown.clone(),
            move || {
                let pipeline = pipeline.clone();
                async move { pipeline.sweep().await }
            },
        ));
    }

    if !pipeline.review_buckets().is_empty() {
        tracker.spawn(review_timeouts(pipeline.clone(), shutdown.clone()));
    }

    let (failed, mut failures) = tokio::sync::mpsc::unbounded_channel::<CommandError>();
    let fail = {
        let (failed, shutdown) = (failed.clone(), shutdown.clone());
        move |error: CommandError| {
            tracing::error!(%error, "A source failed; stopping.");
            shutdown.cancel();
            let _ = failed.send(error);
        }
    };
    if let Some(sqs_config) = sqs_config {
        let (pipeline, stop) = (pipeline.clone(), shutdown.clone());
        tracker.spawn(async move {
            let sqs =
                storage::sqs_client(&pipeline.config.s3, sqs_config.endpoint_url.as_deref()).await;
            sources::sqs::run(pipeline, sqs, sqs_config, stop).await;
        });
    }
    if let Some(webhook_config) = webhook_config {
        let (pipeline, stop, fail) = (pipeline.clone(), shutdown.clone(), fail.clone());
        tracker.spawn(async move {
            let listen = webhook_config.listen.clone();
            if let Err(e) = sources::webhook::run(pipeline, webhook_config, stop).await {
                fail(CommandError::failed(
                    format!("webhook listener on {listen}"),
                    e,
                ));
            }
        });
    }
    if let Some(console) = pipeline.config.console.clone() {
        tracker.spawn(keep_results_packed(pipeline.clone(), shutdown.clone()));
        let (stop, fail) = (shutdown.clone(), fail.clone());
        let router = crate::console::router(pipeline.clone(), console.clone());
        tracker.spawn(async move {
            if let Err(e) = crate::admin::serve(&console.listen, router, stop).await {
                fail(CommandError::failed(
                    format!("console listener on {}", console.listen),
                    e,
                ));
            }
        });
    }
    if let Some(listen) = admin_listen {
        let (router, stop, fail) = (admin::router(pipeline.clone()), shutdown.clone(), fail);
        tracker.spawn(async move {
            if let Err(e) = admin::serve(&listen, router, stop).await {
                fail(CommandError::failed(
                    format!("admin listener on {listen}"),
                    e,
                ));
            }
        });
    } else {
        drop(fail);
    }
    drop(failed);
    tracker.close();
    tracker.wait().await;
    // Work the listeners started for later (finishing jobs whose provider was answered).
    pipeline.tasks.close();
    pipeline.tasks.wait().await;
    match failures.try_recv() {
        Ok(error) => Err(error),
        Err(_) => Ok(()),
    }
}

/// Lets `on_review_timeout` decide overdue review items, every `async_jobs.sweep_secs`, until
/// `stop` is cancelled.
pub(crate) async fn review_timeouts(pipeline: Arc<Pipeline>, stop: CancellationToken) {
    let every = Duration::from_secs(pipeline.config.async_jobs.sweep_secs.max(1));
    every_until(every, true, stop, move || {
        let pipeline = pipeline.clone();
        async move {
            let decided = pipeline.expire_reviews().await;
            if decided > 0 {
                tracing::info!(
                    decided,
                    "Overdue review items decided by on_review_timeout."
                );
            }
        }
    })
    .await;
}

/// How often a process serving the console packs the results of today and yesterday, so that
/// History reads them from their packs.
const PACK_EVERY: Duration = Duration::from_secs(600);

/// Keeps the recent days of results packed (see [`crate::state::review`]), every
/// [`PACK_EVERY`] from its start, until `stop` is cancelled: the console's History then reads a
/// day with a listing, its pack and at most ten minutes of rows, never every row.
pub(crate) async fn keep_results_packed(pipeline: Arc<Pipeline>, stop: CancellationToken) {
    every_until(PACK_EVERY, true, stop, move || {
        let pipeline = pipeline.clone();
        async move { pipeline.pack_recent_results().await }
    })
    .await;
}

/// Runs `tick` every `period` until `stop` is cancelled, the first time at once or one period
/// from now.
async fn every_until<F, Fut>(period: Duration, at_once: bool, stop: CancellationToken, tick: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if !at_once {
        interval.tick().await;
    }
    loop {
        tokio::select! {
            _ = interval.tick() => tick().await,
            () = stop.cancelled() => return,
        }
    }
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
