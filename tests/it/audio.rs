//! Probe and decode on files made here (ffmpeg; JMAC for APE; Debian's AMR encoder libraries):
//! all ten formats come back at their true duration, APE bit-exact; without ffmpeg, AMR and WMA
//! are refused by name; an APE file is never "decoded" as noise; a VBR MP3 without a Xing header decodes to its real end; the duration cap
//! stops decoding early; damaged and non-audio files get their own errors.

use std::path::Path;

use crate::common::{music, run, tone};
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

/// A 20 s music-like WAV at `rate` Hz, mono.
fn source_wav(dir: &Path, rate: u32) -> std::path::PathBuf {
    music(
        &dir.join(format!("source-{rate}.wav")),
        20.0,
        &["-ar", &rate.to_string(), "-ac", "1"],
    )
}

/// Encodes 20 s of audio as AMR (`nb` or `wb`).
fn amr(dir: &Path, band: &str) -> std::path::PathBuf {
    let rate = if band == "nb" { 8000 } else { 16_000 };
    crate::common::amr_encode(dir, &source_wav(dir, rate), band)
}

/// Monkey's Audio from a WAV, by JMAC (Debian's libjmac-java).
fn ape(dir: &Path, wav: &Path) -> std::path::PathBuf {
    let out = dir.join("clip.ape");
    run(std::process::Command::new("java")
        .args(["-jar", "/usr/share/java/jmac.jar", "c2"])
        .arg(wav)
        .arg(&out));
    out
}

#[test]
fn all_ten_formats_decode_to_their_true_duration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut files: Vec<(&str, std::path::PathBuf)> = Vec::new();
    let made: &[(&str, &str, &[&str])] = &[
        ("mp3", "clip.mp3", &["-c:a", "libmp3lame", "-b:a", "128k"]),
        ("wav", "clip.wav", &[]),
        ("flac", "clip.flac", &[]),
        ("aac (ADTS)", "clip.aac", &["-c:a", "aac", "-b:a", "96k"]),
        ("m4a (AAC)", "clip-aac.m4a", &["-c:a", "aac", "-b:a", "96k"]),
        ("m4a (ALAC)", "clip-alac.m4a", &["-c:a", "alac"]),
        (
            "ogg (Vorbis)",
            "clip-vorbis.ogg",
            &["-c:a", "libvorbis", "-q:a", "3"],
        ),
        (
            "ogg (Opus)",
            "clip-opus.ogg",
            &["-c:a", "libopus", "-b:a", "64k"],
        ),
        (
            "3gp (AAC)",
            "clip-aac.3gp",
            &["-c:a", "aac", "-ar", "16000", "-ac", "1", "-b:a", "32k"],
        ),
        ("wma", "clip.wma", &["-c:a", "wmav2", "-b:a", "128k"]),
    ];
    for (name, file, args) in made {
        files.push((name, music(&d.join(file), 20.0, args)));
    }
    let wav = d.join("clip.wav");
    files.push(("ape", ape(d, &wav)));
    let nb = amr(d, "nb");
    files.push(("amr (NB)", nb.clone()));
    files.push(("amr (WB)", amr(d, "wb")));
    let amr_in_3gp = d.join("clip-amr.3gp");
    run(std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
        .arg(&nb)
        .args(["-c:a", "copy"])
        .arg(&amr_in_3gp));
    files.push(("3gp (AMR-NB)", amr_in_3gp));

    for (name, path) in &files {
        let info = decode(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_duration(&info, 20.0, name);
    }
    let suffixes: std::collections::BTreeSet<String> = files
        .iter()
        .filter_map(|(_, p)| p.extension().map(|e| e.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(suffixes.len(), 10, "all ten suffixes covered: {suffixes:?}");
}

#[test]
fn ape_decodes_bit_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wav = music(
        &dir.path().join("source.wav"),
        5.0,
        &["-ac", "1", "-c:a", "pcm_s16le"],
    );
    let compressed = ape(dir.path(), &wav);
    let collect = |path: &Path| {
        let mut samples = Vec::new();
        decode_file(path, None, LIMITS, &mut |chunk, _| {
            samples.extend_from_slice(chunk)
        })
        .expect("decodes");
        samples
    };
    let (original, decoded) = (collect(&wav), collect(&compressed));
    assert_eq!(original.len(), decoded.len());
    assert!(
        original == decoded,
        "APE decodes to exactly the WAV's samples"
    );
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
fn without_ffmpeg_amr_and_wma_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wma = music(&dir.path().join("clip.wma"), 3.0, &["-c:a", "wmav2"]);
    let amr = dir.path().join("clip.amr");
    std::fs::write(&amr, b"#!AMR\n\x3c\x91\x17\x16\xbe\x66\x78\x00\x00").expect("write");
    let config = dir.path().join("earshot.toml");
    std::fs::write(
        &config,
        "[engines.local]\ntype = \"local\"\nlibrary = \"lib\"\n",
    )
    .expect("write");
    for (file, name) in [(&wma, "Windows Media Audio"), (&amr, "AMR-NB")] {
        // A PATH with no ffmpeg on it.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_earshot"))
            .arg("--config")
            .arg(&config)
            .arg("moderate")
            .arg(file)
            .env("PATH", dir.path())
            .env("EARSHOT_LOG_FORMAT", "json")
            .current_dir(dir.path())
            .output()
            .expect("earshot runs");
        let verdict: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(verdict["code"], 1002, "{verdict}");
        let message = verdict["message"].as_str().expect("message");
        assert!(
            message.contains(name) && message.contains("ffmpeg"),
            "{message}"
        );
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
    ape.extend(crate::common::noise(200_000, 0x1234_5678));
    let path = dir.path().join("song.ape");
    std::fs::write(&path, &ape).expect("write");
    match decode(&path) {
        Err(AudioError::Corrupt(what)) => assert!(what.contains("APE"), "{what}"),
        other => panic!("expected a broken APE file to be refused, got {other:?}"),
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

    let corrupt = crate::common::corrupt_flac(dir.path());
    assert!(
        matches!(decode(&corrupt), Err(AudioError::Corrupt(_))),
        "{:?}",
        decode(&corrupt)
    );
}
