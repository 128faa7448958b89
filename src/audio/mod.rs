//! Probe and decode (DESIGN §1): a spooled object → mono `f32` PCM, handed to a sink chunk by chunk
//! so no whole recording is ever held in memory. All ten supported formats decode:
//!
//! | format | decoder |
//! |---|---|
//! | mp3, wav, flac, aac, m4a (AAC, ALAC), ogg (Vorbis), 3gp (AAC) | symphonia (pure Rust) |
//! | ape | [`ape`]: the `ape-decoder` crate (pure Rust) |
//! | ogg (Opus) | [`opus`]: `ogg` + `opus-rs` (pure Rust) |
//! | amr (NB, WB), wma, 3gp (AMR) | [`external`]: `ffmpeg` as a subprocess, when installed |
//!
//! symphonia is guarded:
//!
//! - the container is sniffed before symphonia's probe, because the probe scans forward for any
//!   known marker and finds the WAV header an APE file stores inside itself, then "decodes" the
//!   compressed bytes as PCM noise without an error. APE, Opus, AMR and WMA are routed to their own
//!   decoders by their leading bytes;
//! - the probe's scan depth is limited, for the same reason;
//! - decoding runs to the real end of the stream, never to the frame count a header estimates
//!   (a VBR MP3 without a Xing header estimates its length from the first frame's bitrate);
//! - the duration cap is enforced while decoding, so an overlong file stops early.

mod ape;
mod external;
mod opus;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::{Hint, Probe, ProbeOptions};
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{
    MediaSource, MediaSourceStream, MediaSourceStreamOptions, ReadOnlySource,
};
use symphonia::core::meta::MetadataOptions;

/// What decoding found out about a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    /// The container, e.g. `mp3`, `wav`, `mp4`, `ogg`.
    pub container: String,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: usize,
    /// Frames decoded (samples per channel).
    pub frames: u64,
    /// The frame count the container declared or estimated, if any. Never trusted: decoding runs
    /// to the real end.
    pub estimated_frames: Option<u64>,
    /// Packets the decoder rejected and skipped.
    pub bad_packets: u64,
    /// The stream ended inside a packet (a cut-off upload); what came before was decoded.
    pub truncated: bool,
}

impl AudioInfo {
    pub fn duration_secs(&self) -> f64 {
        if self.sample_rate == 0 {
            0.0
        } else {
            self.frames as f64 / f64::from(self.sample_rate)
        }
    }
}

/// Why a file could not be decoded. None of these is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("the object is empty (0 bytes)")]
    Empty,
    #[error("not a recognised audio file: {0}")]
    UnrecognisedFormat(String),
    #[error("unsupported codec: {0}")]
    UnsupportedCodec(String),
    #[error("corrupt audio: {0}")]
    Corrupt(String),
    #[error(
        "audio is longer than the {limit_secs} s limit (stopped decoding at {decoded_secs:.0} s)"
    )]
    TooLong { limit_secs: u64, decoded_secs: f64 },
    #[error("reading the spooled object failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Limits applied while decoding.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_duration_secs: u64,
}

/// How far symphonia's probe may scan for a container marker. Enough for ID3 tags with cover art
/// (metadata is skipped separately), small enough not to wander into an unknown container's body.
const MAX_PROBE_DEPTH: u32 = 256 * 1024;

/// Decodes `path` to mono PCM, calling `sink(samples, sample_rate)` for each decoded packet.
///
/// `suffix` is a hint (the key's suffix); the content decides.
///
/// # Errors
/// See [`AudioError`]: empty, not audio, a codec symphonia cannot decode, corrupt, or too long.
pub fn decode_file(
    path: &Path,
    suffix: Option<&str>,
    limits: DecodeLimits,
    sink: &mut dyn FnMut(&[f32], u32),
) -> Result<AudioInfo, AudioError> {
    // A decoder that panics on a malformed file (found by fuzzing: symphonia's WAVE reader
    // overflows a shift on an extensible format's channel mask) has judged the file corrupt; the
    // job calls back so instead of failing (and being parked without a word to the user).
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_unguarded(path, suffix, limits, sink)
    }))
    .unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_owned());
        Err(AudioError::Corrupt(format!(
            "the decoder failed on this file ({why})"
        )))
    })
}

fn decode_unguarded(
    path: &Path,
    suffix: Option<&str>,
    limits: DecodeLimits,
    sink: &mut dyn FnMut(&[f32], u32),
) -> Result<AudioInfo, AudioError> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        return Err(AudioError::Empty);
    }
    let mut head = [0u8; 64];
    let got = read_up_to(&mut file, &mut head)?;
    file.seek(SeekFrom::Start(0))?;
    let mut output = Output {
        sink,
        max_duration_secs: limits.max_duration_secs,
        frames: 0,
    };
    match sniff_special(&head[..got]) {
        Some(Special::Ape) => return ape::decode(file, &mut output),
        Some(Special::OggOpus) => return opus::decode(file, &mut output),
        Some(Special::External(what)) => return external::decode(path, what, &mut output),
        None => {}
    }

    let mut probe = Probe::new_with_options(&ProbeOptions {
        max_probe_depth: MAX_PROBE_DEPTH,
        ..ProbeOptions::default()
    });
    symphonia::default::register_enabled_formats(&mut probe);
    let mut hint = Hint::new();
    if let Some(suffix) = suffix {
        hint.with_extension(suffix);
    }
    let mut format = open_format(&probe, &hint, Box::new(file), &head[..got])?;
    if matches!(format.format_info().short_name, "mp1" | "mp2" | "mp3") {
        // Without a Xing/Info/VBRI tag, symphonia's MPEG reader estimates the frame count from
        // the first frames' bitrate (only when the source is seekable) and trims every packet
        // past that estimate: a VBR file is cut short. Read MPEG audio as a plain stream, so an
        // exact tag is still honoured but no estimate is made, and decoding runs to the real end.
        let stream = ReadOnlySource::new(File::open(path)?);
        format = open_format(&probe, &hint, Box::new(stream), &head[..got])?;
    }
    let container = format.format_info().short_name.to_owned();

    let Some(track) = format.default_track(TrackType::Audio) else {
        // symphonia's MP4 reader drops tracks whose codec it does not know (AMR in 3GP).
        if container == "isomp4" {
            drop(format);
            let what = "an MP4/3GP audio track symphonia cannot read";
            return external::decode(path, what, &mut output);
        }
        return Err(AudioError::UnrecognisedFormat(format!(
            "{container} file has no audio track"
        )));
    };
    let track_id = track.id;
    let estimated_frames = track.num_frames;
    let Some(params) = track.codec_params.as_ref().and_then(|p| p.audio()).cloned() else {
        drop(format);
        return external::decode(path, &format!("a {container} audio track"), &mut output);
    };
    let codecs = symphonia::default::get_codecs();
    let Ok(mut decoder) = codecs.make_audio_decoder(&params, &AudioDecoderOptions::default())
    else {
        // A codec symphonia lacks inside a container it reads: ffmpeg, if present.
        drop(format);
        let what = format!("codec {} in a {container} container", params.codec);
        return external::decode(path, &what, &mut output);
    };
    let codec = decoder.codec_info().short_name.to_owned();

    let mut info = AudioInfo {
        container,
        codec,
        sample_rate: params.sample_rate.unwrap_or(0),
        channels: params.channels.as_ref().map_or(0, |c| c.count()),
        frames: 0,
        estimated_frames,
        bad_packets: 0,
        truncated: false,
    };
    let mut good_packets: u64 = 0;
    let mut planes: Vec<Vec<f32>> = Vec::new();
    let mut mono: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                info.truncated = true;
                break;
            }
            Err(SymphoniaError::ResetRequired) => break,
            Err(SymphoniaError::DecodeError(_)) => {
                info.bad_packets += 1;
                if info.bad_packets > 64 && info.bad_packets > good_packets {
                    break;
                }
                continue;
            }
            Err(e) => return Err(AudioError::Corrupt(format!("reading packets failed: {e}"))),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            Err(SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_)) => {
                info.bad_packets += 1;
                if info.bad_packets > 64 && info.bad_packets > good_packets {
                    break;
                }
                continue;
            }
            Err(e) => return Err(AudioError::Corrupt(format!("decoder failed: {e}"))),
        };
        good_packets += 1;
        let rate = buffer.spec().rate();
        let frames = buffer.frames();
        if frames == 0 {
            continue;
        }
        info.sample_rate = rate;
        info.channels = buffer.num_planes();
        buffer.copy_to_vecs_planar::<f32>(&mut planes);
        downmix(&planes, frames, &mut mono);
        output.emit(&mono, rate)?;
        info.frames = output.frames;
    }
    if info.frames == 0 {
        return Err(AudioError::Corrupt(format!(
            "no audio could be decoded from the {} stream ({} bad packets)",
            info.codec, info.bad_packets
        )));
    }
    if info.bad_packets > good_packets {
        return Err(AudioError::Corrupt(format!(
            "{} of {} packets failed to decode",
            info.bad_packets,
            info.bad_packets + good_packets
        )));
    }
    Ok(info)
}

fn open_format(
    probe: &Probe,
    hint: &Hint,
    source: Box<dyn MediaSource>,
    head: &[u8],
) -> Result<Box<dyn FormatReader>, AudioError> {
    let mss = MediaSourceStream::new(source, MediaSourceStreamOptions::default());
    probe
        .probe(
            hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| match sniff_container(head) {
            Some(container) => AudioError::Corrupt(format!(
                "{container} header found but the stream is unreadable: {e}"
            )),
            None => AudioError::UnrecognisedFormat(
                "no known container or codec signature in the first bytes".to_owned(),
            ),
        })
}

fn downmix(planes: &[Vec<f32>], frames: usize, mono: &mut Vec<f32>) {
    mono.clear();
    match planes {
        [] => mono.resize(frames, 0.0),
        [only] => mono.extend_from_slice(&only[..frames]),
        many => {
            let scale = 1.0 / many.len() as f32;
            mono.extend_from_slice(&many[0][..frames]);
            for plane in &many[1..] {
                for (m, s) in mono.iter_mut().zip(&plane[..frames]) {
                    *m += s;
                }
            }
            for m in mono.iter_mut() {
                *m *= scale;
            }
        }
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Names the container whose signature opens the file, if any: a file that starts like audio but
/// cannot be read is corrupt, not "not audio".
fn sniff_container(head: &[u8]) -> Option<&'static str> {
    match head {
        [b'f', b'L', b'a', b'C', ..] => Some("FLAC"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'A',
            b'V',
            b'E',
            ..,
        ] => Some("WAV"),
        [b'O', b'g', b'g', b'S', ..] => Some("Ogg"),
        [b'I', b'D', b'3', ..] => Some("MP3 (ID3)"),
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => Some("MP4/3GP"),
        [0xFF, second, ..] if second & 0xF6 == 0xF0 => Some("AAC (ADTS)"),
        [0xFF, second, ..] if second & 0xE0 == 0xE0 => Some("MPEG audio"),
        _ => None,
    }
}

/// Where decoded audio goes: the caller's sink, behind the duration cap (enforced in one place, as
/// samples arrive, whichever decoder produced them).
pub(crate) struct Output<'a> {
    sink: &'a mut dyn FnMut(&[f32], u32),
    max_duration_secs: u64,
    frames: u64,
}

impl Output<'_> {
    fn emit(&mut self, mono: &[f32], rate: u32) -> Result<(), AudioError> {
        if mono.is_empty() || rate == 0 {
            return Ok(());
        }
        self.frames += mono.len() as u64;
        if self.frames > self.max_duration_secs.saturating_mul(u64::from(rate)) {
            return Err(AudioError::TooLong {
                limit_secs: self.max_duration_secs,
                decoded_secs: self.frames as f64 / f64::from(rate),
            });
        }
        (self.sink)(mono, rate);
        Ok(())
    }

    fn frames(&self) -> u64 {
        self.frames
    }

    fn info(
        &self,
        container: &str,
        codec: &str,
        sample_rate: u32,
        channels: usize,
        estimated_frames: Option<u64>,
        truncated: bool,
    ) -> AudioInfo {
        AudioInfo {
            container: container.to_owned(),
            codec: codec.to_owned(),
            sample_rate,
            channels,
            frames: self.frames,
            estimated_frames,
            bad_packets: 0,
            truncated,
        }
    }
}

/// Formats that do not go through symphonia.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Special {
    Ape,
    OggOpus,
    /// Decoded by ffmpeg: the format's name.
    External(&'static str),
}

/// Recognises, by their leading bytes, the formats symphonia would misread or cannot decode.
fn sniff_special(head: &[u8]) -> Option<Special> {
    const ASF_HEADER: [u8; 16] = [
        0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62, 0xCE,
        0x6C,
    ];
    if head.starts_with(b"MAC ") {
        Some(Special::Ape)
    } else if head.starts_with(b"#!AMR-WB\n") {
        Some(Special::External("AMR-WB"))
    } else if head.starts_with(b"#!AMR") {
        Some(Special::External("AMR-NB"))
    } else if head.starts_with(&ASF_HEADER) {
        Some(Special::External("Windows Media Audio (ASF/WMA)"))
    } else if head.starts_with(b"OggS") && head.windows(8).any(|w| w == b"OpusHead") {
        Some(Special::OggOpus)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_routes_what_symphonia_cannot_decode() {
        let opus = b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead";
        let vorbis = b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1e\x01vorbis";
        let cases: &[(&[u8], Option<Special>)] = &[
            (b"MAC \x96\x0f\x00\x00", Some(Special::Ape)),
            (b"#!AMR\n\x3c", Some(Special::External("AMR-NB"))),
            (b"#!AMR-WB\n\x04", Some(Special::External("AMR-WB"))),
            (opus, Some(Special::OggOpus)),
            (vorbis, None),
            (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
            (b"ID3\x04\x00\x00\x00\x00\x00\x00", None),
        ];
        for (head, want) in cases {
            assert_eq!(sniff_special(head), *want, "{head:?}");
        }
    }

    /// Found by `bench/fuzz.sh` (target `decode`): an MP3-looking prefix, then a WAVE file whose
    /// extensible format declares more channels than its mask has bits; symphonia's WAVE reader
    /// panics on it where overflow checks are on (as in the tests' builds).
    #[test]
    fn a_wave_channel_mask_shift_overflow_is_corrupt_audio_not_a_panic() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fuzz/decode-wave-channel-mask-shift-overflow.bin");
        let limits = DecodeLimits {
            max_duration_secs: 30,
        };
        let decoded = decode_file(&path, Some("wav"), limits, &mut |_, _| {});
        if cfg!(debug_assertions) {
            match decoded {
                Err(AudioError::Corrupt(why)) => {
                    assert!(why.contains("decoder failed"), "{why}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn downmix_averages_channels() {
        let mut mono = Vec::new();
        downmix(&[vec![1.0, 0.0], vec![0.0, 0.5]], 2, &mut mono);
        assert_eq!(mono, vec![0.5, 0.25]);
    }
}
