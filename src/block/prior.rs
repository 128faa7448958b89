//! An object's state before a block, recorded so that `earshot restore` can put back exactly
//! that: its ACL grants (the owner's and every other grantee's, not a guessed `public-read`), and
//! for a move its content type, the other content headers, user metadata, tags and storage class.
//!
//! [`capture`] reads it (HEAD, GetObjectTagging, GetObjectAcl); [`put_back_acl`] restores the
//! grants and reads them back to prove it; [`move_back`] writes a moved object from its backup to
//! its key with the recorded headers, metadata, tags and storage class, only if the key is free
//! (a conditional PUT), verifies it, puts the grants back and only then deletes the backup. Every
//! step checks what S3 holds first, so running it again after an interruption finishes it, and it
//! never overwrites an object uploaded at the key since the block, even one that lands between
//! the check and the write.

use std::collections::BTreeMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, StorageClass};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{BlockError, s3_error};
use crate::job::unquote;
use crate::storage::{S3Failure, encode_key};

/// What an object was before it was blocked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorState {
    /// None when the bucket refuses ACLs (nothing to put back).
    pub acl: Option<Acl>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    /// User metadata (`x-amz-meta-*`), without the prefix.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// None is S3's default, `STANDARD`.
    pub storage_class: Option<String>,
}

/// An object ACL: its owner and every grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    pub owner_id: Option<String>,
    pub owner_name: Option<String>,
    pub grants: Vec<GrantRecord>,
}

/// One grant, as S3 reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GrantRecord {
    /// `CanonicalUser`, `Group` or `AmazonCustomerByEmail`.
    pub grantee_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `FULL_CONTROL`, `READ`, `WRITE`, `READ_ACP` or `WRITE_ACP`.
    pub permission: String,
}

impl Acl {
    /// The grants in a stable order with display names left out (S3 may fill them in or not), for
    /// comparing what was recorded with what S3 holds.
    fn comparable(&self) -> Vec<GrantRecord> {
        let mut grants: Vec<GrantRecord> = self
            .grants
            .iter()
            .map(|g| GrantRecord {
                display_name: None,
                ..g.clone()
            })
            .collect();
        grants.sort();
        grants.dedup();
        grants
    }
}

/// Reads the object's state (one HEAD, its tags, its ACL).
///
/// # Errors
/// S3 failed; a bucket that refuses ACLs is not an error (the ACL is recorded as None).
pub async fn capture(
    s3: &Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<PriorState, BlockError> {
    let version = version_id.map(str::to_owned);
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.clone())
        .send()
        .await
        .map_err(|e| gone_or(bucket, key, "HeadObject", S3Failure::from_sdk(&e)))?;
    let tags = read_tags(s3, bucket, key, version_id).await?;
    let acl = read_acl(s3, bucket, key, version_id).await?;
    Ok(PriorState {
        acl,
        content_type: head.content_type().map(str::to_owned),
        cache_control: head.cache_control().map(str::to_owned),
        content_disposition: head.content_disposition().map(str::to_owned),
        content_encoding: head.content_encoding().map(str::to_owned),
        content_language: head.content_language().map(str::to_owned),
        metadata: head
            .metadata()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        tags: tags.into_iter().collect(),
        storage_class: head
            .storage_class()
            .map(|c| c.as_str().to_owned())
            .filter(|c| c != "STANDARD"),
    })
}

/// An object version's tags, in S3's order.
///
/// # Errors
/// S3 failed, or the object is gone.
pub(crate) async fn read_tags(
    s3: &Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Vec<(String, String)>, BlockError> {
    let tagging = s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await
        .map_err(|e| gone_or(bucket, key, "GetObjectTagging", S3Failure::from_sdk(&e)))?;
    Ok(tagging
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect())
}

pub(crate) fn gone_or(
    bucket: &str,
    key: &str,
    operation: &'static str,
    failure: S3Failure,
) -> BlockError {
    if failure.is_not_found() {
        BlockError::Gone {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        }
    } else {
        s3_error(operation, bucket, key, failure)
    }
}

/// The object's ACL, or None when the bucket refuses ACLs.
async fn read_acl(
    s3: &Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<Acl>, BlockError> {
    let acl = match s3
        .get_object_acl()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await
    {
        Ok(acl) => acl,
        Err(e) => {
            let failure = S3Failure::from_sdk(&e);
            return match failure.code.as_deref() {
                Some("AccessControlListNotSupported" | "NotImplemented") => Ok(None),
                _ => Err(gone_or(bucket, key, "GetObjectAcl", failure)),
            };
        }
    };
    let grants = acl
        .grants()
        .iter()
        .filter_map(|grant| {
            let grantee = grant.grantee()?;
            Some(GrantRecord {
                grantee_type: grantee.r#type().as_str().to_owned(),
                id: grantee.id().map(str::to_owned),
                uri: grantee.uri().map(str::to_owned),
                email: grantee.email_address().map(str::to_owned),
                display_name: grantee.display_name().map(str::to_owned),
                permission: grant.permission()?.as_str().to_owned(),
            })
        })
        .collect();
    Ok(Some(Acl {
        owner_id: acl.owner().and_then(|o| o.id()).map(str::to_owned),
        owner_name: acl
            .owner()
            .and_then(|o| o.display_name())
            .map(str::to_owned),
        grants,
    }))
}

/// Puts the recorded grants back on the object, then reads them back to prove it.
///
/// # Errors
/// S3 failed, the object is gone, or S3 holds other grants afterwards.
pub async fn put_back_acl(
    s3: &Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    acl: &Acl,
) -> Result<(), BlockError> {
    // The grant headers (`x-amz-grant-*`), not an `AccessControlPolicy` body: both replace the
    // whole ACL on S3, and the headers are what every S3-compatible store implements.
    let mut by_permission: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for grant in &acl.grants {
        let grantee = match (&grant.id, &grant.uri, &grant.email) {
            (Some(id), _, _) => format!("id=\"{id}\""),
            (_, Some(uri), _) => format!("uri=\"{uri}\""),
            (_, _, Some(email)) => format!("emailAddress=\"{email}\""),
            _ => continue,
        };
        by_permission
            .entry(grant.permission.as_str())
            .or_default()
            .push(grantee);
    }
    let header = |permission: &str| by_permission.get(permission).map(|g| g.join(", "));
    s3.put_object_acl()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .set_grant_full_control(header("FULL_CONTROL"))
        .set_grant_read(header("READ"))
        .set_grant_read_acp(header("READ_ACP"))
        .set_grant_write(header("WRITE"))
        .set_grant_write_acp(header("WRITE_ACP"))
        .send()
        .await
        .map_err(|e| gone_or(bucket, key, "PutObjectAcl", S3Failure::from_sdk(&e)))?;
    let now = read_acl(s3, bucket, key, version_id).await?;
    match now {
        Some(now) if now.comparable() == acl.comparable() => Ok(()),
        other => Err(BlockError::CopyMismatch {
            bucket: bucket.to_owned(),
            backup_key: key.to_owned(),
            detail: format!(
                "ACL read back differs from the recorded one: {:?}",
                other.map(|a| a.comparable())
            ),
        }),
    }
}

/// The bytes a moved object is expected to hold.
#[derive(Debug, Clone)]
pub struct Moved<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub backup_key: &'a str,
    pub size: u64,
    pub sha256: [u8; 32],
    /// Without quotes: the ETag of the bytes as they were judged.
    pub etag: &'a str,
}

/// What a [`move_back`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedBack {
    /// The restored object's version and ETag (without quotes).
    pub version_id: Option<String>,
    pub etag: String,
}

/// Why a restore cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(
        "s3://{bucket}/{key} holds a newer upload (ETag {etag}, {size} bytes) than the blocked \
         object; restoring would overwrite it, so nothing was changed. The blocked object stays at \
         s3://{bucket}/{backup_key}"
    )]
    KeyReused {
        bucket: String,
        key: String,
        backup_key: String,
        etag: String,
        size: i64,
    },
    #[error(
        "neither s3://{bucket}/{key} nor its backup s3://{bucket}/{backup_key} holds the blocked object"
    )]
    Lost {
        bucket: String,
        key: String,
        backup_key: String,
    },
    #[error(transparent)]
    Block(#[from] BlockError),
}

/// Copies a moved object back to its key with its recorded state, verifies it, puts its grants
/// back, then deletes the backup. Idempotent; never overwrites a newer upload at the key.
///
/// # Errors
/// See [`RestoreError`].
pub async fn move_back(
    s3: &Client,
    moved: &Moved<'_>,
    prior: &PriorState,
) -> Result<MovedBack, RestoreError> {
    let (bucket, key, backup) = (moved.bucket, moved.key, moved.backup_key);
    let at_key = holds(s3, bucket, key, moved).await?;
    let restored = match at_key {
        Holds::Same(found) => found,
        Holds::Other { etag, size } => {
            return Err(RestoreError::KeyReused {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                backup_key: backup.to_owned(),
                etag,
                size,
            });
        }
        Holds::Nothing => {
            let Holds::Same(in_backup) = holds(s3, bucket, backup, moved).await? else {
                return Err(RestoreError::Lost {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    backup_key: backup.to_owned(),
                });
            };
            crate::faults::pause("restore-checked").await;
            if !put_if_absent(s3, moved, prior, &in_backup.etag).await? {
                // Something is at the key now: an upload landed since the check (kept), or
                // another restore put it back first.
                return match holds(s3, bucket, key, moved).await? {
                    Holds::Same(found) => Ok(found),
                    Holds::Other { etag, size } => Err(RestoreError::KeyReused {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                        backup_key: backup.to_owned(),
                        etag,
                        size,
                    }),
                    Holds::Nothing => Err(s3_error(
                        "PutObject",
                        bucket,
                        key,
                        S3Failure {
                            status: None,
                            code: None,
                            message: "the key was taken, then freed again; try again".to_owned(),
                        },
                    )
                    .into()),
                };
            }
            match holds(s3, bucket, key, moved).await? {
                Holds::Same(found) => found,
                _ => {
                    return Err(BlockError::CopyMismatch {
                        bucket: bucket.to_owned(),
                        backup_key: key.to_owned(),
                        detail:
                            "the restored copy's size or SHA-256 differs from the blocked object's"
                                .to_owned(),
                    }
                    .into());
                }
            }
        }
    };
    if let Some(acl) = &prior.acl {
        put_back_acl(s3, bucket, key, restored.version_id.as_deref(), acl).await?;
    }
    match s3.delete_object().bucket(bucket).key(backup).send().await {
        Ok(_) => {}
        Err(e) => {
            let failure = S3Failure::from_sdk(&e);
            if !failure.is_not_found() {
                return Err(s3_error("DeleteObject", bucket, backup, failure).into());
            }
        }
    }
    Ok(restored)
}

enum Holds {
    Nothing,
    Same(MovedBack),
    Other { etag: String, size: i64 },
}

/// Writes the backup's bytes to the key with the recorded headers, metadata, tags and storage
/// class, only if nothing is at the key (`If-None-Match: *`: S3 refuses the write atomically when
/// an upload landed there since the key was checked). False when it was refused so. The bytes pass
/// through earshot (GET, then a conditional PUT): S3's CopyObject takes the same condition, but the
/// S3-compatible servers the tests run (LocalStack, moto) ignore it there and overwrite.
async fn put_if_absent(
    s3: &Client,
    moved: &Moved<'_>,
    prior: &PriorState,
    backup_etag: &str,
) -> Result<bool, RestoreError> {
    let (bucket, key, backup) = (moved.bucket, moved.key, moved.backup_key);
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(backup)
        .if_match(format!("\"{backup_etag}\""))
        .send()
        .await
        .map_err(|e| s3_error("GetObject", bucket, backup, S3Failure::from_sdk(&e)))?;
    let tagging = prior
        .tags
        .iter()
        .map(|(k, v)| format!("{}={}", encode_key(k), encode_key(v)))
        .collect::<Vec<_>>()
        .join("&");
    let put = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .if_none_match("*")
        .set_content_length(object.content_length())
        .body(object.body)
        .set_content_type(prior.content_type.clone())
        .set_cache_control(prior.cache_control.clone())
        .set_content_disposition(prior.content_disposition.clone())
        .set_content_encoding(prior.content_encoding.clone())
        .set_content_language(prior.content_language.clone())
        .set_metadata(Some(prior.metadata.clone().into_iter().collect()))
        .tagging(tagging)
        .set_storage_class(prior.storage_class.as_deref().map(StorageClass::from))
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await;
    match put {
        Ok(_) => Ok(true),
        Err(e) => {
            // 412: something is at the key; 409: another conditional write of it is under way.
            let failure = S3Failure::from_sdk(&e);
            if failure.is_precondition_failed() || failure.status == Some(409) {
                Ok(false)
            } else {
                Err(s3_error("PutObject", bucket, key, failure).into())
            }
        }
    }
}

/// What `key` holds compared with the blocked bytes (size and SHA-256, or the ETag of a
/// single-part object where S3 keeps no checksum).
async fn holds(
    s3: &Client,
    bucket: &str,
    key: &str,
    moved: &Moved<'_>,
) -> Result<Holds, BlockError> {
    let head = match s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
    {
        Ok(head) => head,
        Err(e) => {
            let failure = S3Failure::from_sdk(&e);
            return if failure.is_not_found() {
                Ok(Holds::Nothing)
            } else {
                Err(s3_error("HeadObject", bucket, key, failure))
            };
        }
    };
    let etag = head.e_tag().map(unquote).unwrap_or_default();
    let size = head.content_length().unwrap_or(-1);
    let same = size == moved.size as i64
        && match head.checksum_sha256() {
            Some(checksum) => {
                checksum == base64::engine::general_purpose::STANDARD.encode(moved.sha256)
            }
            None => !moved.etag.contains('-') && etag == moved.etag,
        };
    Ok(if same {
        Holds::Same(MovedBack {
            version_id: head.version_id().map(str::to_owned),
            etag,
        })
    } else {
        Holds::Other { etag, size }
    })
}
