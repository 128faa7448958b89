//! Leases in the bucket: one process at a time does a piece of work (a retro-hunt, a restore, a
//! scan), and a holder that stopped is taken over once its lease ran out, by exactly one process.
//!
//! A lease is a sequence of generations under its prefix, `<prefix><generation>.json`, each
//! created only if absent (`If-None-Match: *`): the process whose create succeeds holds that
//! generation, so two processes can never hold the same one. The highest generation is the lease's
//! state. It is taken when there is none, or when the highest was released or ran out: by creating
//! the next generation, which one process of any number racing for it gets. Releasing creates the
//! next generation marked released (so a process that read the old one and thinks it ran out
//! cannot take it over from under the next holder); older generations but the first are then
//! deleted (the first is created without a listing, the common case costing one request, so it
//! must stay while later ones exist). A holder renews by rewriting its own generation, and learns
//! it lost the lease if a higher one appeared. Work whose completion is recorded elsewhere (a job)
//! ends its lease by deleting it.

use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};

use super::{StateError, create_json, get_json, keys_under, put_json};

/// One generation of a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    pub generation: u64,
    /// Who holds (held) it: a process id (see [`super::review::holder_id`]).
    pub holder: String,
    pub taken_at: u64,
    /// Seconds since the epoch when it runs out unless renewed.
    pub until: u64,
    /// Given back by its holder.
    #[serde(default)]
    pub released: bool,
}

impl Generation {
    /// Free for another process at `now`: released, or run out.
    pub fn free(&self, now: u64) -> bool {
        self.released || now >= self.until
    }
}

/// What taking a lease gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// This process holds it.
    Held(Held),
    /// Another holder's lease runs.
    Busy(Generation),
}

/// A lease this process holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub bucket: String,
    pub prefix: String,
    pub generation: Generation,
}

/// Creates a generation unless one exists: false when another process did first (S3 answers a
/// 412, or a 409 while another conditional write of the key is under way).
async fn create(
    s3: &Client,
    bucket: &str,
    key: &str,
    generation: &Generation,
) -> Result<bool, StateError> {
    match create_json(s3, bucket, key, generation).await {
        Err(StateError::S3 { failure, .. }) if failure.status == Some(409) => Ok(false),
        created => created,
    }
}

fn key_of(prefix: &str, generation: u64) -> String {
    // Zero-padded so that a listing is in generation order.
    format!("{prefix}{generation:020}.json")
}

/// The highest generation under `prefix`, if any.
async fn highest(
    s3: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<Option<Generation>, StateError> {
    for _ in 0..4 {
        let keys = keys_under(s3, bucket, prefix).await?;
        let Some(top) = keys.iter().rev().find(|key| {
            key.strip_prefix(prefix)
                .and_then(|k| k.strip_suffix(".json"))
                .is_some_and(|k| k.parse::<u64>().is_ok())
        }) else {
            return Ok(None);
        };
        if let Some(found) = get_json::<Generation>(s3, bucket, top).await? {
            return Ok(Some(found));
        }
        // Deleted since the listing: a newer generation was created meanwhile; list again.
    }
    Err(StateError::corrupt(
        bucket,
        prefix,
        "the lease's generations keep disappearing",
    ))
}

/// Takes the lease under `prefix` for `holder` from `now` for `secs` seconds, unless another
/// holder's runs.
///
/// # Errors
/// S3 failed.
pub async fn take(
    s3: &Client,
    bucket: &str,
    prefix: &str,
    holder: &str,
    now: u64,
    secs: u64,
) -> Result<Taken, StateError> {
    take_unless(s3, bucket, prefix, holder, now, secs, |current| {
        !current.free(now)
    })
    .await
}

/// [`take`], also taking over a lease `holder` itself still holds: for a caller that knows no
/// task of its own runs the work (it holds the work's in-process claim), so that a lease left
/// behind because S3 refused its release does not keep the work's retry waiting until it runs
/// out.
///
/// # Errors
/// S3 failed.
pub async fn take_own(
    s3: &Client,
    bucket: &str,
    prefix: &str,
    holder: &str,
    now: u64,
    secs: u64,
) -> Result<Taken, StateError> {
    take_unless(s3, bucket, prefix, holder, now, secs, |current| {
        !current.free(now) && current.holder != holder
    })
    .await
}

/// Takes the lease unless its current generation is `busy`.
async fn take_unless(
    s3: &Client,
    bucket: &str,
    prefix: &str,
    holder: &str,
    now: u64,
    secs: u64,
    busy: impl Fn(&Generation) -> bool,
) -> Result<Taken, StateError> {
    // Most work is never leased before: the first generation is tried at once (one request).
    // Each later round either takes the lease, finds it busy, or loses a race to a process that
    // took it (then the next round finds it busy, or released again).
    let mut next = 0;
    for round in 0..9 {
        if round > 0 {
            next = match highest(s3, bucket, prefix).await? {
                Some(current) if busy(&current) => return Ok(Taken::Busy(current)),
                Some(current) => current.generation + 1,
                None => 0,
            };
        }
        let mine = Generation {
            generation: next,
            holder: holder.to_owned(),
            taken_at: now,
            until: now.saturating_add(secs),
            released: false,
        };
        if create(s3, bucket, &key_of(prefix, next), &mine).await? {
            if next > 0 {
                forget_before(s3, bucket, prefix, next).await;
            }
            return Ok(Taken::Held(Held {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
                generation: mine,
            }));
        }
    }
    match highest(s3, bucket, prefix).await? {
        Some(current) => Ok(Taken::Busy(current)),
        None => Err(StateError::corrupt(
            bucket,
            prefix,
            "a lease generation could not be created, yet none can be read",
        )),
    }
}

/// Deletes the generations before `generation` but the first (best effort: they are only
/// history). The first stays while later ones exist: [`take`] creates it without looking first.
async fn forget_before(s3: &Client, bucket: &str, prefix: &str, generation: u64) {
    let Ok(keys) = keys_under(s3, bucket, prefix).await else {
        return;
    };
    for key in keys {
        if key > key_of(prefix, 0)
            && key < key_of(prefix, generation)
            && let Err(e) = super::delete(s3, bucket, &key).await
        {
            tracing::debug!(%key, error = %e, "Could not delete an old lease generation.");
        }
    }
}

impl Held {
    /// Extends the lease to `now + secs`; false when another process took it over meanwhile (this
    /// holder ran out: it must stop).
    ///
    /// # Errors
    /// S3 failed.
    pub async fn renew(&mut self, s3: &Client, now: u64, secs: u64) -> Result<bool, StateError> {
        if !self.still_held(s3).await? {
            return Ok(false);
        }
        self.generation.until = now.saturating_add(secs);
        let key = key_of(&self.prefix, self.generation.generation);
        put_json(s3, &self.bucket, &key, &self.generation).await?;
        self.still_held(s3).await
    }

    /// Whether no higher generation exists.
    ///
    /// # Errors
    /// S3 failed.
    pub async fn still_held(&self, s3: &Client) -> Result<bool, StateError> {
        Ok(highest(s3, &self.bucket, &self.prefix)
            .await?
            .is_some_and(|g| g.generation == self.generation.generation))
    }

    /// Ends the lease of work whose completion is recorded elsewhere (a job's record): unless
    /// another process took it over, its generations are deleted (a later taker finds the record
    /// and does nothing).
    ///
    /// # Errors
    /// S3 failed.
    pub async fn end(self, s3: &Client) -> Result<(), StateError> {
        let keys = keys_under(s3, &self.bucket, &self.prefix).await?;
        let mine = key_of(&self.prefix, self.generation.generation);
        if keys.last() != Some(&mine) {
            return Ok(());
        }
        for key in keys.iter().rev() {
            super::delete(s3, &self.bucket, key).await?;
        }
        Ok(())
    }

    /// Gives the lease back: the next generation, released (unless a process took it over).
    ///
    /// # Errors
    /// S3 failed.
    pub async fn release(self, s3: &Client, now: u64) -> Result<(), StateError> {
        let next = self.generation.generation + 1;
        let released = Generation {
            generation: next,
            holder: self.generation.holder.clone(),
            taken_at: now,
            until: now,
            released: true,
        };
        if create(s3, &self.bucket, &key_of(&self.prefix, next), &released).await? {
            forget_before(s3, &self.bucket, &self.prefix, next).await;
        }
        Ok(())
    }
}
