//! Blocking (DESIGN §5): make the object private, or move it to the backup directory.
//!
//! Every step is idempotent and each is checked against what S3 holds, so an interruption between
//! any two S3 calls loses nothing and running the block again completes it:
//!
//! `move`: (1) HEAD the backup; if it does not already hold these exact bytes, (2) server-side copy
//! with `MetadataDirective=COPY`, `TaggingDirective=COPY` and a SHA-256 checksum, pinned to the
//! version/ETag moderated; (3) verify the backup (size and SHA-256); (4) re-check that the original
//! is still the version moderated, then delete it. The original is never deleted before a verified
//! copy exists.
//!
//! `acl-private`: `PutObjectAcl private`, then read the ACL back to prove no public grant remains.

pub mod prior;

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, MetadataDirective, ObjectCannedAcl, Tag, Tagging,
    TaggingDirective,
};
use base64::Engine as _;

use crate::config::BlockMode;
use crate::job::unquote;
use crate::layout::{self, backup_key};
use crate::storage::{S3Failure, encode_key};

/// The object version that was moderated and is to be blocked.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub version_id: Option<&'a str>,
    /// Without quotes.
    pub etag: &'a str,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// How an object was blocked; the callback's `forbidden_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    Acl = 1,
    Moved = 2,
}

/// The points between S3 calls of a move, where [`move_object`] reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveStep {
    Copied,
    Verified,
    Deleted,
}

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error(
        "bucket {bucket} refuses object ACLs ({code}), so `acl-private` cannot block s3://{bucket}/{key}; \
         use block.mode = \"move\" for this rule, or enable ACLs on the bucket (S3 Object Ownership \
         \"bucket owner preferred\")"
    )]
    AclNotSupported {
        bucket: String,
        key: String,
        code: String,
    },
    #[error("s3://{bucket}/{key} still grants public access after PutObjectAcl private: {grants}")]
    StillPublic {
        bucket: String,
        key: String,
        grants: String,
    },
    #[error("s3://{bucket}/{key} is gone and no backup holds it; nothing left to block")]
    Gone { bucket: String, key: String },
    #[error(
        "s3://{bucket}/{key} was replaced by a newer upload before it could be blocked; the newer one is judged on its own"
    )]
    Changed { bucket: String, key: String },
    #[error("the backup s3://{bucket}/{backup_key} does not match the original: {detail}")]
    CopyMismatch {
        bucket: String,
        backup_key: String,
        detail: String,
    },
    #[error("S3 {operation} on s3://{bucket}/{key} failed: {failure}")]
    S3 {
        operation: &'static str,
        bucket: String,
        key: String,
        failure: S3Failure,
    },
    #[error("block interrupted after {step:?} (injected)")]
    Interrupted { step: MoveStep },
}

impl BlockError {
    /// True when running the block again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            BlockError::S3 { failure, .. } => failure.is_transient(),
            BlockError::CopyMismatch { .. } | BlockError::Interrupted { .. } => true,
            BlockError::AclNotSupported { .. }
            | BlockError::StillPublic { .. }
            | BlockError::Gone { .. }
            | BlockError::Changed { .. } => false,
        }
    }
}

/// Blocks the target per `mode`.
///
/// # Errors
/// See [`BlockError`].
pub async fn block(
    s3: &Client,
    mode: BlockMode,
    target: &Target<'_>,
) -> Result<Blocked, BlockError> {
    match mode {
        BlockMode::AclPrivate => make_private(s3, target).await.map(|()| Blocked::Acl),
        BlockMode::Move => move_object(s3, target, &mut |_| Ok(()))
            .await
            .map(|()| Blocked::Moved),
    }
}

fn s3_error(operation: &'static str, bucket: &str, key: &str, failure: S3Failure) -> BlockError {
    BlockError::S3 {
        operation,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        failure,
    }
}

/// `PutObjectAcl private`, verified by reading the ACL back.
///
/// # Errors
/// The bucket refuses ACLs, S3 fails, or a public grant remains.
pub async fn make_private(s3: &Client, target: &Target<'_>) -> Result<(), BlockError> {
    let (bucket, key) = (target.bucket, target.key);
    if let Err(e) = s3
        .put_object_acl()
        .bucket(bucket)
        .key(key)
        .set_version_id(target.version_id.map(str::to_owned))
        .acl(ObjectCannedAcl::Private)
        .send()
        .await
    {
        return Err(acl_refusal(bucket, key, S3Failure::from_sdk(&e)));
    }
    let acl = s3
        .get_object_acl()
        .bucket(bucket)
        .key(key)
        .set_version_id(target.version_id.map(str::to_owned))
        .send()
        .await
        .map_err(|e| s3_error("GetObjectAcl", bucket, key, S3Failure::from_sdk(&e)))?;
    let public: Vec<String> = acl
        .grants()
        .iter()
        .filter_map(|grant| {
            let uri = grant.grantee()?.uri()?;
            (uri.ends_with("/global/AllUsers") || uri.ends_with("/global/AuthenticatedUsers"))
                .then(|| format!("{uri}: {:?}", grant.permission()))
        })
        .collect();
    if !public.is_empty() {
        return Err(BlockError::StillPublic {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            grants: public.join(", "),
        });
    }
    Ok(())
}

/// Classifies a failed `PutObjectAcl`: a bucket that refuses ACLs (S3 Object Ownership "bucket
/// owner enforced" answers `AccessControlListNotSupported`; MinIO answers `NotImplemented`) is a
/// configuration problem named as such, never retried and never a silent pass.
fn acl_refusal(bucket: &str, key: &str, failure: S3Failure) -> BlockError {
    match failure.code.as_deref() {
        Some(code @ ("AccessControlListNotSupported" | "NotImplemented")) => {
            BlockError::AclNotSupported {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                code: code.to_owned(),
            }
        }
        _ if failure.is_not_found() => BlockError::Gone {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        },
        _ => s3_error("PutObjectAcl", bucket, key, failure),
    }
}

/// Moves the target to [`backup_key`], calling `after` at each [`MoveStep`] (production passes a
/// no-op; tests inject an interruption by returning an error).
///
/// # Errors
/// See [`BlockError`].
pub async fn move_object(
    s3: &Client,
    target: &Target<'_>,
    after: &mut (dyn FnMut(MoveStep) -> Result<(), BlockError> + Send),
) -> Result<(), BlockError> {
    let (bucket, key) = (target.bucket, target.key);
    debug_assert!(!layout::is_reserved(key));
    let backup = backup_key(key);

    if !backup_matches(s3, target, &backup).await? {
        let mut source = format!("{bucket}/{}", encode_key(key));
        if let Some(version) = target.version_id {
            source.push_str(&format!("?versionId={}", encode_key(version)));
        }
        let copy = s3
            .copy_object()
            .bucket(bucket)
            .key(&backup)
            .copy_source(source)
            .copy_source_if_match(format!("\"{}\"", target.etag))
            .metadata_directive(MetadataDirective::Copy)
            .tagging_directive(TaggingDirective::Copy)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await;
        let copied = match copy {
            Ok(out) => out,
            Err(e) => {
                let failure = S3Failure::from_sdk(&e);
                return Err(if failure.is_not_found() {
                    BlockError::Gone {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    }
                } else if failure.is_precondition_failed() {
                    BlockError::Changed {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    }
                } else {
                    s3_error("CopyObject", bucket, key, failure)
                });
            }
        };
        after(MoveStep::Copied)?;
        crate::faults::pause("move-copied").await;
        // The copy's own whole-object SHA-256 verifies it without another request; a store
        // that gives none is asked with a HEAD.
        let want = base64::engine::general_purpose::STANDARD.encode(target.sha256);
        let verified = match copied
            .copy_object_result()
            .and_then(|result| result.checksum_sha256())
        {
            Some(checksum) => checksum == want,
            None => backup_matches(s3, target, &backup).await?,
        };
        if !verified {
            return Err(BlockError::CopyMismatch {
                bucket: bucket.to_owned(),
                backup_key: backup,
                detail: "size or SHA-256 differs after the copy".to_owned(),
            });
        }
    }
    after(MoveStep::Verified)?;

    // The original must still be the version moderated: an unversioned key overwritten since is a
    // new upload with its own event, and must not be deleted here.
    let current = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(target.version_id.map(str::to_owned))
        .send()
        .await;
    match current {
        Err(e) => {
            let failure = S3Failure::from_sdk(&e);
            if !failure.is_not_found() {
                return Err(s3_error("HeadObject", bucket, key, failure));
            }
            // Already deleted by an earlier run: the move is complete.
        }
        Ok(head) if head.e_tag().map(unquote).as_deref() != Some(target.etag) => {
            tracing::warn!(
                bucket,
                key,
                "Original was replaced after its backup was made; the backup holds the moderated version, the new upload stays."
            );
        }
        Ok(_) => {
            s3.delete_object()
                .bucket(bucket)
                .key(key)
                .set_version_id(target.version_id.map(str::to_owned))
                .send()
                .await
                .map_err(|e| s3_error("DeleteObject", bucket, key, S3Failure::from_sdk(&e)))?;
        }
    }
    after(MoveStep::Deleted)?;
    Ok(())
}

/// True when the backup key already holds exactly the target's bytes (size and SHA-256).
async fn backup_matches(
    s3: &Client,
    target: &Target<'_>,
    backup: &str,
) -> Result<bool, BlockError> {
    let head = s3
        .head_object()
        .bucket(target.bucket)
        .key(backup)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await;
    let head = match head {
        Ok(head) => head,
        Err(e) => {
            let failure = S3Failure::from_sdk(&e);
            return if failure.is_not_found() {
                Ok(false)
            } else {
                Err(s3_error("HeadObject", target.bucket, backup, failure))
            };
        }
    };
    if head.content_length().unwrap_or(-1) != target.size as i64 {
        return Ok(false);
    }
    if let Some(checksum) = head.checksum_sha256() {
        let want = base64::engine::general_purpose::STANDARD.encode(target.sha256);
        return Ok(checksum == want);
    }
    // No whole-object checksum (an older copy, or a store without checksums): fall back to the
    // ETag, which is the MD5 of the bytes for single-part objects on both sides.
    let etag = head.e_tag().map(unquote).unwrap_or_default();
    Ok(!target.etag.contains('-') && etag == target.etag)
}

/// The object tag that says an object waits for a person (`pending`); removed once decided.
pub const REVIEW_TAG: &str = "earshot-review";

/// S3 keeps at most this many tags on an object.
const MAX_TAGS: usize = 10;

/// Sets (`Some`) or removes (`None`) the [`REVIEW_TAG`] of an object version, keeping its other
/// tags. An object that already has ten tags is left as it is (the review goes on; the tag is
/// only a convenience for the user's own listings).
///
/// # Errors
/// S3 failed, or the object is gone.
pub async fn mark_review(
    s3: &Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    value: Option<&str>,
) -> Result<(), BlockError> {
    let current = prior::read_tags(s3, bucket, key, version_id).await?;
    let mut tags: Vec<(String, String)> = current
        .iter()
        .filter(|(k, _)| k != REVIEW_TAG)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let had = tags.len() != current.len();
    match value {
        Some(value) if tags.len() < MAX_TAGS => {
            tags.push((REVIEW_TAG.to_owned(), value.to_owned()))
        }
        Some(_) => {
            tracing::warn!(
                bucket,
                key,
                "Object has ten tags already; not tagged for review."
            );
            return Ok(());
        }
        None if !had => return Ok(()),
        None => {}
    }
    let tagging = Tagging::builder()
        .set_tag_set(Some(
            tags.into_iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .expect("keys and values are always set"),
        ))
        .build()
        .expect("the tag set is always set");
    s3.put_object_tagging()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .tagging(tagging)
        .send()
        .await
        .map_err(|e| prior::gone_or(bucket, key, "PutObjectTagging", S3Failure::from_sdk(&e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, code: &str) -> S3Failure {
        S3Failure {
            status: Some(status),
            code: Some(code.to_owned()),
            message: "m".to_owned(),
        }
    }

    #[test]
    fn a_bucket_refusing_acls_is_a_named_permanent_error() {
        for (status, code) in [
            (400, "AccessControlListNotSupported"),
            (501, "NotImplemented"),
        ] {
            let error = acl_refusal("media", "audio/a.mp3", failure(status, code));
            assert!(
                matches!(error, BlockError::AclNotSupported { .. }),
                "{code}"
            );
            assert!(!error.is_transient());
            let text = error.to_string();
            assert!(
                text.contains("media") && text.contains("block.mode = \"move\""),
                "{text}"
            );
        }
        let throttled = acl_refusal("media", "k", failure(503, "SlowDown"));
        assert!(throttled.is_transient());
        assert!(matches!(
            acl_refusal("media", "k", failure(404, "NoSuchKey")),
            BlockError::Gone { .. }
        ));
    }
}
