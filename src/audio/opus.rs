//! Opus in Ogg, decoded in pure Rust: the `ogg` crate reads packets, `opus-rs` decodes them at
//! 48 kHz. (Measured here on a 5-minute stereo file: opus-rs 446× realtime; the `opus-decoder`
//! crate 3×, too slow to keep up with uploads.)

use std::fs::File;
use std::io::BufReader;

use super::{AudioError, AudioInfo, Output};

const RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms at 48 kHz.
const MAX_PACKET_FRAMES: usize = 5760;

pub(super) fn decode(file: File, output: &mut Output<'_>) -> Result<AudioInfo, AudioError> {
    let mut reader = ogg::PacketReader::new(BufReader::new(file));
    let corrupt = |what: String| AudioError::Corrupt(format!("Ogg Opus: {what}"));
    let head = reader
        .read_packet()
        .map_err(|e| corrupt(e.to_string()))?
        .ok_or_else(|| corrupt("no header packet".to_owned()))?;
    if head.data.len() < 19 || !head.data.starts_with(b"OpusHead") {
        return Err(corrupt("the first packet is not OpusHead".to_owned()));
    }
    let channels = usize::from(head.data[9]);
    let pre_skip = usize::from(u16::from_le_bytes([head.data[10], head.data[11]]));
    let stream = head.stream_serial();
    if !(1..=2).contains(&channels) {
        return Err(AudioError::UnsupportedCodec(format!(
            "Opus with {channels} channels"
        )));
    }
    let mut decoder = opus_rs::OpusDecoder::new(RATE as i32, channels)
        .map_err(|e| corrupt(format!("decoder: {e}")))?;
    let mut pcm = vec![0.0f32; MAX_PACKET_FRAMES * channels];
    let mut mono = Vec::with_capacity(MAX_PACKET_FRAMES);
    let mut to_skip = pre_skip;
    let mut packets = 0u64;
    let mut bad = 0u64;
    let mut truncated = false;
    loop {
        let packet = match reader.read_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(e) if packets > 0 => {
                tracing::warn!(error = %e, "Ogg stream ends early; judging what decoded.");
                truncated = true;
                break;
            }
            Err(e) => return Err(corrupt(e.to_string())),
        };
        packets += 1;
        // The second packet is OpusTags; other logical streams are ignored.
        if packet.stream_serial() != stream || packet.data.starts_with(b"OpusTags") {
            continue;
        }
        let frames = match decoder.decode(&packet.data, MAX_PACKET_FRAMES, &mut pcm) {
            Ok(frames) => frames.min(MAX_PACKET_FRAMES),
            Err(_) => {
                bad += 1;
                if bad > 64 && bad > packets / 2 {
                    return Err(corrupt(format!(
                        "{bad} of {packets} packets failed to decode"
                    )));
                }
                continue;
            }
        };
        mono.clear();
        for frame in pcm[..frames * channels].chunks_exact(channels) {
            mono.push(frame.iter().sum::<f32>() / channels as f32);
        }
        let skip = to_skip.min(mono.len());
        to_skip -= skip;
        output.emit(&mono[skip..], RATE)?;
    }
    if output.frames() == 0 {
        return Err(corrupt("no audio decoded".to_owned()));
    }
    Ok(output.info("ogg", "opus", RATE, channels, None, truncated))
}
