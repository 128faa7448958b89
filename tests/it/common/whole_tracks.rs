//! Whole soundtracks of 1–10 minutes that Debian ships, for what chance gives long queries: a
//! larger library (the test library plus a third of these tracks) and, outside it, the other
//! tracks of the same games and composers uploaded whole, each re-encoded as a user's upload would
//! be (MP3, the telephone band, or the file as shipped), and excerpts of them at every length.
//!
//! `wesnoth-1.16-music` and `hedgewars-data` are never read here: they judge this work from
//! outside.

use std::path::{Path, PathBuf};
use std::process::Command;

use earshot::fingerprint::{Fingerprint, Landmark};

use super::corpus::{ABE, ETR, FB, FREEDROID, PINGUS, ffmpeg, on_every_core, references};

/// Where each game's music is (Debian package in the comment), searched recursively.
const SOURCES: &[(&str, &str)] = &[
    ("colobot", "/usr/share/games/colobot/music"), // colobot-common-sounds
    ("hyperrogue", "/usr/share/hyperrogue/music"), // hyperrogue-music
    ("warzone2100", "/usr/share/games/warzone2100/music"), // warzone2100-music
    ("drascula", "/usr/share/scummvm/drascula/audio"), // drascula-music
    ("asc", "/usr/share/games/asc/music"),         // asc-music
    ("xmoto", "/usr/share/games/xmoto/Textures/Musics"), // xmoto-data
    ("lincity-ng", "/usr/share/games/lincity-ng/music"), // lincity-ng-data
    ("fretsonfire", "/usr/share/games/fretsonfire/data/songs"), // fretsonfire-songs-*
    ("funnyboat", "/usr/share/games/funnyboat/data"), // funnyboat
    ("supertux", "/usr/share/games/supertux2/music"), // supertux-data
    ("openclonk", "/usr/share/games/openclonk/Music.ocg"), // openclonk-data
    ("warmux", "/usr/share/games/warmux/music"),   // warmux-data
    ("marsshooter", "/usr/share/games/marsshooter/audio"), // marsshooter-data
    ("lugaru", "/usr/share/games/lugaru/Sounds"),  // lugaru-data
    ("flare", "/usr/share/games/flare/mods"),      // flare-game
    ("etr", ETR),
    ("frozen-bubble", FB),
    ("pingus", PINGUS),
    ("freedroid", FREEDROID),
    ("abe", ABE),
];

const SUFFIXES: &[&str] = &["ogg", "opus", "mp3", "it", "s3m", "mod", "xm"];
/// Suffixes earshot decodes itself; tracker modules are rendered by ffmpeg (libopenmpt) first.
const DECODED: &[&str] = &["ogg", "opus", "mp3"];
const SHORTEST_SECS: f64 = 60.0;
const LONGEST_SECS: f64 = 600.0;

/// A whole track of one game.
#[derive(Debug, Clone)]
pub struct Track {
    pub game: &'static str,
    pub path: PathBuf,
    pub secs: f64,
}

/// Every distinct track of 1–10 min of [`SOURCES`] (two files of the same size count once: the
/// same track shipped twice), sorted by game then path.
pub fn tracks() -> Vec<Track> {
    let mut files: Vec<(&'static str, PathBuf)> = Vec::new();
    for &(game, dir) in SOURCES {
        let mut found = Vec::new();
        walk(Path::new(dir), &mut found);
        assert!(
            !found.is_empty(),
            "{dir} has no music: install the Debian packages with `scripts/install-deps.sh`"
        );
        files.extend(found.into_iter().map(|p| (game, p)));
    }
    files.sort();
    let mut sizes = std::collections::HashSet::new();
    files.retain(|(_, p)| {
        let size = std::fs::metadata(p).map_or(0, |m| m.len());
        // A compressed file under 400 kB is a sound effect, not a minute of music (tracker
        // modules are small for their length: those are all probed).
        let module = suffix(p).is_some_and(|s| !DECODED.contains(&s.as_str()));
        (module || size >= 400_000) && sizes.insert(size)
    });
    // Durations are probed once per checkout: the set is keyed by every candidate file.
    let inputs: Vec<PathBuf> = files.iter().map(|(_, p)| p.clone()).collect();
    let probed = super::cache::labelled_files(
        "track-lengths",
        include_str!("whole_tracks.rs"),
        &inputs,
        |_| {
            let secs = on_every_core(&files, |(_, path)| duration_secs(path));
            files
                .iter()
                .zip(secs)
                .filter(|(_, s)| (SHORTEST_SECS..=LONGEST_SECS).contains(s))
                .map(|((game, path), secs)| (format!("{game}|{secs}"), path.clone()))
                .collect()
        },
    );
    probed
        .into_iter()
        .map(|(label, path)| {
            let (game, secs) = label.split_once('|').expect("labelled");
            let game = SOURCES
                .iter()
                .map(|(g, _)| *g)
                .find(|g| *g == game)
                .expect("a known game");
            Track {
                game,
                path,
                secs: secs.parse().expect("seconds"),
            }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if suffix(&path).is_some_and(|s| SUFFIXES.contains(&s.as_str()))
            // Fret's on Fire ships each song's guitar alone beside the mix: one recording.
            && !path.ends_with("guitar.ogg")
        {
            out.push(path);
        }
    }
}

fn suffix(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

fn duration_secs(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0)
}

/// The larger library: the test library's tracks, then every fifth track (that earshot decodes
/// itself) of each game not in it. Returns (id, path).
pub fn library(tracks: &[Track]) -> Vec<(String, PathBuf)> {
    let mut refs: Vec<(String, PathBuf)> = references()
        .into_iter()
        .map(|(path, _)| (path.clone(), PathBuf::from(path)))
        .collect();
    let mut per_game: std::collections::HashMap<&str, usize> = Default::default();
    for track in tracks {
        if track.game == "etr" || track.game == "frozen-bubble" {
            continue;
        }
        if !suffix(&track.path).is_some_and(|s| DECODED.contains(&s.as_str())) {
            continue;
        }
        let n = per_game.entry(track.game).or_default();
        if (*n).is_multiple_of(5) {
            refs.push((track.path.display().to_string(), track.path.clone()));
        }
        *n += 1;
    }
    refs
}

/// The telephone band: 300–3400 Hz, 8 kHz mono, as a low-rate MP3.
const TELEPHONE: &[&str] = &[
    "-af",
    "highpass=f=300,lowpass=f=3400",
    "-ar",
    "8000",
    "-ac",
    "1",
    "-c:a",
    "libmp3lame",
    "-b:a",
    "24k",
];

/// How a whole track is uploaded: (name, ffmpeg output args, suffix); `None` args: as shipped.
const UPLOADS: &[(&str, Option<&[&str]>, &str)] = &[
    (
        "MP3 128k",
        Some(&["-c:a", "libmp3lame", "-b:a", "128k"]),
        "mp3",
    ),
    ("telephone band", Some(TELEPHONE), "mp3"),
    ("as shipped", None, ""),
];

/// The tracks outside `library`, uploaded whole: in turn as MP3, in the telephone band, and as
/// shipped (tracker modules rendered to MP3). Made once per checkout; (label, path).
///
/// `every`: 1 for all of them, 2 for every other one (each kind of upload still in turn), made as
/// a set of its own.
pub fn uploads(
    tracks: &[Track],
    library: &[(String, PathBuf)],
    every: usize,
) -> Vec<(String, PathBuf)> {
    let outside: Vec<&Track> = tracks
        .iter()
        .filter(|t| !library.iter().any(|(_, p)| *p == t.path))
        .collect();
    let inputs: Vec<PathBuf> = outside.iter().map(|t| t.path.clone()).collect();
    super::cache::labelled_files(
        &format!("whole-tracks-every-{every}"),
        include_str!("whole_tracks.rs"),
        &inputs,
        |dir| {
            let jobs: Vec<(usize, &Track)> = outside
                .iter()
                .copied()
                .enumerate()
                .step_by(every.max(1))
                .collect();
            on_every_core(&jobs, |&(i, track)| {
                let (how, args, out_suffix) = UPLOADS[i % UPLOADS.len()];
                let shipped = suffix(&track.path).unwrap_or_default();
                let args: &[&str] = match args {
                    Some(args) => args,
                    None if DECODED.contains(&shipped.as_str()) => {
                        let label = format!("{}, whole, {how}", track.path.display());
                        return (label, track.path.clone());
                    }
                    None => &["-c:a", "libmp3lame", "-b:a", "128k"],
                };
                let out_suffix = if out_suffix.is_empty() {
                    "mp3"
                } else {
                    out_suffix
                };
                let input = track.path.to_string_lossy();
                let mut all = vec!["-i", &*input];
                all.extend_from_slice(args);
                let path = ffmpeg(&all, &dir.join(format!("track{i}.{out_suffix}")));
                (format!("{}, whole, {how}", track.path.display()), path)
            })
        },
    )
}

/// Query lengths the excerpts are cut at, seconds.
pub const EXCERPT_SECS: &[f64] = &[8.0, 20.0, 60.0, 180.0];

/// `whole` and its excerpts of [`EXCERPT_SECS`] that fit, each from the middle of the track, as
/// (length in seconds, fingerprint). An excerpt is the whole's landmarks in its span, shifted to
/// start at frame 0: what fingerprinting the cut audio gives, but for a few landmarks at its edges.
pub fn lengths(whole: &Fingerprint) -> Vec<(f64, Fingerprint)> {
    let secs = whole.duration_secs();
    let mut out = vec![(secs, whole.clone())];
    for &length in EXCERPT_SECS {
        if length + 4.0 > secs {
            continue;
        }
        let frames = (f64::from(whole.frames) * length / secs) as u32;
        let start = (whole.frames - frames) / 2;
        let landmarks = whole
            .landmarks
            .iter()
            .filter(|l| l.frame >= start && l.frame < start + frames)
            .map(|l| Landmark {
                hash: l.hash,
                frame: l.frame - start,
            })
            .collect();
        out.push((length, Fingerprint { landmarks, frames }));
    }
    out
}

/// The length bucket a query of `secs` falls in, for tables.
pub fn bucket(secs: f64) -> &'static str {
    match secs {
        s if s < 15.0 => "8 s",
        s if s < 45.0 => "20 s",
        s if s < 120.0 => "1–2 min",
        s if s < 240.0 => "2–4 min",
        _ => "4–10 min",
    }
}

pub const BUCKETS: &[&str] = &["8 s", "20 s", "1–2 min", "2–4 min", "4–10 min"];

/// How the test library's tracks are uploaded whole, to be found: (name, ffmpeg args).
const WHOLE_POSITIVES: &[(&str, &[&str])] = &[
    ("MP3 64k", &["-c:a", "libmp3lame", "-b:a", "64k"]),
    ("telephone band", TELEPHONE),
    (
        "tempo +3 %, pitch kept",
        &["-af", "atempo=1.03", "-c:a", "libmp3lame", "-b:a", "128k"],
    ),
];

/// Every test library track uploaded whole under each of [`WHOLE_POSITIVES`]: (label, the index
/// of its reference, path). Made once per checkout.
pub fn whole_positives() -> Vec<(String, usize, PathBuf)> {
    let refs = references();
    let inputs: Vec<PathBuf> = refs.iter().map(|(p, _)| PathBuf::from(p)).collect();
    let made = super::cache::labelled_files(
        "whole-positives",
        include_str!("whole_tracks.rs"),
        &inputs,
        |dir| {
            let jobs: Vec<(usize, usize)> = (0..refs.len())
                .flat_map(|r| (0..WHOLE_POSITIVES.len()).map(move |t| (r, t)))
                .collect();
            on_every_core(&jobs, |&(r, t)| {
                let (how, args) = WHOLE_POSITIVES[t];
                let mut all = vec!["-i", refs[r].0.as_str()];
                all.extend_from_slice(args);
                let path = ffmpeg(&all, &dir.join(format!("ref{r}-{t}.mp3")));
                (format!("{r}|{how}"), path)
            })
        },
    );
    made.into_iter()
        .map(|(label, path)| {
            let (r, how) = label.split_once('|').expect("labelled");
            (how.to_owned(), r.parse().expect("a number"), path)
        })
        .collect()
}

/// The code a fingerprint depends on: the fingerprinter and the decoder.
const FINGERPRINT_CODE: &[&str] = &[
    include_str!("../../../src/fingerprint/mod.rs"),
    include_str!("../../../src/fingerprint/resample.rs"),
    include_str!("../../../src/audio/mod.rs"),
    include_str!("../../../src/audio/opus.rs"),
    include_str!("../../../src/audio/ape.rs"),
    include_str!("../../../src/audio/external.rs"),
];

/// The fingerprint of a whole file, kept in `target/test-cache/prints/` under a key of the
/// fingerprinting code and the file's path, size and modification time: the hours of audio here
/// are fingerprinted once per checkout, again only when the code or the file changes.
pub fn print_of(path: &Path) -> Fingerprint {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for code in FINGERPRINT_CODE {
        hash.update(code.as_bytes());
    }
    hash.update(super::cache::stamp(path).as_bytes());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-cache/prints");
    let kept = dir.join(format!("{}.fp", hex::encode(&hash.finalize()[..12])));
    if let Some(fp) = std::fs::read(&kept)
        .ok()
        .and_then(|bytes| Fingerprint::from_bytes(&bytes).ok())
    {
        return fp;
    }
    let limits = earshot::audio::DecodeLimits {
        max_duration_secs: 3600,
    };
    let suffix = earshot::rules::key_suffix(&path.to_string_lossy());
    let (_, fp) = earshot::fingerprint::fingerprint_file(path, suffix.as_deref(), limits)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::create_dir_all(&dir).expect("target/test-cache/prints");
    // Written aside and renamed, so a reader never sees half a file.
    let partial = dir.join(format!(".{}.{}", std::process::id(), fastrand::u64(..)));
    std::fs::write(&partial, fp.to_bytes()).expect("writes");
    std::fs::rename(&partial, &kept).expect("renames");
    fp
}
