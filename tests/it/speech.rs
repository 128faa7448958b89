//! The speech engine on real recordings (Debian's LibriVox reading from pocketsphinx-testdata)
//! and synthetic voices (espeak-ng, flite), with the Whisper tiny.en model that
//! scripts/speech-model/fetch.sh makes from a pinned PyPI package: planted terms found at their
//! time, nothing heard in music, noise or silence, exact and fuzzy bands, a bad model refused,
//! and on LocalStack a running daemon picking up a new dictionary and blocking a spoken ad pitch,
//! with the local engine beside it on the same rule.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use earshot::config::{Config, EngineConfig};

pub const LIBRIVOX: &str =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav";
pub const MUSIC: &str = "/usr/share/games/etr/music/freezingpoint.ogg";
const OTHER_MUSIC: &str = "/usr/share/games/frozen-bubble/snd/frozen-mainzik-1p.ogg";
const WAIT: Duration = Duration::from_secs(90);

/// A model a `scripts/` fetch script makes under `.earshot/models/`, and its pinned SHA-256 (in
/// `sha_file`, relative to the repository).
pub fn pinned_model(file: &str, sha_file: &str, script: &str) -> (PathBuf, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join(".earshot/models").join(file);
    assert!(
        model.is_file(),
        "{} missing: run {script} (scripts/test.sh does)",
        model.display()
    );
    let sha = std::fs::read_to_string(root.join(sha_file)).expect("the pinned hash");
    (model, sha.trim().to_owned())
}

/// The test model and its SHA-256.
pub fn speech_model() -> (PathBuf, String) {
    pinned_model(
        "ggml-tiny.en-q8_0.bin",
        "scripts/speech-model/ggml-tiny.en-q8_0.sha256",
        "scripts/speech-model/fetch.sh",
    )
}

/// `[engines.speech]` on the test model and `dictionaries`.
pub fn speech_engine(dictionaries: &Path) -> EngineConfig {
    let (model, sha) = speech_model();
    engine_section(&format!(
        r#"
        type = "speech"
        model = "{}"
        model_sha256 = "{sha}"
        dictionaries = "{}"
        refresh_secs = 1
        "#,
        model.display(),
        dictionaries.display()
    ))
}

/// A config whose rule asks the local engine and the speech engine.
pub fn speech_config(dir: &Path, bucket: &str, callback_url: &str) -> Config {
    let mut config = config(bucket, callback_url, "move", &dir.join("library"));
    config.engines.insert(
        "speech".to_owned(),
        speech_engine(&dir.join("dictionaries")),
    );
    config
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `text` spoken by espeak-ng (or flite) as a WAV file.
pub fn say(dir: &Path, name: &str, voice: &str, text: &str) -> PathBuf {
    let out = dir.join(format!("{name}.wav"));
    match voice {
        "flite" => run(Command::new("flite").args(["-t", text, "-o"]).arg(&out)),
        _ => run(Command::new("espeak-ng").arg("-w").arg(&out).arg(text)),
    }
    out
}

fn duration(path: &Path) -> f64 {
    let out = Command::new("soxi")
        .arg("-D")
        .arg(path)
        .output()
        .expect("soxi runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a duration")
}

/// A part of a test upload: a file (from `start`, for `secs`), silence, or pink noise.
pub enum Part<'a> {
    File(&'a Path, f64, Option<f64>),
    Silence(f64),
    Noise(f64),
}

/// The parts one after another as a 44.1 kHz MP3; returns it and where each part starts.
pub fn upload_of(dir: &Path, name: &str, parts: &[Part]) -> (PathBuf, Vec<f64>) {
    let mut command = Command::new("ffmpeg");
    command.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]);
    let mut filter = String::new();
    let mut starts = Vec::new();
    let mut at = 0.0;
    for (i, part) in parts.iter().enumerate() {
        starts.push(at);
        let secs = match part {
            Part::File(path, start, secs) => {
                command.args(["-ss", &start.to_string()]);
                if let Some(secs) = secs {
                    command.args(["-t", &secs.to_string()]);
                }
                command.arg("-i").arg(path);
                secs.unwrap_or_else(|| duration(path) - start)
            }
            Part::Silence(secs) => {
                command.args([
                    "-f",
                    "lavfi",
                    "-t",
                    &secs.to_string(),
                    "-i",
                    "anullsrc=r=44100:cl=mono",
                ]);
                *secs
            }
            Part::Noise(secs) => {
                command.args([
                    "-f",
                    "lavfi",
                    "-t",
                    &secs.to_string(),
                    "-i",
                    "anoisesrc=c=pink:a=0.08:r=44100",
                ]);
                *secs
            }
        };
        at += secs;
        filter.push_str(&format!(
            "[{i}:a]aresample=44100,aformat=sample_fmts=fltp:channel_layouts=mono[p{i}];"
        ));
    }
    for i in 0..parts.len() {
        filter.push_str(&format!("[p{i}]"));
    }
    filter.push_str(&format!("concat=n={}:v=0:a=1", parts.len()));
    let out = dir.join(format!("{name}.mp3"));
    run(command
        .args(["-filter_complex", &filter, "-b:a", "128k"])
        .arg(&out));
    (out, starts)
}

/// `earshot moderate FILE --engine speech --transcript`, with no `--scene`: every scene is
/// judged. The transcript's lines and the verdict.
pub fn moderate(config: &Path, file: &Path) -> (Vec<String>, serde_json::Value) {
    let out = ok(&earshot(
        config,
        &[
            "moderate",
            file.to_str().expect("utf-8"),
            "--engine",
            "speech",
            "--transcript",
        ],
    ));
    let json_at = out.find("\n{").map_or(0, |i| i + 1);
    let lines = out[..json_at].lines().map(str::to_owned).collect();
    let verdict = serde_json::from_str(&out[json_at..]).unwrap_or_else(|e| panic!("{e}: {out}"));
    (lines, verdict)
}

/// Term-free uploads: a LibriVox reading (speech, true) and game music (false).
pub fn term_free_uploads(dir: &Path) -> [(PathBuf, bool); 2] {
    let (reading, _) = upload_of(
        dir,
        "reading",
        &[Part::File(Path::new(LIBRIVOX), 0.0, Some(40.0))],
    );
    let (music, _) = upload_of(
        dir,
        "music",
        &[Part::File(Path::new(MUSIC), 20.0, Some(30.0))],
    );
    [(reading, true), (music, false)]
}

pub fn add_terms(config: &Path, args: &[&str]) {
    let mut all = vec!["dictionary", "add"];
    all.extend_from_slice(args);
    ok(&earshot(config, &all));
}

pub fn segments_of<'a>(verdict: &'a serde_json::Value, scene: &str) -> Vec<&'a serde_json::Value> {
    verdict["data"]["segments"]
        .as_array()
        .map(|all| all.iter().filter(|s| s["scene"] == scene).collect())
        .unwrap_or_default()
}

#[test]
fn planted_terms_are_found_at_their_time_with_exact_and_fuzzy_bands() {
    let (dir, config) = local_setup();
    add_terms(&config, &["pitch", "--scene", "ads", "car insurance"]);
    add_terms(
        &config,
        &[
            "misspelt",
            "--scene",
            "illegal",
            "--match",
            "fuzzy",
            "insurence",
        ],
    );
    add_terms(
        &config,
        &[
            "unkind",
            "--scene",
            "abuse",
            "--suggestion",
            "review",
            "ill disposed",
        ],
    );
    let pitch = say(
        dir.path(),
        "pitch",
        "espeak",
        "Call now for cheap car insurance.",
    );
    let lead = say(dir.path(), "lead", "espeak", "Call now for cheap");
    let music = Path::new(MUSIC);
    let (upload, starts) = upload_of(
        dir.path(),
        "upload",
        &[
            Part::Silence(2.0),
            Part::File(music, 30.0, Some(6.0)),
            Part::Noise(2.0),
            Part::File(Path::new(LIBRIVOX), 0.0, None),
            Part::Silence(1.0),
            Part::File(&pitch, 0.0, None),
            Part::Silence(1.0),
        ],
    );
    let (lines, verdict) = moderate(&config, &upload);
    let data = &verdict["data"];
    assert_eq!(data["result"], 1, "{verdict}");
    // No --scene given: every scene judged, the abuse dictionary's included, and said so.
    assert_eq!(
        verdict["scenes"],
        serde_json::json!(["porn", "ads", "illegal", "abuse"])
    );
    let transcript = lines.join("\n");
    assert!(
        transcript.to_lowercase().contains("insurance"),
        "{transcript}"
    );

    // Exact and confident: sensitive, where the pitch says it.
    assert_eq!(data["ads_info"]["hit_flag"], 1, "{verdict}");
    assert!(data["ads_info"]["score"].as_u64().expect("score") > 90);
    assert_eq!(data["ads_info"]["engine"], "speech");
    let ads = segments_of(&verdict, "ads");
    let expected = starts[5] + duration(&lead) - 0.3;
    let at = ads[0]["offset_secs"].as_f64().expect("offset");
    assert!(
        (at - expected).abs() <= 1.0,
        "car insurance at {at} s, said at {expected} s"
    );
    assert_eq!(ads[0]["term"], "car insurance");
    assert!(
        ads[0]["text"]
            .as_str()
            .expect("text")
            .to_lowercase()
            .contains("insurance")
    );

    // Fuzzy: suspicious, at the same place.
    assert_eq!(data["illegal_info"]["hit_flag"], 2, "{verdict}");
    let illegal = segments_of(&verdict, "illegal");
    assert_eq!(illegal[0]["term"], "insurence");
    assert!((illegal[0]["offset_secs"].as_f64().expect("offset") - expected).abs() <= 1.0);

    // The real reading: "he was not an ill disposed young man", "ill" the fifth of eight words.
    assert_eq!(data["abuse_info"]["hit_flag"], 2, "{verdict}");
    assert_eq!(data["abuse_info"]["score"], 75);
    let abuse = segments_of(&verdict, "abuse");
    let said = starts[3] + duration(Path::new(LIBRIVOX)) * 4.0 / 8.0;
    let at = abuse[0]["offset_secs"].as_f64().expect("offset");
    assert!(
        (at - said).abs() <= 1.0,
        "ill disposed at {at} s, said near {said} s"
    );

    // Nothing heard before the reading: silence, music and noise give no words.
    let first = lines.first().expect("a transcript line");
    let first_at: f64 = first[1..3].parse::<f64>().expect("minutes") * 60.0
        + first[4..9].parse::<f64>().expect("seconds");
    assert!(
        first_at >= starts[3] - 0.5,
        "words at {first_at} s, before the speech at {}: {transcript}",
        starts[3]
    );
}

#[test]
fn nothing_is_heard_in_music_noise_or_silence() {
    let (dir, config) = local_setup();
    add_terms(
        &config,
        &[
            "pitch",
            "--scene",
            "ads",
            "--match",
            "fuzzy",
            "car insurance",
            "call now",
        ],
    );
    let files = [
        upload_of(
            dir.path(),
            "music",
            &[Part::File(Path::new(MUSIC), 20.0, Some(30.0))],
        )
        .0,
        upload_of(
            dir.path(),
            "other",
            &[Part::File(Path::new(OTHER_MUSIC), 0.0, Some(30.0))],
        )
        .0,
        upload_of(dir.path(), "noise", &[Part::Noise(20.0)]).0,
        upload_of(dir.path(), "silence", &[Part::Silence(20.0)]).0,
    ];
    for file in files {
        let (lines, verdict) = moderate(&config, &file);
        assert!(lines.is_empty(), "{}: heard {lines:?}", file.display());
        assert_eq!(verdict["data"]["result"], 0, "{verdict}");
        assert_eq!(verdict["data"]["ads_info"]["score"], 0, "{verdict}");
    }
    // A second voice is heard too.
    let flite = say(
        dir.path(),
        "flite",
        "flite",
        "Please call now about cheap car insurance.",
    );
    let (lines, verdict) = moderate(&config, &flite);
    assert!(!lines.is_empty());
    assert!(
        verdict["data"]["ads_info"]["score"]
            .as_u64()
            .expect("score")
            > 60,
        "{verdict}"
    );
}

#[test]
fn dictionary_commands_add_list_and_remove() {
    let (dir, config) = local_setup();
    add_terms(
        &config,
        &[
            "shop_ads",
            "--scene",
            "ads",
            "--suggestion",
            "review",
            "call now",
            "Call NOW!",
        ],
    );
    let terms = dir.path().join("terms.txt");
    std::fs::write(&terms, "free money\n\n50% off\n").expect("write");
    add_terms(
        &config,
        &[
            "shop_ads",
            "--score",
            "92",
            "--file",
            terms.to_str().expect("utf-8"),
        ],
    );
    add_terms(
        &config,
        &["wechat", "--scene", "ads", "--match", "fuzzy", "加微信"],
    );
    let listed = ok(&earshot(&config, &["dictionary", "list"]));
    assert!(
        listed.contains("shop_ads\tads\treview\texact\t3 terms"),
        "{listed}"
    );
    assert!(
        listed.contains("wechat\tads\tblock\tfuzzy\t1 terms"),
        "{listed}"
    );
    let shop = ok(&earshot(&config, &["dictionary", "list", "shop_ads"]));
    assert_eq!(
        shop, "call now\t75\nfree money\t92\n50% off\t92\n",
        "the same words once"
    );
    ok(&earshot(
        &config,
        &["dictionary", "remove", "shop_ads", "fifty percent off"],
    ));
    let shop = ok(&earshot(&config, &["dictionary", "list", "shop_ads"]));
    assert_eq!(shop, "call now\t75\nfree money\t92\n");
    ok(&earshot(&config, &["dictionary", "remove", "wechat"]));
    let listed = ok(&earshot(&config, &["dictionary", "list"]));
    assert!(!listed.contains("wechat"), "{listed}");
    let new_without_scene = earshot(&config, &["dictionary", "add", "other", "term"]);
    assert_eq!(new_without_scene.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&new_without_scene.stderr).contains("--scene is needed"));
    let bad_name = earshot(
        &config,
        &["dictionary", "add", "bad name", "--scene", "ads", "x"],
    );
    assert_eq!(bad_name.status.code(), Some(2));
}

#[test]
fn a_missing_or_wrong_model_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(
        "unused",
        "http://127.0.0.1:9/hook",
        "move",
        &dir.path().join("library"),
    );
    let path = dir.path().join("earshot.toml");
    let mut check = |engine: EngineConfig| {
        config.engines.insert("speech".to_owned(), engine);
        std::fs::write(&path, config_toml(&config)).expect("write");
        let out = earshot(&path, &["check-config"]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let EngineConfig::Speech(good) = speech_engine(&dir.path().join("dictionaries")) else {
        unreachable!()
    };
    let mut wrong = good.clone();
    wrong.model_sha256 = "0".repeat(64);
    let (code, stderr) = check(EngineConfig::Speech(wrong));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("engines.speech.model_sha256"), "{stderr}");
    assert!(stderr.contains("a different or damaged model"), "{stderr}");
    let mut missing = good.clone();
    missing.model = dir.path().join("nowhere.bin").display().to_string();
    let (code, stderr) = check(EngineConfig::Speech(missing));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("engines.speech.model"), "{stderr}");
    assert!(stderr.contains("nowhere.bin"), "{stderr}");
    let (code, stderr) = check(EngineConfig::Speech(good));
    assert_eq!(code, Some(0), "{stderr}");
}

/// Twelve sentences read back to back after 9 s of music: a recording longer than one of
/// Whisper's 30 s windows, with the sentences falling across where windows would be cut.
#[test]
fn every_term_of_a_long_recording_is_placed_within_a_second_of_its_sentence() {
    let (dir, config) = local_setup();
    let terms = [
        "car insurance",
        "free money",
        "casino bonus",
        "phone number",
        "bank account",
        "online pharmacy",
        "dating site",
        "discount code",
        "private message",
        "secret recipe",
        "luxury watches",
        "cheap flights",
    ];
    let mut args = vec!["offers", "--scene", "ads"];
    args.extend(terms);
    add_terms(&config, &args);
    let sentences: Vec<PathBuf> = terms
        .iter()
        .enumerate()
        .map(|(i, term)| {
            let text = match i % 3 {
                0 => format!("I think we should talk about {term} later today."),
                1 => format!("She told me that {term} was the reason."),
                _ => format!("Yesterday the man on the radio mentioned {term} twice."),
            };
            say(dir.path(), &format!("sentence{i}"), "espeak", &text)
        })
        .collect();
    let mut parts = vec![Part::File(Path::new(MUSIC), 30.0, Some(9.0))];
    for sentence in &sentences {
        parts.push(Part::File(sentence, 0.0, None));
        parts.push(Part::Silence(0.3));
    }
    let (upload, starts) = upload_of(dir.path(), "long", &parts);
    let (_, verdict) = moderate(&config, &upload);
    let ads = segments_of(&verdict, "ads");
    let mut found = Vec::new();
    for segment in &ads {
        let term = segment["term"].as_str().expect("a term");
        let i = terms
            .iter()
            .position(|t| *t == term)
            .expect("a planted term");
        let (from, to) = (starts[1 + 2 * i], starts[2 + 2 * i]);
        let at = segment["offset_secs"].as_f64().expect("offset");
        assert!(
            at >= from - 1.0 && at <= to + 1.0,
            "{term} placed at {at:.1} s, said at {from:.1}-{to:.1} s: {verdict}"
        );
        found.push(term);
    }
    found.sort_unstable();
    found.dedup();
    assert!(found.len() >= 10, "found {} of 12: {found:?}", found.len());
}

/// A config for local files (the S3 endpoint is never asked) in a fresh directory.
fn local_setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = speech_config(dir.path(), "unused", "http://127.0.0.1:9/hook");
    let path = dir.path().join("earshot.toml");
    std::fs::write(&path, config_toml(&config)).expect("write");
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_daemon_picks_up_a_dictionary_and_blocks_a_spoken_ad_beside_the_library() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let (sqs, queue_url) = fresh_queue(&s3, Some(&bucket)).await;
    drop(sqs);
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = Listener::start().await;
    let mut config = speech_config(dir.path(), &bucket, &listener.url);
    config.rules[0].engine =
        earshot::config::EngineNames::Many(vec!["local".into(), "speech".into()]);
    config.sources.sqs = Some(sqs_source(&queue_url, 2, 120));
    let path = dir.path().join("earshot.toml");
    std::fs::write(&path, config_toml(&config)).expect("write");
    let library_add = earshot(
        &path,
        &[
            "library",
            "add",
            "--scene",
            "porn",
            "--label",
            "banned-song",
            MUSIC,
        ],
    );
    ok(&library_add);
    let mut daemon = Daemon::start(dir.path(), &config);

    let pitch = say(
        dir.path(),
        "pitch",
        "espeak",
        "Call now for cheap car insurance. This offer ends tonight.",
    );
    let (spoken, _) = upload_of(
        dir.path(),
        "spoken",
        &[Part::Silence(1.0), Part::File(&pitch, 0.0, None)],
    );
    put_file(&s3, &bucket, "audio/before.mp3", &spoken, "audio/mpeg").await;
    let first = listener.wait_for(1, WAIT).await[0].json();
    assert_eq!(first["data"]["result"], 0, "no dictionary yet: {first}");
    assert_eq!(first["data"]["forbidden_status"], 0);

    add_terms(
        &path,
        &[
            "pitch",
            "--scene",
            "ads",
            "--label",
            "insurance_ad",
            "car insurance",
        ],
    );
    eventually(
        WAIT,
        "the running daemon reloading its dictionaries",
        || async {
            daemon
                .log()
                .contains("Dictionaries changed; reloaded.")
                .then_some(())
        },
    )
    .await;

    let (both, starts) = upload_of(
        dir.path(),
        "both",
        &[
            Part::File(Path::new(MUSIC), 40.0, Some(10.0)),
            Part::Silence(1.0),
            Part::File(&pitch, 0.0, None),
        ],
    );
    put_file(&s3, &bucket, "audio/after.mp3", &both, "audio/mpeg").await;
    let received = listener.wait_for(2, WAIT).await;
    let second = received
        .iter()
        .map(Received::json)
        .find(|j| j["data"]["key"] == "audio/after.mp3")
        .expect("the second upload's callback");
    let data = &second["data"];
    assert_eq!(data["forbidden_status"], 2, "{second}");
    assert_eq!(head_status(&s3, &bucket, "audio/after.mp3").await, 404);
    // Per scene the higher score wins, and names the engine that gave it.
    assert_eq!(data["porn_info"]["engine"], "local", "{second}");
    assert_eq!(data["porn_info"]["label"], "banned-song");
    assert_eq!(data["ads_info"]["engine"], "speech", "{second}");
    assert_eq!(data["ads_info"]["label"], "insurance_ad");
    assert!(data["ads_info"]["score"].as_u64().expect("score") > 90);
    let ads = segments_of(&second, "ads");
    assert_eq!(ads[0]["term"], "car insurance");
    let at = ads[0]["offset_secs"].as_f64().expect("offset");
    assert!(
        at > starts[2] && at < starts[2] + 3.0,
        "said at {at} s; the pitch starts at {}",
        starts[2]
    );
    daemon.assert_running();
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}
