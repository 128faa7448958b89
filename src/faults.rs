//! Named points where a test stops this process abruptly, as a crash or `kill -9` would there:
//! with `EARSHOT_CRASH_AT=<point>` in its environment the process aborts on reaching the point.
//! The integration tests use it to prove that what a crashed process left is finished exactly
//! once; unset (as in production), a point costs one environment lookup.

/// Aborts the process if `EARSHOT_CRASH_AT` names this point.
pub fn point(name: &str) {
    if std::env::var("EARSHOT_CRASH_AT").is_ok_and(|at| at == name) {
        tracing::error!(point = name, "EARSHOT_CRASH_AT: stopping the process here.");
        std::process::abort();
    }
}
