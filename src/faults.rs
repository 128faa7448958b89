//! Named points where a test stops or slows this process, as a crash, `kill -9` or a stall would
//! there: with `EARSHOT_CRASH_AT=<point>` in its environment the process aborts on reaching the
//! point; with `EARSHOT_PAUSE_AT=<point>:<seconds>` it waits there. The integration tests use them
//! to prove that what a crashed process left is finished exactly once, and to make two processes
//! meet; unset (as in production), a point costs one environment lookup.

/// Aborts the process if `EARSHOT_CRASH_AT` names this point.
pub fn point(name: &str) {
    if std::env::var("EARSHOT_CRASH_AT").is_ok_and(|at| at == name) {
        tracing::error!(point = name, "EARSHOT_CRASH_AT: stopping the process here.");
        std::process::abort();
    }
}

/// Waits if `EARSHOT_PAUSE_AT` names this point, then aborts if `EARSHOT_CRASH_AT` does.
pub async fn pause(name: &str) {
    let secs = std::env::var("EARSHOT_PAUSE_AT").ok().and_then(|at| {
        let (point, secs) = at.split_once(':')?;
        (point == name).then(|| secs.parse::<f64>().ok()).flatten()
    });
    if let Some(secs) = secs {
        tracing::info!(point = name, secs, "EARSHOT_PAUSE_AT: waiting here.");
        tokio::time::sleep(std::time::Duration::from_secs_f64(secs)).await;
    }
    point(name);
}
