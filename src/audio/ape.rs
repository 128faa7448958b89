//! Monkey's Audio (APE), decoded in pure Rust by the `ape-decoder` crate (bit-exact against the
//! reference decoder), frame by frame.

use std::fs::File;
use std::io::BufReader;

use super::{AudioError, AudioInfo, Output};

pub(super) fn decode(file: File, output: &mut Output<'_>) -> Result<AudioInfo, AudioError> {
    let mut decoder = ape_decoder::ApeDecoder::new(BufReader::new(file))
        .map_err(|e| AudioError::Corrupt(format!("APE header unreadable: {e}")))?;
    let info = decoder.info();
    let (rate, channels, bits) = (
        info.sample_rate,
        usize::from(info.channels),
        info.bits_per_sample,
    );
    let estimated_frames = Some(info.total_samples);
    if channels == 0 || !matches!(bits, 8 | 16 | 24 | 32) {
        return Err(AudioError::UnsupportedCodec(format!(
            "APE with {channels} channels of {bits} bits"
        )));
    }
    let width = usize::from(bits / 8);
    let scale = 1.0 / (1u64 << (bits - 1)) as f32;
    let mut mono = Vec::new();
    let mut truncated = false;
    for frame in decoder.frames() {
        let bytes = match frame {
            Ok(bytes) => bytes,
            Err(e) if output.frames() > 0 => {
                tracing::warn!(error = %e, "APE frame failed to decode; judging what decoded.");
                truncated = true;
                break;
            }
            Err(e) => {
                return Err(AudioError::Corrupt(format!(
                    "APE frame failed to decode: {e}"
                )));
            }
        };
        mono.clear();
        for frame in bytes.chunks_exact(width * channels) {
            let mut sum = 0.0f32;
            for sample in frame.chunks_exact(width) {
                let value = match width {
                    1 => i32::from(sample[0]) - 128,
                    2 => i32::from(i16::from_le_bytes([sample[0], sample[1]])),
                    3 => i32::from_le_bytes([0, sample[0], sample[1], sample[2]]) >> 8,
                    _ => i32::from_le_bytes([sample[0], sample[1], sample[2], sample[3]]),
                };
                sum += value as f32 * scale;
            }
            mono.push(sum / channels as f32);
        }
        output.emit(&mono, rate)?;
    }
    Ok(output.info("ape", "ape", rate, channels, estimated_frames, truncated))
}
