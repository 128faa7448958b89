//! Every shape of event `job.rs` accepts (S3, SNS-wrapped, EventBridge, MinIO, S3 Batch, SQS
//! bodies): any bytes give jobs or an error, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|body: &[u8]| {
    let _ = earshot::job::parse_event(body);
});
