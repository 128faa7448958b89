//! `earshot console`: the review console alone (without the sources), with the review timeouts
//! beside it; and `earshot hash-password`.

use std::io::Read;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::CommandError;
use crate::config::Config;
use crate::pipeline::Pipeline;

/// Serves the console until SIGTERM or Ctrl-C.
///
/// # Errors
/// No `[console]` section, an engine cannot load, or the address is taken.
pub async fn run(config: Config) -> Result<(), CommandError> {
    let Some(console) = config.console.clone() else {
        return Err(CommandError::Usage(
            "no [console] section: add one with listen, session_key and users".to_owned(),
        ));
    };
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        super::serve::wait_for_signal().await;
        signals.cancel();
    });
    let pipeline = Arc::new(
        Pipeline::new(config)
            .await
            .map_err(|e| CommandError::failed("loading the engines", e))?,
    );
    let sweep = tokio::spawn(super::serve::review_timeouts(
        pipeline.clone(),
        shutdown.clone(),
    ));
    let packing = tokio::spawn(super::serve::keep_results_packed(
        pipeline.clone(),
        shutdown.clone(),
    ));
    let router = crate::console::router(pipeline.clone(), console.clone());
    let served = crate::admin::serve(&console.listen, router, shutdown.clone()).await;
    shutdown.cancel();
    let _ = sweep.await;
    let _ = packing.await;
    served.map_err(|e| CommandError::failed(format!("console listener on {}", console.listen), e))
}

/// Reads a password from stdin (one line) and prints its argon2id hash.
///
/// # Errors
/// Nothing was read.
pub fn hash_password_from_stdin() -> Result<(), CommandError> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let password = text.lines().next().unwrap_or("");
    if password.is_empty() {
        return Err(CommandError::Usage(
            "give the password on stdin, e.g. `earshot hash-password < file`".to_owned(),
        ));
    }
    let hash = crate::console::auth::hash_password(password).map_err(CommandError::Failed)?;
    println!("{hash}");
    Ok(())
}
