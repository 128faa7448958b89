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
        ] {
            assert!(is_reserved(&key), "{key}");
            assert!(key.starts_with(BACKUP_ROOT), "{key}");
        }
        assert_eq!(
            backup_key("audio/x.mp3"),
            "audit_freeze_backup/increment_audit/audio/x.mp3"
        );
        assert!(!is_reserved("audio/audit_freeze_backup/x.mp3"));
    }
}
