//! Probe and decode of any bytes as an upload, through earshot's own entry with its duration cap:
//! audio, or an error, never a crash or a hang. The entry turns a decoder's panic into corrupt
//! audio (the first input this target found panicked in symphonia's WAVE reader), so the default
//! panic hook is put back here in place of libFuzzer's abort-on-panic: what the target hunts is
//! what the guard cannot catch (hangs, memory blow-ups, memory errors).
#![no_main]

use earshot::audio::{DecodeLimits, decode_file};

libfuzzer_sys::fuzz_target!(
    init: {
        let _ = std::panic::take_hook();
    },
    |bytes: &[u8]| {
        let Ok(mut file) = tempfile::NamedTempFile::new() else {
            return;
        };
        if std::io::Write::write_all(&mut file, bytes).is_err() {
            return;
        }
        let limits = DecodeLimits {
            max_duration_secs: 30,
        };
        let _ = decode_file(file.path(), None, limits, &mut |_, _| {});
    }
);
