//! Where earshot keeps things in a moderated bucket: every `audit_freeze_backup/…` key is derived
//! here and nowhere else. Nothing under [`BACKUP_ROOT`] is ever moderated, so earshot's own writes
//! never become jobs. A leaf: it imports nothing of the crate.
//!
//! ```text
//! audit_freeze_backup/increment_audit/<key>                  a blocked object, moved (block.mode = "move")
//! audit_freeze_backup/earshot/jobs/<trace_id>.json           a finished job (its callback body)
//! audit_freeze_backup/earshot/dead-letters/<trace_id>.json   a callback that could not be delivered
//! audit_freeze_backup/earshot/dead-jobs/<trace_id>.json      a job that could not be run, with why
//! audit_freeze_backup/earshot/pending/<trace_id>/…           a job waiting on a provider's result
//! audit_freeze_backup/earshot/blocks/<key hash>/<trace_id>.json  a block: the object's prior state
//! audit_freeze_backup/earshot/audit/<seconds>-<id>.json      one audit log entry (append-only)
//! audit_freeze_backup/earshot/allow/<sha256>.json            audio marked normal (`restore --mark-normal`)
//! audit_freeze_backup/earshot/scans/<scan id>/…              a scan's checkpoint and report
//! audit_freeze_backup/earshot/prints/<rule>/…                kept fingerprints, for retro-hunts
//! audit_freeze_backup/earshot/review/items/<trace_id>.json   an item for human review
//! audit_freeze_backup/earshot/review/open/<seconds>-<trace_id>  the queue: one empty marker per open item
//! audit_freeze_backup/earshot/review/decided/<trace_id>.json the decision (created once: the claim)
//! audit_freeze_backup/earshot/review/decided/<trace_id>.take-<n>.json  the n-th takeover of an abandoned claim
//! audit_freeze_backup/earshot/review/claimed/<trace_id>      a claim not yet carried out
//! audit_freeze_backup/earshot/results/<YYYY-MM-DD>/<seconds>-<trace_id>.json  one result, by day
//! audit_freeze_backup/earshot/leases/<work>/<generation>.json  who does a piece of work (a job, a restore, a scan, a hunt)
//! ```

/// Keys under this are never moderated.
pub const BACKUP_ROOT: &str = "audit_freeze_backup/";
/// Where `block.mode = "move"` puts blocked objects.
pub const BACKUP_PREFIX: &str = "audit_freeze_backup/increment_audit/";
/// earshot's own records.
pub const STATE_PREFIX: &str = "audit_freeze_backup/earshot/";
pub const JOBS_PREFIX: &str = "audit_freeze_backup/earshot/jobs/";
pub const DEAD_LETTER_PREFIX: &str = "audit_freeze_backup/earshot/dead-letters/";
pub const DEAD_JOB_PREFIX: &str = "audit_freeze_backup/earshot/dead-jobs/";
pub const PENDING_PREFIX: &str = "audit_freeze_backup/earshot/pending/";
pub const BLOCKS_PREFIX: &str = "audit_freeze_backup/earshot/blocks/";
pub const AUDIT_PREFIX: &str = "audit_freeze_backup/earshot/audit/";
pub const ALLOW_PREFIX: &str = "audit_freeze_backup/earshot/allow/";
pub const SCANS_PREFIX: &str = "audit_freeze_backup/earshot/scans/";
pub const PRINTS_PREFIX: &str = "audit_freeze_backup/earshot/prints/";
pub const REVIEW_OPEN_PREFIX: &str = "audit_freeze_backup/earshot/review/open/";
pub const REVIEW_CLAIMED_PREFIX: &str = "audit_freeze_backup/earshot/review/claimed/";
pub const RESULTS_PREFIX: &str = "audit_freeze_backup/earshot/results/";
pub const LEASES_PREFIX: &str = "audit_freeze_backup/earshot/leases/";

/// Whether earshot owns `key` (and so never moderates it).
pub fn is_reserved(key: &str) -> bool {
    key.starts_with(BACKUP_ROOT)
}

/// Where a moved object goes.
pub fn backup_key(key: &str) -> String {
    format!("{BACKUP_PREFIX}{key}")
}

/// The record of a finished job.
pub fn job_record_key(trace_id: &str) -> String {
    format!("{JOBS_PREFIX}{trace_id}.json")
}

/// An undelivered callback.
pub fn dead_letter_key(trace_id: &str) -> String {
    format!("{DEAD_LETTER_PREFIX}{trace_id}.json")
}

/// A job parked because it could not be run.
pub fn dead_job_key(id: &str) -> String {
    format!("{DEAD_JOB_PREFIX}{id}.json")
}

/// Everything stored for one waiting job.
pub fn pending_prefix(trace_id: &str) -> String {
    format!("{PENDING_PREFIX}{trace_id}/")
}

/// A waiting job's description.
pub fn pending_job_key(trace_id: &str) -> String {
    format!("{}job.json", pending_prefix(trace_id))
}

/// A provider's task for a waiting job.
pub fn pending_task_key(trace_id: &str, engine: &str) -> String {
    format!("{}task-{engine}.json", pending_prefix(trace_id))
}

/// A provider's result for a waiting job.
pub fn pending_result_key(trace_id: &str, engine: &str) -> String {
    format!("{}result-{engine}.json", pending_prefix(trace_id))
}

/// The block records of one key (every version of it ever blocked).
pub fn blocks_of_key(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(key.as_bytes());
    format!("{BLOCKS_PREFIX}{}/", hex::encode(&hash[..16]))
}

/// The block record of one object version.
pub fn block_record_key(key: &str, trace_id: &str) -> String {
    format!("{}{trace_id}.json", blocks_of_key(key))
}

/// One audit log entry; keys sort by time.
pub fn audit_key(at_secs: u64, id: &str) -> String {
    format!("{AUDIT_PREFIX}{at_secs:012}-{id}.json")
}

/// Audio marked normal by a person, by its SHA-256 (lowercase hex).
pub fn allow_key(sha256: &str) -> String {
    format!("{ALLOW_PREFIX}{sha256}.json")
}

/// The fingerprint of audio marked normal.
pub fn allow_print_key(sha256: &str) -> String {
    format!("{ALLOW_PREFIX}{sha256}.esfp")
}

/// Everything stored for one scan.
pub fn scan_prefix(scan_id: &str) -> String {
    format!("{SCANS_PREFIX}{scan_id}/")
}

/// The lease of the restore of the block `trace_id` ([`crate::state::lease`]).
pub fn restore_lease_prefix(trace_id: &str) -> String {
    format!("{LEASES_PREFIX}restore-{trace_id}/")
}

/// The lease of the job `trace_id`: which process judges that object version.
pub fn job_lease_prefix(trace_id: &str) -> String {
    format!("{LEASES_PREFIX}job-{trace_id}/")
}

/// The lease of the scan `scan_id`.
pub fn scan_lease_prefix(scan_id: &str) -> String {
    format!("{LEASES_PREFIX}scan-{scan_id}/")
}

/// The lease of rule `rule`'s automatic retro-hunt.
pub fn hunt_lease_prefix(rule: &str) -> String {
    format!("{LEASES_PREFIX}hunt-{rule}/")
}

/// A scan's checkpoint: where it is and what it counted.
pub fn scan_checkpoint_key(scan_id: &str) -> String {
    format!("{}checkpoint.json", scan_prefix(scan_id))
}

/// A scan's final report.
pub fn scan_report_key(scan_id: &str) -> String {
    format!("{}report.json", scan_prefix(scan_id))
}

/// The kept fingerprints of one rule.
pub fn prints_prefix(rule: &str) -> String {
    format!("{PRINTS_PREFIX}{rule}/")
}

/// A review item.
pub fn review_item_key(trace_id: &str) -> String {
    format!("audit_freeze_backup/earshot/review/items/{trace_id}.json")
}

/// The queue marker of an open review item; markers sort oldest first.
pub fn review_open_key(created_at: u64, trace_id: &str) -> String {
    format!("{REVIEW_OPEN_PREFIX}{created_at:011}-{trace_id}")
}

/// `(created_at, trace_id)` of a queue marker.
pub fn parse_review_open_key(key: &str) -> Option<(u64, String)> {
    let (secs, trace_id) = key.strip_prefix(REVIEW_OPEN_PREFIX)?.split_once('-')?;
    Some((secs.parse().ok()?, trace_id.to_owned()))
}

/// The decision on a review item.
pub fn review_decision_key(trace_id: &str) -> String {
    format!("audit_freeze_backup/earshot/review/decided/{trace_id}.json")
}

/// The `n`-th takeover (n ≥ 1) of an abandoned review decision.
pub fn review_takeover_key(trace_id: &str, n: u32) -> String {
    format!("audit_freeze_backup/earshot/review/decided/{trace_id}.take-{n}.json")
}

/// The marker of a review decision claimed and not yet carried out.
pub fn review_claimed_key(trace_id: &str) -> String {
    format!("{REVIEW_CLAIMED_PREFIX}{trace_id}")
}

/// The results of one day (`YYYY-MM-DD`, UTC).
pub fn results_of_day(day: &str) -> String {
    format!("{RESULTS_PREFIX}{day}/")
}

/// The console's failed logins of one user name (by the SHA-256 of the name, in hex).
pub fn login_failures_prefix(name_sha256: &str) -> String {
    format!("audit_freeze_backup/earshot/console/login-failures/{name_sha256}/")
}

/// A day's results packed into one object (a cache of the rows: each one checked against the
/// listing's ETag), so the history reads a day with one GET instead of one per row.
pub fn result_pack_key(day: &str) -> String {
    format!("audit_freeze_backup/earshot/result-packs/{day}.jsonl.gz")
}

/// One result, filed under the day it was judged.
pub fn result_key(day: &str, judged_at: u64, trace_id: &str) -> String {
    format!("{}{judged_at:011}-{trace_id}.json", results_of_day(day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_earshot_writes_is_reserved() {
        for key in [
            backup_key("a/b.mp3"),
            job_record_key("t"),
            dead_letter_key("t"),
            dead_job_key("t"),
            pending_job_key("t"),
            pending_task_key("t", "ams"),
            pending_result_key("t", "ams"),
            block_record_key("a/b.mp3", "t"),
            audit_key(1, "x"),
            allow_key("ab"),
            allow_print_key("ab"),
            result_pack_key("2026-01-02"),
            login_failures_prefix("ab"),
            scan_checkpoint_key("s"),
            scan_report_key("s"),
            prints_prefix("r"),
            review_item_key("t"),
            review_open_key(1, "t"),
            review_decision_key("t"),
            review_takeover_key("t", 1),
            review_claimed_key("t"),
            result_key("2026-12-03", 1, "t"),
            restore_lease_prefix("t"),
            job_lease_prefix("t"),
            scan_lease_prefix("s"),
            hunt_lease_prefix("r"),
        ] {
            assert!(is_reserved(&key), "{key}");
            assert!(key.starts_with(BACKUP_ROOT), "{key}");
        }
        assert_eq!(
            backup_key("audio/x.mp3"),
            "audit_freeze_backup/increment_audit/audio/x.mp3"
        );
        assert!(!is_reserved("audio/audit_freeze_backup/x.mp3"));
        assert_eq!(
            parse_review_open_key(&review_open_key(42, "abc")),
            Some((42, "abc".to_owned()))
        );
    }
}
