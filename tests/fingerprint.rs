//! Acoustic matching on real recordings that Debian ships (game music from extremetuxracer-data and
//! frozen-bubble-data, speech from pocketsphinx-testdata), transformed by ffmpeg/sox here: every
//! transform must find the right reference at the right offset with a score above 60, and at least
//! 50 recordings outside the library must score at most 60.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{run, speech, synthesize};
use earshot::audio::DecodeLimits;
use earshot::engines::local::match_score;
use earshot::fingerprint::{Fingerprint, Index, Match, fingerprint_file};

const LIMITS: DecodeLimits = DecodeLimits {
    max_duration_secs: 3600,
};
const ETR: &str = "/usr/share/games/etr/music";
const FB: &str = "/usr/share/games/frozen-bubble/snd";
const LIBRIVOX: &str = "/usr/share/pocketsphinx/test/data/librivox";

/// Library tracks: (path, where the excerpt is cut from, in seconds).
fn references() -> Vec<(String, f64)> {
    [
        (format!("{ETR}/calmrace-ks.ogg"), 31.0),
        (format!("{ETR}/credits1-cp.ogg"), 12.5),
        (format!("{ETR}/freezingpoint.ogg"), 47.0),
        (format!("{ETR}/spunkyrace-ks.ogg"), 70.0),
        (format!("{ETR}/race1-jt.ogg"), 22.0),
        (format!("{ETR}/start1-jt.ogg"), 5.0),
        (format!("{FB}/introzik.ogg"), 101.0),
        (format!("{FB}/frozen-mainzik-1p.ogg"), 250.0),
    ]
    .into()
}

fn require_corpus() {
    for path in [
        format!("{ETR}/calmrace-ks.ogg"),
        format!("{FB}/introzik.ogg"),
        format!("{LIBRIVOX}/sense_and_sensibility_01_austen_64kb-0870.wav"),
    ] {
        assert!(
            Path::new(&path).is_file(),
            "{path} is missing: install the Debian packages with `scripts/install-deps.sh`"
        );
    }
}

fn fp(path: &Path) -> Fingerprint {
    let suffix = earshot::rules::key_suffix(&path.to_string_lossy());
    fingerprint_file(path, suffix.as_deref(), LIMITS)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .1
}

/// The library's index, built once for all tests in this file.
fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        require_corpus();
        Index::build(
            references()
                .into_iter()
                .map(|(path, _)| (path.clone(), fp(Path::new(&path))))
                .collect(),
        )
    })
}

fn ffmpeg(args: &[&str], out: &Path) -> PathBuf {
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(out));
    out.to_owned()
}

fn score(found: &Match) -> u8 {
    match_score(found.hits, found.span_landmarks)
}

/// Checks that `query` finds reference `expected` with a score above 60, aligned so that query
/// time `excerpt_at` (where the excerpt starts in the query) is reference time `start`, ±0.5 s.
fn assert_found(what: &str, query: &Path, expected: usize, start: f64, excerpt_at: f64) {
    let found = index().query(&fp(query));
    let best = found
        .first()
        .unwrap_or_else(|| panic!("{what}: nothing found"));
    assert_eq!(
        best.reference, expected,
        "{what}: wrong reference: {found:?}"
    );
    assert!(score(best) > 60, "{what}: score {} ({best:?})", score(best));
    let seg = &best.segment;
    let predicted = start + best.time_ratio * (seg.query_offset_secs - excerpt_at);
    assert!(
        (seg.reference_offset_secs - predicted).abs() <= 0.5,
        "{what}: aligned {:.2} s into the reference at query {:.2} s; the excerpt puts it at {predicted:.2} s",
        seg.reference_offset_secs,
        seg.query_offset_secs
    );
    assert!(
        seg.query_offset_secs >= excerpt_at - 0.5 && seg.query_offset_secs <= excerpt_at + 2.0,
        "{what}: the match starts {:.2} s into the query, the excerpt at {excerpt_at:.2} s",
        seg.query_offset_secs
    );
    eprintln!(
        "{what}: score {} ({} landmarks agree)",
        score(best),
        best.hits
    );
    if let Some(second) = found.get(1) {
        assert!(
            score(second) <= 60,
            "{what}: a wrong reference also scores {}: {second:?}",
            score(second)
        );
    }
}

/// (name, ffmpeg output args, suffix, time ratio the transform applies).
const TRANSFORMS: &[(&str, &[&str], &str)] = &[
    ("mp3 64k", &["-c:a", "libmp3lame", "-b:a", "64k"], "mp3"),
    ("mp3 320k", &["-c:a", "libmp3lame", "-b:a", "320k"], "mp3"),
    ("aac 96k in m4a", &["-c:a", "aac", "-b:a", "96k"], "m4a"),
    (
        "aac 32k mono in 3gp",
        &["-c:a", "aac", "-b:a", "32k", "-ac", "1", "-ar", "16000"],
        "3gp",
    ),
    ("vorbis q1", &["-c:a", "libvorbis", "-q:a", "1"], "ogg"),
    ("flac", &["-c:a", "flac"], "flac"),
    (
        "gain +10 dB",
        &["-af", "volume=10dB", "-c:a", "flac"],
        "flac",
    ),
    (
        "gain -10 dB",
        &["-af", "volume=-10dB", "-c:a", "flac"],
        "flac",
    ),
    (
        "telephone: 8 kHz, 300-3400 Hz",
        &[
            "-af",
            "highpass=f=300,highpass=f=300,lowpass=f=3400,lowpass=f=3400",
            "-ar",
            "8000",
            "-ac",
            "1",
        ],
        "wav",
    ),
    (
        "tempo +5 %, pitch kept",
        &["-af", "atempo=1.05", "-c:a", "libmp3lame", "-b:a", "128k"],
        "mp3",
    ),
    (
        "tempo -5 %, pitch kept",
        &["-af", "atempo=0.95", "-c:a", "libmp3lame", "-b:a", "128k"],
        "mp3",
    ),
];

#[test]
fn every_transform_of_a_10_s_excerpt_is_found_at_its_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, args, suffix) in TRANSFORMS {
        for (i, (path, start)) in references().iter().enumerate() {
            let out = dir.path().join(format!("q{i}.{suffix}"));
            let mut all: Vec<String> = ["-ss", &start.to_string(), "-t", "10", "-i", path]
                .map(str::to_owned)
                .to_vec();
            all.extend(args.iter().map(|s| s.to_string()));
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            ffmpeg(&all, &out);
            assert_found(&format!("{name}, reference {i}"), &out, i, *start, 0.0);
        }
    }
}

/// A mono 22.05 kHz WAV excerpt of `secs` seconds.
fn excerpt(dir: &Path, i: usize, path: &str, start: f64, secs: f64) -> PathBuf {
    ffmpeg(
        &[
            "-ss",
            &start.to_string(),
            "-t",
            &secs.to_string(),
            "-i",
            path,
            "-ac",
            "1",
            "-ar",
            "22050",
        ],
        &dir.join(format!("excerpt{i}.wav")),
    )
}

fn rms(path: &Path) -> f64 {
    let out = Command::new("sox")
        .arg(path)
        .args(["-n", "stat"])
        .output()
        .expect("sox runs");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find(|l| l.starts_with("RMS     amplitude"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .expect("sox reports the RMS amplitude")
}

#[test]
fn an_8_s_excerpt_is_found_under_10_db_snr_noise() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, (path, start)) in references().iter().enumerate() {
        let clean = excerpt(dir.path(), i, path, *start, 8.0);
        // White noise from sox has RMS 1/√3 at vol 1: scale it to 10 dB below the music.
        let noise = dir.path().join(format!("noise{i}.wav"));
        let vol = rms(&clean) / 10f64.powf(10.0 / 20.0) * 3f64.sqrt();
        run(Command::new("sox")
            .args(["-n", "-r", "22050", "-c", "1"])
            .arg(&noise)
            .args(["synth", "8", "whitenoise", "vol", &format!("{vol:.6}")]));
        let noisy = dir.path().join(format!("noisy{i}.wav"));
        run(Command::new("sox")
            .arg("-m")
            .arg(&clean)
            .arg(&noise)
            .arg(&noisy));
        assert_found(&format!("10 dB SNR, reference {i}"), &noisy, i, *start, 0.0);
    }
}

#[test]
fn an_8_s_excerpt_embedded_in_speech_and_other_music_is_found_where_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let speech_file = format!("{LIBRIVOX}/sense_and_sensibility_01_austen_64kb-0870.wav");
    let speech_secs = 7.1;
    for (i, (path, start)) in references().iter().enumerate() {
        let clean = excerpt(dir.path(), i, path, *start, 8.0);
        let embedded = dir.path().join(format!("embedded{i}.mp3"));
        ffmpeg(
            &[
                "-i",
                &speech_file,
                "-i",
                clean.to_str().expect("utf-8"),
                "-i",
                &format!("{ETR}/options1-jt.ogg"),
                "-filter_complex",
                "[0:a]aformat=sample_rates=22050:channel_layouts=mono[a];\
                 [1:a]aformat=sample_rates=22050:channel_layouts=mono[b];\
                 [2:a]aformat=sample_rates=22050:channel_layouts=mono[c];\
                 [a][b][c]concat=n=3:v=0:a=1",
                "-b:a",
                "96k",
            ],
            &embedded,
        );
        assert_found(
            &format!("embedded, reference {i}"),
            &embedded,
            i,
            *start,
            speech_secs,
        );
    }
}

#[test]
fn recordings_outside_the_library_score_60_or_less() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut queries: Vec<PathBuf> = Vec::new();
    // Other music, including pieces that share a composer or a theme with library tracks.
    for name in [
        "options1-jt.ogg",
        "wonrace1-jt.ogg",
        "lostrace-ks.ogg",
        "raceintro-ks.ogg",
    ] {
        queries.push(format!("{ETR}/{name}").into());
    }
    queries.push(format!("{FB}/frozen-mainzik-2p.ogg").into());
    // Sound effects.
    for entry in std::fs::read_dir(FB).expect("frozen-bubble sounds") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".ogg") && !name.contains("zik") {
            queries.push(path);
        }
    }
    // Speech.
    for entry in std::fs::read_dir(LIBRIVOX).expect("librivox") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "wav") {
            queries.push(path);
        }
    }
    for n in 1..=5 {
        queries.push(format!("/usr/share/pocketsphinx/test/data/cards/00{n}.wav").into());
    }
    for (n, text) in [
        "Please call me back about the invoice before Friday.",
        "The weather tomorrow will be cloudy with a chance of rain in the afternoon.",
        "Welcome to the show. Today we talk about gardening in small spaces.",
    ]
    .iter()
    .enumerate()
    {
        queries.push(speech(&dir.path().join(format!("speech{n}.mp3")), text));
    }
    // Silence, noise, tones, sweeps and synthetic melodies.
    let synthetic: &[(&str, &str)] = &[
        ("silence", "anullsrc=r=44100:cl=mono:d=10"),
        ("white-noise", "anoisesrc=d=10:c=white:a=0.3"),
        ("pink-noise", "anoisesrc=d=10:c=pink:a=0.3"),
        ("brown-noise", "anoisesrc=d=10:c=brown:a=0.3"),
        ("tone-440", "sine=f=440:d=10"),
        ("tone-1000", "sine=f=1000:d=10"),
        ("tone-3000", "sine=f=3000:d=10"),
        ("sweep", "aevalsrc=0.5*sin(2*PI*(200+150*t)*t):s=44100:d=10"),
        (
            "dual-tone",
            "aevalsrc=0.3*sin(2*PI*697*t)+0.3*sin(2*PI*1209*t):s=44100:d=10",
        ),
        (
            "melody-1",
            "aevalsrc=0.4*sin(2*PI*(330+110*floor(mod(3*t\\,5)))*t):s=44100:d=12",
        ),
        (
            "melody-2",
            "aevalsrc=0.4*sin(2*PI*(262+131*floor(mod(5*t\\,4)))*t):s=44100:d=12",
        ),
        (
            "melody-3",
            "aevalsrc=0.3*sin(2*PI*(440+55*floor(mod(7*t\\,6)))*t)+0.2*sin(2*PI*880*t):s=44100:d=12",
        ),
        (
            "chord",
            "aevalsrc=0.2*sin(2*PI*261*t)+0.2*sin(2*PI*329*t)+0.2*sin(2*PI*392*t):s=44100:d=10",
        ),
        (
            "tremolo",
            "aevalsrc=0.4*sin(2*PI*523*t)*(1+sin(2*PI*6*t))/2:s=44100:d=10",
        ),
    ];
    for (name, source) in synthetic {
        queries.push(synthesize(
            &dir.path().join(format!("{name}.mp3")),
            source,
            &["-b:a", "128k"],
        ));
    }
    assert!(
        queries.len() >= 50,
        "only {} negative queries",
        queries.len()
    );

    let mut worst: Vec<(u8, String)> = Vec::new();
    for query in &queries {
        let found = index().query(&fp(query));
        let top = found.first().map_or(0, score);
        worst.push((top, query.display().to_string()));
    }
    worst.sort();
    eprintln!(
        "{} negatives; highest scores: {:?}",
        worst.len(),
        &worst[worst.len() - 3..]
    );
    let (top, name) = worst.last().expect("queries");
    assert!(*top <= 60, "{name} scores {top}; all: {worst:?}");
}
