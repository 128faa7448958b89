//! One process runs a scan at a time: the scan's lease in the bucket ([`crate::state::lease`]),
//! renewed every third of [`SCAN_LEASE_SECS`] while it runs. Another `earshot scan` of the same
//! objects is refused meanwhile ([`ScanError::Busy`]) and resumes the scan from its checkpoint once
//! a stopped holder's lease ran out.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Checkpoint, Options, ScanError, run_held, scan_id};
use crate::layout;
use crate::pipeline::Pipeline;
use crate::state::lease::{self, Taken};

/// A scan's lease, renewed every third of it while the scan runs: another `earshot scan` of the
/// same objects is refused meanwhile, and resumes the scan once a stopped holder's lease ran out.
const SCAN_LEASE_SECS: u64 = 120;

/// [`super::run`] under the scan's lease.
pub(super) async fn run(
    pipeline: Arc<Pipeline>,
    options: Options,
    stop: CancellationToken,
) -> Result<Checkpoint, ScanError> {
    let id = scan_id(&options);
    let (s3, bucket) = (pipeline.s3.clone(), options.bucket.clone());
    let prefix = layout::scan_lease_prefix(&id);
    let now = pipeline.clock.now_secs();
    let held = match lease::take(
        &s3,
        &bucket,
        &prefix,
        pipeline.holder(),
        now,
        SCAN_LEASE_SECS,
    )
    .await?
    {
        Taken::Held(held) => held,
        Taken::Busy(theirs) => {
            return Err(ScanError::Busy {
                id,
                holder: theirs.holder,
                until: theirs.until,
            });
        }
    };
    // Renewed while the scan runs; lost (another process took it over after a stall), the scan
    // stops where its checkpoint is.
    let lost = stop.child_token();
    let renewer = {
        let (mut held, lost, pipeline) = (held.clone(), lost.clone(), pipeline.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(SCAN_LEASE_SECS / 3)).await;
                let now = pipeline.clock.now_secs();
                match held.renew(&pipeline.s3, now, SCAN_LEASE_SECS).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!("Another process took over this scan's lease; stopping.");
                        lost.cancel();
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "Could not renew the scan's lease."),
                }
            }
        })
    };
    crate::faults::pause("scan-leased").await;
    let result = run_held(pipeline.clone(), options, lost).await;
    renewer.abort();
    if let Err(e) = held.release(&s3, pipeline.clock.now_secs()).await {
        tracing::warn!(error = %e, "Could not release the scan's lease; it runs out by itself.");
    }
    result
}
