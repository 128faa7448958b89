//! The matching corpus shared by tests/fingerprint.rs and benches/fingerprint.rs: library tracks
//! and excerpt positions from Debian's game music, the transforms applied to excerpts, 50+
//! recordings outside the library, and 300+ excerpts of music outside it under every transform.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run, speech, synthesize};

pub const ETR: &str = "/usr/share/games/etr/music";
pub const FB: &str = "/usr/share/games/frozen-bubble/snd";
pub const LIBRIVOX: &str = "/usr/share/pocketsphinx/test/data/librivox";
pub const PINGUS: &str = "/usr/share/games/pingus/data/music";
pub const FREEDROID: &str = "/usr/share/games/freedroid/sound";
pub const ABE: &str = "/usr/share/games/abe/sounds";
/// A 7.1 s speech recording the embedded queries start with.
pub const SPEECH_SECS: f64 = 7.1;

/// Library tracks: (path, where the excerpt is cut from, in seconds).
pub fn references() -> Vec<(String, f64)> {
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

pub fn require_corpus() {
    for path in [
        format!("{ETR}/calmrace-ks.ogg"),
        format!("{FB}/introzik.ogg"),
        format!("{LIBRIVOX}/sense_and_sensibility_01_austen_64kb-0870.wav"),
        format!("{PINGUS}/pingus-1.it"),
        format!("{FREEDROID}/Paradroid.ogg"),
        format!("{ABE}/intro.ogg"),
    ] {
        assert!(
            Path::new(&path).is_file(),
            "{path} is missing: install the Debian packages with `scripts/install-deps.sh`"
        );
    }
}

pub fn ffmpeg(args: &[&str], out: &Path) -> PathBuf {
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(out));
    out.to_owned()
}

/// (name, ffmpeg output args, output suffix).
pub const TRANSFORMS: &[(&str, &[&str], &str)] = &[
    ("mp3 64k", &["-c:a", "libmp3lame", "-b:a", "64k"], "mp3"),
    ("mp3 320k", &["-c:a", "libmp3lame", "-b:a", "320k"], "mp3"),
    ("aac 96k in m4a", &["-c:a", "aac", "-b:a", "96k"], "m4a"),
    (
        "aac 32k mono in 3gp",
        &["-c:a", "aac", "-b:a", "32k", "-ac", "1", "-ar", "16000"],
        "3gp",
    ),
    ("vorbis q1", &["-c:a", "libvorbis", "-q:a", "1"], "ogg"),
    (
        "opus 48k in ogg",
        &["-c:a", "libopus", "-b:a", "48k"],
        "ogg",
    ),
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

/// A 10 s excerpt of `path` from `start`, transformed.
pub fn transformed(
    dir: &Path,
    tag: &str,
    path: &str,
    start: f64,
    args: &[&str],
    suffix: &str,
) -> PathBuf {
    let out = dir.join(format!("{tag}.{suffix}"));
    let mut all: Vec<String> = ["-ss", &start.to_string(), "-t", "10", "-i", path]
        .map(str::to_owned)
        .to_vec();
    all.extend(args.iter().map(|s| s.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    ffmpeg(&all, &out)
}

/// A mono 22.05 kHz WAV excerpt of `secs` seconds.
pub fn excerpt(dir: &Path, i: usize, path: &str, start: f64, secs: f64) -> PathBuf {
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

pub fn rms(path: &Path) -> f64 {
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

/// An 8 s excerpt under white noise at 10 dB SNR.
pub fn noisy(dir: &Path, i: usize, path: &str, start: f64) -> PathBuf {
    let clean = excerpt(dir, i, path, start, 8.0);
    // White noise from sox has RMS 1/√3 at vol 1: scale it to 10 dB below the music.
    let noise = dir.join(format!("noise{i}.wav"));
    let vol = rms(&clean) / 10f64.powf(10.0 / 20.0) * 3f64.sqrt();
    run(Command::new("sox")
        .args(["-n", "-r", "22050", "-c", "1"])
        .arg(&noise)
        .args(["synth", "8", "whitenoise", "vol", &format!("{vol:.6}")]));
    let out = dir.join(format!("noisy{i}.wav"));
    run(Command::new("sox")
        .arg("-m")
        .arg(&clean)
        .arg(&noise)
        .arg(&out));
    out
}

/// An 8 s excerpt after [`SPEECH_SECS`] of speech and before other music, as a 96 kb/s MP3.
pub fn embedded(dir: &Path, i: usize, path: &str, start: f64) -> PathBuf {
    let clean = excerpt(dir, i, path, start, 8.0);
    let speech_file = format!("{LIBRIVOX}/sense_and_sensibility_01_austen_64kb-0870.wav");
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
        &dir.join(format!("embedded{i}.mp3")),
    )
}

/// What makes the generated sets of this file: its own source (see [`super::cache`]).
const RECIPE: &str = include_str!("corpus.rs");

/// Recordings outside the library: other music (including pieces sharing a composer or a theme
/// with library tracks), sound effects, speech, silence, noise, tones and synthetic melodies. The
/// generated ones are made once per checkout.
pub fn negatives() -> Vec<PathBuf> {
    let mut queries = recorded_negatives();
    let made = super::cache::labelled_files("negatives", RECIPE, &[], |dir| {
        generated_negatives(dir)
            .into_iter()
            .map(|path| (String::new(), path))
            .collect()
    });
    queries.extend(made.into_iter().map(|(_, path)| path));
    assert!(
        queries.len() >= 50,
        "only {} negative queries",
        queries.len()
    );
    queries
}

/// The recordings Debian ships among [`negatives`].
fn recorded_negatives() -> Vec<PathBuf> {
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
    queries
}

/// The generated recordings among [`negatives`], made in `dir`.
fn generated_negatives(dir: &Path) -> Vec<PathBuf> {
    let mut queries: Vec<PathBuf> = Vec::new();
    for (n, text) in [
        "Please call me back about the invoice before Friday.",
        "The weather tomorrow will be cloudy with a chance of rain in the afternoon.",
        "Welcome to the show. Today we talk about gardening in small spaces.",
    ]
    .iter()
    .enumerate()
    {
        queries.push(speech(&dir.join(format!("speech{n}.mp3")), text));
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
            &dir.join(format!("{name}.mp3")),
            source,
            &["-b:a", "128k"],
        ));
    }
    queries
}

/// Music outside the library: the other tracks of the library's two games (the same composers:
/// `-jt`, `-ks`, frozen-bubble's second theme) and three more games' soundtracks (Pingus's tracker
/// modules, Freedroid's, Abe's), with each track's length in seconds.
pub fn held_out_music() -> Vec<String> {
    let mut tracks: Vec<String> = [
        "options1-jt.ogg",
        "wonrace1-jt.ogg",
        "lostrace-ks.ogg",
        "raceintro-ks.ogg",
    ]
    .iter()
    .map(|n| format!("{ETR}/{n}"))
    .collect();
    tracks.push(format!("{FB}/frozen-mainzik-2p.ogg"));
    for (dir, suffixes) in [(PINGUS, &["it", "s3m"][..]), (FREEDROID, &["mod"][..])] {
        let mut found: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| suffixes.iter().any(|s| x == *s))
            })
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        found.sort();
        tracks.extend(found);
    }
    tracks.push(format!("{FREEDROID}/Paradroid.ogg"));
    tracks.push(format!("{ABE}/intro.ogg"));
    tracks.push(format!("{ABE}/game.ogg"));
    tracks
}

fn duration_secs(path: &str) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            path,
        ])
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{path}: no duration"))
}

/// Held-out queries: an 8 s excerpt from the middle of every [`held_out_music`] track (10 s for
/// the tempo transforms' input) under each of [`TRANSFORMS`], under 10 dB SNR noise, and embedded
/// after speech, as (what, path). Made once per checkout, on every core.
pub fn held_out_excerpts() -> Vec<(String, PathBuf)> {
    let mut inputs: Vec<PathBuf> = held_out_music().into_iter().map(PathBuf::from).collect();
    inputs.push(format!("{LIBRIVOX}/sense_and_sensibility_01_austen_64kb-0870.wav").into());
    inputs.push(format!("{ETR}/options1-jt.ogg").into());
    super::cache::labelled_files("held-out-excerpts", RECIPE, &inputs, make_held_out_excerpts)
}

fn make_held_out_excerpts(dir: &Path) -> Vec<(String, PathBuf)> {
    let tracks = held_out_music();
    let jobs: Vec<(usize, String, f64)> = tracks
        .iter()
        .enumerate()
        .filter_map(|(i, track)| {
            let secs = duration_secs(track);
            (secs >= 12.0).then(|| (i, track.clone(), (secs / 2.0 - 4.0).max(0.0)))
        })
        .collect();
    let mut made: Vec<(String, PathBuf)> = on_every_core(&jobs, |(i, track, start)| {
        let name = Path::new(track)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut out = Vec::new();
        // 8 s, re-encoded: the tempo transforms cut 8.4 s so the result stays 8 s.
        for (t, (transform, args, suffix)) in TRANSFORMS.iter().enumerate() {
            let secs = if transform.starts_with("tempo") {
                8.4
            } else {
                8.0
            };
            let path = dir.join(format!("held{i}-{t}.{suffix}"));
            let mut all: Vec<String> = [
                "-ss",
                &start.to_string(),
                "-t",
                &secs.to_string(),
                "-i",
                track,
            ]
            .map(str::to_owned)
            .to_vec();
            all.extend(args.iter().map(|s| s.to_string()));
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            out.push((format!("{name}, 8 s, {transform}"), ffmpeg(&all, &path)));
        }
        let noisy_dir = dir.join(format!("held{i}"));
        std::fs::create_dir_all(&noisy_dir).expect("mkdir");
        out.push((
            format!("{name}, 8 s, 10 dB SNR"),
            noisy(&noisy_dir, *i, track, *start),
        ));
        out.push((
            format!("{name}, 8 s, embedded after speech"),
            embedded(&noisy_dir, *i, track, *start),
        ));
        out
    })
    .into_iter()
    .flatten()
    .collect();
    made.sort();
    made
}

/// How a query of [`library_queries`] was made from its reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Made {
    /// A 10 s excerpt under [`TRANSFORMS`]`[n]`.
    Transform(usize),
    /// An 8 s excerpt under 10 dB SNR noise ([`noisy`]).
    Noisy,
    /// An 8 s excerpt after speech and before other music ([`embedded`]).
    Embedded,
}

/// One query of [`library_queries`].
#[derive(Debug, Clone)]
pub struct LibraryQuery {
    pub made: Made,
    /// The index in [`references`] of the track it was cut from.
    pub reference: usize,
    pub path: PathBuf,
}

/// Every query the matching tests make from the library's tracks: each reference's excerpt under
/// each of [`TRANSFORMS`], under noise, and embedded. Made once per checkout, on every core.
pub fn library_queries() -> Vec<LibraryQuery> {
    let refs = references();
    let mut inputs: Vec<PathBuf> = refs.iter().map(|(path, _)| PathBuf::from(path)).collect();
    inputs.push(format!("{LIBRIVOX}/sense_and_sensibility_01_austen_64kb-0870.wav").into());
    inputs.push(format!("{ETR}/options1-jt.ogg").into());
    let made = super::cache::labelled_files("library-queries", RECIPE, &inputs, |dir| {
        let mut jobs: Vec<(Made, usize)> = Vec::new();
        for i in 0..refs.len() {
            jobs.extend((0..TRANSFORMS.len()).map(|t| (Made::Transform(t), i)));
            jobs.push((Made::Noisy, i));
            jobs.push((Made::Embedded, i));
        }
        on_every_core(&jobs, |(made, i)| {
            let (path, start) = &refs[*i];
            let file = match made {
                Made::Transform(t) => {
                    let (_, args, suffix) = TRANSFORMS[*t];
                    transformed(dir, &format!("t{t}-q{i}"), path, *start, args, suffix)
                }
                Made::Noisy => {
                    let own = dir.join(format!("noisy-{i}"));
                    std::fs::create_dir_all(&own).expect("mkdir");
                    noisy(&own, *i, path, *start)
                }
                Made::Embedded => {
                    let own = dir.join(format!("embedded-{i}"));
                    std::fs::create_dir_all(&own).expect("mkdir");
                    embedded(&own, *i, path, *start)
                }
            };
            (label(made, *i), file)
        })
    });
    made.into_iter()
        .map(|(label, path)| {
            let (made, reference) = parse_label(&label);
            LibraryQuery {
                made,
                reference,
                path,
            }
        })
        .collect()
}

fn label(made: &Made, reference: usize) -> String {
    match made {
        Made::Transform(t) => format!("transform {t} {reference}"),
        Made::Noisy => format!("noisy {reference}"),
        Made::Embedded => format!("embedded {reference}"),
    }
}

fn parse_label(label: &str) -> (Made, usize) {
    let fields: Vec<&str> = label.split(' ').collect();
    let number = |s: &str| s.parse::<usize>().expect("a number in the label");
    match fields[..] {
        ["transform", t, i] => (Made::Transform(number(t)), number(i)),
        ["noisy", i] => (Made::Noisy, number(i)),
        ["embedded", i] => (Made::Embedded, number(i)),
        _ => panic!("unknown label {label}"),
    }
}

/// `make` applied to every job on every core; results in the jobs' order.
pub fn on_every_core<J: Sync, T: Send>(jobs: &[J], make: impl Fn(&J) -> T + Sync) -> Vec<T> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let made = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(job) = jobs.get(n) else {
                        break;
                    };
                    let result = make(job);
                    made.lock().expect("not poisoned").push((n, result));
                }
            });
        }
    });
    let mut made = made.into_inner().expect("not poisoned");
    made.sort_by_key(|(n, _)| *n);
    made.into_iter().map(|(_, result)| result).collect()
}
