//! Human review kept in the bucket, with no database to run:
//!
//! - the item ([`ReviewItem`]) at `review/items/<trace_id>.json`, written once when judging holds
//!   an object for a person;
//! - the queue: an empty marker per open item at `review/open/<seconds>-<trace_id>`, so one
//!   listing gives the queue oldest first;
//! - the decision ([`ReviewDecision`]) at `review/decided/<trace_id>.json`, created with
//!   `If-None-Match: *`: the first decision wins and a second one gets [`Claim::Taken`] with the
//!   winner's, never a silent overwrite. The claim names its holder (one process) and a lease:
//!   until the lease runs out only the holder carries the decision out. It is marked `applied`
//!   once the object and the callback have followed it, then the queue marker is deleted;
//! - a claim whose lease ran out unapplied (its holder stopped) is taken over by creating
//!   `review/decided/<trace_id>.take-<n>.json` (n = 1, 2, …), again with `If-None-Match: *`, so
//!   of two processes finishing it exactly one does; the takeover has a lease of its own;
//! - `review/claimed/<trace_id>`: an empty marker from the claim until the decision is applied,
//!   so the sweep finds unfinished claims with one listing.
//!
//! And, for the history of results, one [`ResultRow`] per judged object under the day it was
//! judged (`results/<YYYY-MM-DD>/…`), written by whoever judged it (several daemons at once,
//! each row its own object). Reading a day packs it: `result-packs/<YYYY-MM-DD>.jsonl.gz` holds
//! every row with the ETag it had when packed. A read lists the day (1,000 rows a request), takes
//! from the pack each row whose ETag still matches, GETs only the rest, and writes a new pack when
//! it had to GET many. The pack is a cache: a row changed since (a review updates its row) or
//! added since is read from its own object, and a lost or damaged pack costs one slow read.

use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};

use super::{StateError, get_json, keys_under, put_json};
use crate::callback::Body;
use crate::config::{BlockMode, ReviewVerdict};
use crate::layout;
use crate::model::Scene;
use crate::storage::object;

/// An object held for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub trace_id: String,
    pub rule: String,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    /// Without quotes.
    pub etag: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    /// When `on_review_timeout` decides it if nobody has.
    pub due_at: u64,
    pub on_timeout: ReviewVerdict,
    /// Blocked (by `mode`) while it waits, rather than left published.
    pub held: bool,
    pub mode: BlockMode,
    /// The highest scene and its score.
    pub scene: Scene,
    pub score: u8,
    /// Per configured scene: score, label and the segments found (with the library reference
    /// each matched, for the local engine).
    pub scenes: std::collections::BTreeMap<Scene, crate::model::SceneScore>,
    /// The callback body sent when the item was opened (`result = 2`, review pending): the
    /// decision's callback is built from it.
    pub body: Body,
    /// Every engine's own answer.
    #[serde(default)]
    pub engines: Vec<super::pending::EngineOutcome>,
}

/// A person's (or the timeout's) decision on an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDecision {
    pub trace_id: String,
    pub verdict: ReviewVerdict,
    pub by: String,
    pub at: u64,
    pub reason: String,
    /// Made by `on_review_timeout`, not a person.
    #[serde(default)]
    pub timeout: bool,
    /// When the object and the callback followed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<u64>,
    /// The process carrying it out ([`holder_id`]); empty in decisions from before leases.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub holder: String,
    /// Until when (seconds since the Unix epoch) the holder alone may carry it out; 0 in
    /// decisions from before leases (finished by whoever comes next).
    #[serde(default)]
    pub lease_until: u64,
    /// 0 for the claim itself, n for its n-th takeover.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub takeover: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ReviewDecision {
    /// Claimed, not carried out, and its holder's lease has run out at `now`.
    pub fn abandoned(&self, now: u64) -> bool {
        self.applied_at.is_none() && self.lease_until <= now
    }
}

/// An id for this process as a claim's holder: its pid and 64 random bits.
pub fn holder_id() -> String {
    format!("pid{}-{:016x}", std::process::id(), fastrand::u64(..))
}

/// What claiming an item came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This decision is the item's.
    Won,
    /// Someone decided first: theirs.
    Taken(ReviewDecision),
}

/// An open item in the queue (from its marker alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub created_at: u64,
    pub trace_id: String,
}

/// Writes an item and puts it in the queue.
///
/// # Errors
/// S3 failed.
pub async fn open(s3: &Client, item: &ReviewItem) -> Result<(), StateError> {
    put_json(
        s3,
        &item.bucket,
        &layout::review_item_key(&item.trace_id),
        item,
    )
    .await?;
    let marker = layout::review_open_key(item.created_at, &item.trace_id);
    super::put_bytes(s3, &item.bucket, &marker, Vec::new()).await
}

/// The open items of a bucket, oldest first: one listing, no reads.
///
/// # Errors
/// S3 failed.
pub async fn queue(s3: &Client, bucket: &str) -> Result<Vec<Queued>, StateError> {
    let mut found: Vec<Queued> = keys_under(s3, bucket, layout::REVIEW_OPEN_PREFIX)
        .await?
        .iter()
        .filter_map(|key| layout::parse_review_open_key(key))
        .map(|(created_at, trace_id)| Queued {
            created_at,
            trace_id,
        })
        .collect();
    found.sort_by(|a, b| (a.created_at, &a.trace_id).cmp(&(b.created_at, &b.trace_id)));
    Ok(found)
}

/// One item, if the bucket has it.
///
/// # Errors
/// S3 failed or the item is not valid.
pub async fn item(
    s3: &Client,
    bucket: &str,
    trace_id: &str,
) -> Result<Option<ReviewItem>, StateError> {
    get_json(s3, bucket, &layout::review_item_key(trace_id)).await
}

/// The decision on an item, if there is one.
///
/// # Errors
/// S3 failed or the decision is not valid.
pub async fn decision(
    s3: &Client,
    bucket: &str,
    trace_id: &str,
) -> Result<Option<ReviewDecision>, StateError> {
    get_json(s3, bucket, &layout::review_decision_key(trace_id)).await
}

/// The decision on an item as it stands: the claim, with the holder and lease of its latest
/// takeover, if any.
///
/// # Errors
/// S3 failed or a record is not valid.
pub async fn current(
    s3: &Client,
    bucket: &str,
    trace_id: &str,
) -> Result<Option<ReviewDecision>, StateError> {
    let Some(mut claimed) = decision(s3, bucket, trace_id).await? else {
        return Ok(None);
    };
    if claimed.applied_at.is_some() {
        return Ok(Some(claimed));
    }
    let mut n = claimed.takeover;
    while let Some(taken) =
        get_json::<ReviewDecision>(s3, bucket, &layout::review_takeover_key(trace_id, n + 1))
            .await?
    {
        n = taken.takeover.max(n + 1);
        claimed.holder = taken.holder;
        claimed.lease_until = taken.lease_until;
        claimed.takeover = n;
    }
    Ok(Some(claimed))
}

/// Records a decision unless the item has one: the write is conditional, so of two reviewers
/// deciding at once exactly one wins. The winner's claim is marked for the sweep.
///
/// # Errors
/// S3 failed.
pub async fn claim(
    s3: &Client,
    bucket: &str,
    decided: &ReviewDecision,
) -> Result<Claim, StateError> {
    let key = layout::review_decision_key(&decided.trace_id);
    if super::create_json(s3, bucket, &key, decided).await? {
        let marker = layout::review_claimed_key(&decided.trace_id);
        super::put_bytes(s3, bucket, &marker, Vec::new()).await?;
        return Ok(Claim::Won);
    }
    match current(s3, bucket, &decided.trace_id).await? {
        Some(theirs) => Ok(Claim::Taken(theirs)),
        None => Err(StateError::corrupt(
            bucket,
            &key,
            "S3 refused to create the decision, yet none can be read",
        )),
    }
}

/// Takes over an abandoned claim (see [`ReviewDecision::abandoned`]) for `holder` until
/// `lease_until`: the next takeover record is created only if absent, so of several processes
/// finishing the same claim exactly one gets it. Returns the decision to carry out, or None when
/// another process took it over first.
///
/// # Errors
/// S3 failed.
pub async fn take_over(
    s3: &Client,
    bucket: &str,
    abandoned: &ReviewDecision,
    holder: &str,
    lease_until: u64,
) -> Result<Option<ReviewDecision>, StateError> {
    let mine = ReviewDecision {
        holder: holder.to_owned(),
        lease_until,
        takeover: abandoned.takeover + 1,
        ..abandoned.clone()
    };
    let key = layout::review_takeover_key(&mine.trace_id, mine.takeover);
    if !super::create_json(s3, bucket, &key, &mine).await? {
        return Ok(None);
    }
    let marker = layout::review_claimed_key(&mine.trace_id);
    super::put_bytes(s3, bucket, &marker, Vec::new()).await?;
    Ok(Some(mine))
}

/// The items whose decision was claimed and may not be carried out yet (one listing).
///
/// # Errors
/// S3 failed.
pub async fn claimed(s3: &Client, bucket: &str) -> Result<Vec<String>, StateError> {
    Ok(keys_under(s3, bucket, layout::REVIEW_CLAIMED_PREFIX)
        .await?
        .iter()
        .filter_map(|key| key.strip_prefix(layout::REVIEW_CLAIMED_PREFIX))
        .map(str::to_owned)
        .collect())
}

/// Forgets the claim marker of an item whose decision is applied (or was never claimed).
///
/// # Errors
/// S3 failed.
pub async fn unmark_claimed(s3: &Client, bucket: &str, trace_id: &str) -> Result<(), StateError> {
    super::delete(s3, bucket, &layout::review_claimed_key(trace_id)).await
}

/// Marks a decision carried out and takes the item out of the queue.
///
/// # Errors
/// S3 failed.
pub async fn close(
    s3: &Client,
    item: &ReviewItem,
    decided: &ReviewDecision,
) -> Result<(), StateError> {
    put_json(
        s3,
        &item.bucket,
        &layout::review_decision_key(&item.trace_id),
        decided,
    )
    .await?;
    super::delete(
        s3,
        &item.bucket,
        &layout::review_open_key(item.created_at, &item.trace_id),
    )
    .await?;
    unmark_claimed(s3, &item.bucket, &item.trace_id).await
}

/// One judged object as the history lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    pub judged_at: u64,
    pub trace_id: String,
    pub bucket: String,
    pub key: String,
    pub rule: String,
    /// `upload`, `scan`, `batch`, `retro`, `manual`.
    pub source: String,
    pub code: i32,
    pub message: String,
    /// 0 normal, 1 sensitive, 2 suspicious (as the latest callback said).
    pub result: u8,
    pub forbidden_status: u8,
    /// Per configured scene: (scene, score, label).
    pub scenes: Vec<(Scene, u8, String)>,
    /// `pending`, `block` or `pass` when a person reviews it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
    /// The dictionary terms heard (the speech engine's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
}

impl ResultRow {
    /// The highest score of any scene.
    pub fn top_score(&self) -> u8 {
        self.scenes.iter().map(|s| s.1).max().unwrap_or(0)
    }
}

/// Files a result under the day it was judged (again, to update it after a review).
///
/// # Errors
/// S3 failed.
pub async fn record_result(s3: &Client, row: &ResultRow) -> Result<(), StateError> {
    let day = crate::clock::day(row.judged_at);
    let key = layout::result_key(&day, row.judged_at, &row.trace_id);
    put_json(s3, &row.bucket, &key, row).await
}

/// One row of a day's pack: the row's key, its ETag when packed, and the row.
#[derive(Debug, Serialize, Deserialize)]
struct Packed {
    key: String,
    etag: String,
    row: ResultRow,
}

/// A read of a day that had to GET at least this many rows writes a new pack.
const REPACK_AFTER: usize = 64;

/// The results of one day, oldest first: a listing, the day's pack, and a GET for each row the
/// pack does not hold as listed (a new pack is written when there were many).
///
/// # Errors
/// S3 failed or a row is not valid.
pub async fn results_of_day(
    s3: &Client,
    bucket: &str,
    day: &str,
) -> Result<Vec<ResultRow>, StateError> {
    use futures::{StreamExt, TryStreamExt};
    let listed = object::list(s3, bucket, &layout::results_of_day(day)).await?;
    let mut packed = read_pack(s3, bucket, day).await;
    let mut rows = Vec::with_capacity(listed.len());
    let mut unpacked = Vec::new();
    for listed in listed {
        match packed.remove(&listed.key) {
            Some(p) if p.etag == listed.etag && !listed.etag.is_empty() => rows.push(p),
            _ => unpacked.push(listed),
        }
    }
    // Read after the listing, each row is at least as new as its listed ETag says: a row
    // changed in between is packed under its old ETag and read again next time.
    let read_one_by_one = unpacked.len();
    let fetched: Vec<Option<Packed>> = futures::stream::iter(unpacked)
        .map(|listed| async move {
            let row = get_json::<ResultRow>(s3, bucket, &listed.key).await?;
            Ok::<_, StateError>(row.map(|row| Packed {
                key: listed.key,
                etag: listed.etag,
                row,
            }))
        })
        .buffered(16)
        .try_collect()
        .await?;
    rows.extend(fetched.into_iter().flatten());
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    if read_one_by_one >= REPACK_AFTER
        && let Err(e) = write_pack(s3, bucket, day, &rows).await
    {
        tracing::warn!(%bucket, %day, error = %e, "Results of the day not packed; read row by row until they are.");
    }
    Ok(rows.into_iter().map(|p| p.row).collect())
}

/// The day's pack by key; empty when there is none or it cannot be read (the rows are then
/// read one by one, and packed again).
async fn read_pack(
    s3: &Client,
    bucket: &str,
    day: &str,
) -> std::collections::HashMap<String, Packed> {
    let key = layout::result_pack_key(day);
    let bytes = match super::get_bytes(s3, bucket, &key).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Default::default(),
        Err(e) => {
            tracing::warn!(%bucket, %key, error = %e, "Results pack not read; reading rows one by one.");
            return Default::default();
        }
    };
    match parse_pack(&bytes) {
        Ok(rows) => rows.into_iter().map(|p| (p.key.clone(), p)).collect(),
        Err(e) => {
            tracing::warn!(%bucket, %key, error = %e, "Results pack damaged; reading rows one by one.");
            Default::default()
        }
    }
}

/// The rows of a pack (gzip of one JSON [`Packed`] per line).
fn parse_pack(bytes: &[u8]) -> Result<Vec<Packed>, String> {
    use std::io::BufRead;
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(bytes));
    let mut rows = Vec::new();
    for line in reader.lines() {
        let line = line.map_err(|e| format!("not gzip: {e}"))?;
        if line.is_empty() {
            continue;
        }
        rows.push(serde_json::from_str(&line).map_err(|e| format!("not a packed row: {e}"))?);
    }
    Ok(rows)
}

async fn write_pack(
    s3: &Client,
    bucket: &str,
    day: &str,
    rows: &[Packed],
) -> Result<(), StateError> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for row in rows {
        serde_json::to_writer(&mut gz, row).expect("rows always serialise");
        gz.write_all(b"\n").expect("writing to memory");
    }
    let body = gz.finish().expect("writing to memory");
    super::put_bytes(s3, bucket, &layout::result_pack_key(day), body).await
}

/// The days that have results, oldest first (one listing by delimiter).
///
/// # Errors
/// S3 failed.
pub async fn result_days(s3: &Client, bucket: &str) -> Result<Vec<String>, StateError> {
    let mut days: Vec<String> = object::folders(s3, bucket, layout::RESULTS_PREFIX)
        .await?
        .iter()
        .filter_map(|p| {
            p.strip_prefix(layout::RESULTS_PREFIX)?
                .strip_suffix('/')
                .map(str::to_owned)
        })
        .collect();
    days.sort();
    Ok(days)
}
