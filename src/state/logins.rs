//! The console's failed logins, kept in the bucket so that a lockout holds across replicas:
//! each failure is its own empty object, `console/login-failures/<sha256 of the name>/<seconds>-
//! <random>`, written by whichever replica refused the password. Appending never loses a count
//! when two replicas refuse at once (no read-modify-write), and one listing counts a name's
//! recent failures. A successful login deletes them; failures older than the window are deleted
//! when the name is next counted.

use aws_sdk_s3::Client;
use sha2::{Digest, Sha256};

use super::{StateError, delete, put_bytes};
use crate::layout;
use crate::storage::object;

fn prefix(name: &str) -> String {
    layout::login_failures_prefix(&hex::encode(Sha256::digest(name.as_bytes())))
}

/// When a failure key was written (seconds), from its name.
fn written_at(key: &str) -> Option<u64> {
    key.rsplit('/').next()?.split_once('-')?.0.parse().ok()
}

/// The failed logins of `name` since `since` (seconds); older ones are deleted on the way.
///
/// # Errors
/// S3 failed.
pub async fn failures_since(
    s3: &Client,
    bucket: &str,
    name: &str,
    since: u64,
) -> Result<usize, StateError> {
    let mut recent = 0;
    for listed in object::list(s3, bucket, &prefix(name)).await? {
        match written_at(&listed.key) {
            Some(at) if at >= since => recent += 1,
            _ => {
                if let Err(e) = delete(s3, bucket, &listed.key).await {
                    tracing::debug!(key = %listed.key, error = %e, "Old login failure not deleted.");
                }
            }
        }
    }
    Ok(recent)
}

/// Counts a failed login of `name` at `now`.
///
/// # Errors
/// S3 failed.
pub async fn record_failure(
    s3: &Client,
    bucket: &str,
    name: &str,
    now: u64,
) -> Result<(), StateError> {
    let key = format!("{}{now:011}-{:016x}", prefix(name), fastrand::u64(..));
    put_bytes(s3, bucket, &key, Vec::new()).await
}

/// Forgets the failed logins of `name` (it logged in).
///
/// # Errors
/// S3 failed.
pub async fn clear(s3: &Client, bucket: &str, name: &str) -> Result<(), StateError> {
    for listed in object::list(s3, bucket, &prefix(name)).await? {
        delete(s3, bucket, &listed.key).await?;
    }
    Ok(())
}
