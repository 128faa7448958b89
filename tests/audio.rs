//! Probe and decode on files ffmpeg makes here: every format symphonia decodes comes back at its
//! true duration; the formats it cannot decode are refused by name, and an APE file is never
//! "decoded" as noise; a VBR MP3 without a Xing header decodes to its real end; the duration cap
//! stops decoding early; damaged and non-audio files get their own errors.

mod common;

use std::path::Path;

use common::{music, run, tone};
use earshot::audio::{AudioError, AudioInfo, DecodeLimits, decode_file};

const LIMITS: DecodeLimits = DecodeLimits {
    max_duration_secs: 3 * 60 * 60,
};

fn decode(path: &Path) -> Result<AudioInfo, AudioError> {
    let suffix = earshot::rules::key_suffix(&path.to_string_lossy());
    let mut samples = 0usize;
    let result = decode_file(path, suffix.as_deref(), LIMITS, &mut |chunk, _| {
        samples += chunk.len()
    });
    if let Ok(info) = &result {
        assert_eq!(
            samples as u64, info.frames,
            "the sink saw every decoded frame, once, in mono"
        );
    }
    result
}

fn assert_duration(info: &AudioInfo, want: f64, what: &str) {
    let got = info.duration_secs();
    assert!(
        (got - want).abs() <= want * 0.01,
        "{what}: decoded {got:.3} s, true length {want} s ({info:?})"
    );
}

#[test]
fn every_symphonia_format_decodes_to_its_true_duration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &[&str])] = &[
        ("mp3", &["-c:a", "libmp3lame", "-b:a", "128k"]),
        ("wav", &[]),
        ("flac", &[]),
        ("aac", &["-c:a", "aac", "-b:a", "96k"]),
        ("m4a", &["-c:a", "aac", "-b:a", "96k"]),
        ("ogg", &["-c:a", "libvorbis", "-q:a", "3"]),
        (
            "3gp",
            &["-c:a", "aac", "-ar", "16000", "-ac", "1", "-b:a", "32k"],
        ),
    ];
    for (suffix, args) in cases {
        let path = music(&dir.path().join(format!("clip.{suffix}")), 20.0, args);
        let info = decode(&path).unwrap_or_else(|e| panic!("{suffix}: {e}"));
        assert_duration(&info, 20.0, suffix);
        assert_eq!(info.bad_packets, 0, "{suffix}");
    }
}

#[test]
fn vbr_mp3_without_xing_header_decodes_to_the_real_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Loud music first (high-bitrate frames) then near silence (low-bitrate frames): a length
    // estimated from the first frames' bitrate is far too short, and trusting it truncates.
    let loud = music(&dir.path().join("loud.wav"), 10.0, &[]);
    let quiet = tone(
        &dir.path().join("quiet.wav"),
        50.0,
        100,
        &["-af", "volume=0.001"],
    );
    let mp3 = dir.path().join("vbr.mp3");
    run(std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&loud)
        .arg("-i")
        .arg(&quiet)
        .args([
            "-filter_complex",
            "[0:a][1:a]concat=n=2:v=0:a=1",
            "-c:a",
            "libmp3lame",
            "-q:a",
            "2",
            "-write_xing",
            "0",
        ])
        .arg(&mp3));
    let info = decode(&mp3).expect("decodes");
    assert_duration(&info, 60.0, "VBR MP3 without Xing");
    let estimate = naive_estimate_secs(&mp3);
    assert!(
        estimate.is_some_and(|secs| secs < 50.0),
        "this file must exercise the trap: symphonia's own estimate ({estimate:?} s) is short"
    );
}

/// The length symphonia's default, seekable path estimates for a file (what trusting it would cut
/// decoding to).
fn naive_estimate_secs(path: &Path) -> Option<f64> {
    use symphonia::core::formats::TrackType;
    use symphonia::core::io::MediaSourceStream;
    let file = std::fs::File::open(path).expect("open");
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let format = symphonia::default::get_probe()
        .probe(
            &Default::default(),
            mss,
            Default::default(),
            Default::default(),
        )
        .expect("probes");
    let track = format.default_track(TrackType::Audio).expect("audio track");
    let rate = track.codec_params.as_ref()?.audio()?.sample_rate?;
    Some(track.num_frames? as f64 / f64::from(rate))
}

#[test]
fn formats_symphonia_cannot_decode_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "amr",
            &["-c:a", "libopencore_amrnb", "-ar", "8000", "-ac", "1"],
            "AMR",
        ),
        ("wma", &["-c:a", "wmav2"], "WMA"),
        ("ogg", &["-c:a", "libopus"], "Opus"),
    ];
    for (suffix, args, word) in cases {
        let path = dir.path().join(format!("clip-{word}.{suffix}"));
        let mut command = std::process::Command::new("ffmpeg");
        command
            .args([
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
            ])
            .arg("sine=frequency=440:duration=3")
            .args(*args)
            .arg(&path)
            .stderr(std::process::Stdio::null());
        let made = command.status().is_ok_and(|s| s.success());
        if !made {
            // This ffmpeg build has no encoder for it (AMR-NB needs libopencore-amrnb): fall back
            // to the format's magic bytes, which is what the refusal reads.
            assert_eq!(*word, "AMR", "ffmpeg could not make a {word} file");
            std::fs::write(&path, b"#!AMR\n\x3c\x91\x17\x16\xbe\x66\x78\x00\x00").expect("write");
        }
        match decode(&path) {
            Err(AudioError::UnsupportedCodec(what)) => assert!(what.contains(word), "{what}"),
            other => panic!("{suffix}: expected unsupported codec, got {other:?}"),
        }
    }
}

#[test]
fn ape_is_never_decoded_as_noise() {
    // An APE file keeps the source WAV's header inside its own header; a probe that scans forward
    // finds "RIFF…WAVE" and would read the compressed frames as PCM. Build exactly that layout: the
    // APE descriptor, then a real WAV header, then compressed-looking bytes.
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = tone(&dir.path().join("src.wav"), 2.0, 440, &[]);
    let wav_bytes = std::fs::read(&wav).expect("read");
    let mut ape = Vec::new();
    ape.extend_from_slice(b"MAC ");
    ape.extend_from_slice(&3990u16.to_le_bytes());
    ape.extend_from_slice(&[0u8; 46]);
    ape.extend_from_slice(&wav_bytes[..44]);
    ape.extend(common::noise(200_000, 0x1234_5678));
    let path = dir.path().join("song.ape");
    std::fs::write(&path, &ape).expect("write");
    match decode(&path) {
        Err(AudioError::UnsupportedCodec(what)) => assert!(what.contains("APE"), "{what}"),
        other => panic!("expected APE to be refused, got {other:?}"),
    }
}

#[test]
fn the_duration_cap_stops_decoding_early() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = tone(&dir.path().join("long.flac"), 30.0, 440, &[]);
    let mut seen = 0usize;
    let result = decode_file(
        &path,
        Some("flac"),
        DecodeLimits {
            max_duration_secs: 10,
        },
        &mut |c, _| seen += c.len(),
    );
    match result {
        Err(AudioError::TooLong {
            limit_secs: 10,
            decoded_secs,
        }) => {
            assert!(decoded_secs < 11.0, "stopped at {decoded_secs}");
        }
        other => panic!("expected TooLong, got {other:?}"),
    }
    assert!(
        seen <= 11 * 44_100,
        "decoding stopped near the cap, not at the end ({seen} samples)"
    );
}

#[test]
fn bad_input_gets_its_own_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.mp3");
    std::fs::write(&empty, b"").expect("write");
    assert!(matches!(decode(&empty), Err(AudioError::Empty)));

    let text = dir.path().join("notes.mp3");
    std::fs::write(&text, "This is a shopping list, not a song.\n".repeat(200)).expect("write");
    assert!(
        matches!(decode(&text), Err(AudioError::UnrecognisedFormat(_))),
        "{:?}",
        decode(&text)
    );

    let corrupt = common::corrupt_flac(dir.path());
    assert!(
        matches!(decode(&corrupt), Err(AudioError::Corrupt(_))),
        "{:?}",
        decode(&corrupt)
    );
}
