//! What a block changed, and what a person undid: one [`BlockRecord`] per blocked object version
//! at `blocks/<key hash>/<trace_id>.json`, written *before* the block with the object's prior
//! state, so that a block interrupted at any point can still be undone exactly. A restore marks
//! the record first ([`Restore`] with `done = false`), then acts, then marks it done; a record
//! marked so keeps the same bytes at the same key from being blocked again, whatever event arrives.
//!
//! The append-only audit log ([`append_audit`]) keeps one object per entry, never overwritten,
//! under keys that sort by time. The allow-list ([`allow`]) holds audio a person marked normal.

use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};

use super::{StateError, get_json, list_json, put_json};
use crate::block::prior::PriorState;
use crate::config::BlockMode;
use crate::layout;

/// A blocked object version and how to undo its block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockRecord {
    pub trace_id: String,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    /// Without quotes.
    pub etag: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    pub rule: String,
    pub mode: BlockMode,
    /// Seconds since the Unix epoch, when the record was written (just before the block).
    pub blocked_at: u64,
    pub prior: PriorState,
    /// The library entries whose match caused the block.
    #[serde(default)]
    pub references: Vec<String>,
    /// Set when a person restores the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Restore>,
}

/// A restore, begun or done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    pub by: String,
    pub at: u64,
    pub reason: String,
    /// False while the restore is under way (an interrupted one is finished by running it again).
    pub done: bool,
    /// Also kept from being blocked again anywhere (the allow-list).
    #[serde(default)]
    pub mark_normal: bool,
}

impl BlockRecord {
    pub fn sha256_bytes(&self) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.sha256, &mut out).ok()?;
        Some(out)
    }
}

/// Writes a block record: before the block (the caller first checks that none exists for this
/// version, since a block run again after an interruption must keep the state from before the
/// first run), and again to mark a restore.
///
/// # Errors
/// S3 failed.
pub async fn update_block(s3: &Client, record: &BlockRecord) -> Result<(), StateError> {
    let key = layout::block_record_key(&record.key, &record.trace_id);
    put_json(s3, &record.bucket, &key, record).await
}

/// Writes the block record of a version unless one exists (`If-None-Match: *`): of two
/// processes blocking the same version at once, the first keeps the state from before the block
/// (the second may read the object already blocked). True when this call wrote it.
///
/// # Errors
/// S3 failed.
pub async fn create_block(s3: &Client, record: &BlockRecord) -> Result<bool, StateError> {
    let key = layout::block_record_key(&record.key, &record.trace_id);
    super::create_json(s3, &record.bucket, &key, record).await
}

/// The block record of one version, if any.
///
/// # Errors
/// S3 failed or the record is not valid.
pub async fn block_record(
    s3: &Client,
    bucket: &str,
    key: &str,
    trace_id: &str,
) -> Result<Option<BlockRecord>, StateError> {
    get_json(s3, bucket, &layout::block_record_key(key, trace_id)).await
}

/// Every block record of one key, oldest first.
///
/// # Errors
/// S3 failed or a record is not valid.
pub async fn blocks_of_key(
    s3: &Client,
    bucket: &str,
    key: &str,
) -> Result<Vec<BlockRecord>, StateError> {
    records_under(s3, bucket, &layout::blocks_of_key(key)).await
}

/// Every block record in the bucket.
///
/// # Errors
/// S3 failed or a record is not valid.
pub async fn all_blocks(s3: &Client, bucket: &str) -> Result<Vec<BlockRecord>, StateError> {
    records_under(s3, bucket, layout::BLOCKS_PREFIX).await
}

async fn records_under(
    s3: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<BlockRecord>, StateError> {
    let mut found: Vec<BlockRecord> = list_json(s3, bucket, prefix)
        .await?
        .into_iter()
        .map(|(_, record)| record)
        .collect();
    found.sort_by_key(|r| r.blocked_at);
    Ok(found)
}

/// The restore that keeps these bytes at this key from being blocked again, if a person restored
/// them (begun counts: its copy may already be back and its event on the way).
///
/// # Errors
/// S3 failed or a record is not valid.
pub async fn restored(
    s3: &Client,
    bucket: &str,
    key: &str,
    sha256: &str,
) -> Result<Option<Restore>, StateError> {
    Ok(blocks_of_key(s3, bucket, key)
        .await?
        .into_iter()
        .rev()
        .find(|r| r.sha256 == sha256 && r.restore.is_some())
        .and_then(|r| r.restore))
}

/// One entry of the audit log: who did what to which object, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: u64,
    /// `earshot` for what the daemon decided; a person's name otherwise.
    pub by: String,
    /// `block`, `restore`, `mark-normal`, `scan`.
    pub action: String,
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    pub reason: String,
    /// Anything else worth keeping (scores, the prior state, counts).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// Appends an entry to the bucket's audit log: a new object that is never overwritten.
///
/// # Errors
/// S3 failed.
pub async fn append_audit(s3: &Client, entry: &AuditEntry) -> Result<String, StateError> {
    let written = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let key = audit_entry_key(written, fastrand::u32(..));
    if !super::create_json(s3, &entry.bucket, &key, entry).await? {
        return Err(StateError::corrupt(
            &entry.bucket,
            &key,
            "an audit entry already has this key; nothing was overwritten",
        ));
    }
    Ok(key)
}

/// The key of an audit entry appended at `written` (since the epoch): seconds and nanoseconds of
/// that one instant, so keys sort in the order entries were appended, whatever time the entry
/// itself names (an action's time is taken when it starts, and a restore started in one second
/// may append in the next); the random part keeps two writers of one nanosecond apart.
fn audit_entry_key(written: std::time::Duration, random: u32) -> String {
    let id = format!("{:09}-{random:08x}", written.subsec_nanos());
    layout::audit_key(written.as_secs(), &id)
}

/// The audit log, oldest first.
///
/// # Errors
/// S3 failed or an entry is not valid.
pub async fn audit_log(s3: &Client, bucket: &str) -> Result<Vec<AuditEntry>, StateError> {
    Ok(list_json(s3, bucket, layout::AUDIT_PREFIX)
        .await?
        .into_iter()
        .map(|(_, entry)| entry)
        .collect())
}

/// Audio a person marked normal: never blocked again, by exact bytes or by fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowed {
    pub sha256: String,
    pub by: String,
    pub at: u64,
    pub reason: String,
    /// Where the audio was when it was marked.
    pub source: String,
    /// Whether its fingerprint is kept beside it.
    pub fingerprint: bool,
}

/// Adds audio to the allow-list (with its fingerprint, when there is one).
///
/// # Errors
/// S3 failed.
pub async fn allow(
    s3: &Client,
    bucket: &str,
    allowed: &Allowed,
    fingerprint: Option<&[u8]>,
) -> Result<(), StateError> {
    if let Some(bytes) = fingerprint {
        let key = layout::allow_print_key(&allowed.sha256);
        super::put_bytes(s3, bucket, &key, bytes.to_vec()).await?;
    }
    put_json(s3, bucket, &layout::allow_key(&allowed.sha256), allowed).await
}

/// The allow-list entry for these exact bytes, if any.
///
/// # Errors
/// S3 failed or the entry is not valid.
pub async fn allowed(
    s3: &Client,
    bucket: &str,
    sha256: &str,
) -> Result<Option<Allowed>, StateError> {
    get_json(s3, bucket, &layout::allow_key(sha256)).await
}

/// Every allow-listed fingerprint in the bucket, with its entry.
///
/// # Errors
/// S3 failed or an entry is not valid.
pub async fn allowed_prints(
    s3: &Client,
    bucket: &str,
) -> Result<Vec<(Allowed, Vec<u8>)>, StateError> {
    let mut found = Vec::new();
    for (_, entry) in list_json::<Allowed>(s3, bucket, layout::ALLOW_PREFIX).await? {
        if !entry.fingerprint {
            continue;
        }
        let key = layout::allow_print_key(&entry.sha256);
        if let Some(bytes) = super::get_bytes(s3, bucket, &key).await? {
            found.push((entry, bytes));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn audit_keys_sort_in_the_order_entries_were_appended() {
        // A block appended at 11.5 s, then a restore that started at 11.99 s (its entry says 11)
        // and appended at 12.05 s: the restore sorts after the block.
        let block = audit_entry_key(Duration::from_millis(11_500), u32::MAX);
        let restore = audit_entry_key(Duration::from_millis(12_050), 0);
        assert!(block < restore, "{block} vs {restore}");
        // Within one second, by nanoseconds.
        let first = audit_entry_key(Duration::new(11, 5), u32::MAX);
        let second = audit_entry_key(Duration::new(11, 40), 0);
        assert!(first < second, "{first} vs {second}");
        assert!(first.starts_with(layout::AUDIT_PREFIX));
    }
}
