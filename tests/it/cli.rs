//! The `earshot` binary as the README shows it: `moderate FILE` with no S3 at all, the library
//! commands, `moderate s3://…` with and without `--dry-run`, `check-config`, and exit codes.

use std::path::Path;
use std::process::Output;

use crate::common::*;

fn earshot(config: Option<&Path>, args: &[&str], cwd: &Path) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_earshot"));
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("EARSHOT_CONFIG")
        .env("EARSHOT_LOG_FORMAT", "json")
        .output()
        .expect("earshot runs")
}

pub(crate) fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn write_library_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("earshot.toml");
    std::fs::write(
        &path,
        format!(
            "[engines.local]\ntype = \"local\"\nlibrary = \"{}\"\n",
            dir.join("library").display()
        ),
    )
    .expect("write");
    path
}

#[test]
fn moderate_a_local_file_needs_no_s3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_library_config(dir.path());
    let bad = tone(&dir.path().join("bad.mp3"), 3.0, 700, &[]);
    let clean = tone(
        &dir.path().join("clean.ogg"),
        3.0,
        300,
        &["-c:a", "libvorbis"],
    );

    let verdict = stdout_json(&earshot(
        Some(&config),
        &["moderate", clean.to_str().expect("utf-8")],
        dir.path(),
    ));
    assert_eq!(verdict["code"], 0);
    assert_eq!(verdict["data"]["result"], 0);
    assert_eq!(verdict["data"]["forbidden_status"], 0);
    assert!(verdict["data"]["porn_info"].is_object() && verdict["data"]["ads_info"].is_object());

    // Add, list, match, remove.
    let add = earshot(
        Some(&config),
        &[
            "library",
            "add",
            "--scene",
            "porn",
            "--label",
            "known-clip",
            bad.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    let id = added_id(&add);
    assert_eq!(id.len(), 64);
    let list = earshot(Some(&config), &["library", "list"], dir.path());
    assert!(String::from_utf8_lossy(&list.stdout).contains(&id));

    let verdict = stdout_json(&earshot(
        Some(&config),
        &["moderate", bad.to_str().expect("utf-8")],
        dir.path(),
    ));
    assert_eq!(verdict["data"]["result"], 1);
    assert_eq!(verdict["data"]["porn_info"]["score"], 100);
    assert_eq!(verdict["data"]["porn_info"]["label"], "known-clip");

    let remove = earshot(Some(&config), &["library", "remove", &id[..12]], dir.path());
    assert!(
        remove.status.success(),
        "{}",
        String::from_utf8_lossy(&remove.stderr)
    );
    let verdict = stdout_json(&earshot(
        Some(&config),
        &["moderate", bad.to_str().expect("utf-8")],
        dir.path(),
    ));
    assert_eq!(verdict["data"]["result"], 0);
}

#[test]
fn moderate_reports_bad_files_with_their_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_library_config(dir.path());
    let text = dir.path().join("letter.mp3");
    std::fs::write(&text, "Dear Sir or Madam,\n".repeat(50)).expect("write");
    let verdict = stdout_json(&earshot(
        Some(&config),
        &["moderate", text.to_str().expect("utf-8")],
        dir.path(),
    ));
    assert_eq!(verdict["code"], 1001);
    assert!(
        verdict["message"]
            .as_str()
            .expect("message")
            .contains("not a recognised audio file")
    );
}

#[test]
fn library_add_refuses_what_is_not_audio() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_library_config(dir.path());
    let text = dir.path().join("x.mp3");
    std::fs::write(&text, "hello").expect("write");
    let out = earshot(
        Some(&config),
        &[
            "library",
            "add",
            "--scene",
            "ads",
            "--label",
            "x",
            text.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a recognised audio file"));
}

#[test]
fn config_errors_exit_2_and_name_the_key_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[[rules]]\nid = \"a\"\nbucket = \"b\"\nblock = { min_score = 55 }\n",
    )
    .expect("write");
    let out = earshot(Some(&config), &["check-config"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rules.0.block.min_score") && stderr.contains("bad.toml"),
        "{stderr}"
    );

    let missing = earshot(
        Some(&dir.path().join("nope.toml")),
        &["check-config"],
        dir.path(),
    );
    assert_eq!(missing.status.code(), Some(2));
    let usage = earshot(None, &["moderate"], dir.path());
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_redacted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_earshot"));
    let out = command
        .arg("check-config")
        .current_dir(root)
        .env_remove("EARSHOT_CONFIG")
        .env("EARSHOT_LIMITS__MAX_DURATION_SECS", "600")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("max_duration_secs = 600"),
        "the environment overrides the file:\n{printed}"
    );
    assert!(
        !printed.contains("s3cret"),
        "the callback seed is redacted:\n{printed}"
    );
    assert!(printed.contains("<redacted>"));
}

#[tokio::test]
async fn moderate_an_s3_object_blocks_it_unless_dry_run() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = tone(&dir.path().join("bad.mp3"), 3.0, 500, &[]);
    let library = library_with(dir.path(), &bad, earshot::model::Scene::Illegal).await;
    put_file(&s3, &bucket, "audio/bad.mp3", &bad, "audio/mpeg").await;
    let config = dir.path().join("earshot.toml");
    let typed = config_at(LOCALSTACK, &bucket, &listener.url, "move", &library);
    std::fs::write(&config, config_toml(&typed)).expect("write");
    let target = format!("s3://{bucket}/audio/bad.mp3");

    let run = |args: Vec<String>| {
        let config = config.clone();
        let cwd = dir.path().to_owned();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            earshot(Some(&config), &args, &cwd)
        })
    };
    let dry = stdout_json(
        &run(vec!["moderate".into(), target.clone(), "--dry-run".into()])
            .await
            .expect("runs"),
    );
    assert_eq!(dry["data"]["result"], 1);
    assert_eq!(dry["data"]["forbidden_status"], 0);
    assert_eq!(
        head_status(&s3, &bucket, "audio/bad.mp3").await,
        200,
        "--dry-run blocks nothing"
    );
    assert!(
        listener.received().is_empty(),
        "--dry-run calls back nothing"
    );

    let real = stdout_json(&run(vec!["moderate".into(), target]).await.expect("runs"));
    assert_eq!(real["data"]["forbidden_status"], 2);
    assert_eq!(real["data"]["illegal_info"]["score"], 100);
    assert_eq!(head_status(&s3, &bucket, "audio/bad.mp3").await, 404);
    let received = listener
        .wait_for(1, std::time::Duration::from_secs(20))
        .await;
    assert_eq!(received[0].json(), real);
}

#[tokio::test]
async fn a_library_under_an_s3_prefix_is_managed_and_used() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = tone(&dir.path().join("bad.wav"), 2.0, 900, &[]);
    let config = dir.path().join("earshot.toml");
    std::fs::write(
        &config,
        format!(
            "[s3]\nendpoint_url = \"{LOCALSTACK}\"\nregion = \"us-east-1\"\nforce_path_style = true\n\
             access_key_id = \"test\"\nsecret_access_key = \"test\"\n\n\
             [engines.local]\ntype = \"local\"\nlibrary = \"s3://{bucket}/refs/library/\"\n"
        ),
    )
    .expect("write");
    let run = |args: Vec<String>| {
        let (config, cwd) = (config.clone(), dir.path().to_owned());
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            earshot(Some(&config), &args, &cwd)
        })
    };
    let bad_path = bad.to_str().expect("utf-8").to_owned();
    let add = run(vec![
        "library".into(),
        "add".into(),
        "--scene".into(),
        "abuse".into(),
        "--label".into(),
        "slur".into(),
        bad_path.clone(),
    ])
    .await
    .expect("runs");
    let id = added_id(&add);
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("refs/library/entries/")
        .send()
        .await
        .expect("list");
    let mut keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("refs/library/entries/{id}.audio"),
            format!("refs/library/entries/{id}.fp"),
            format!("refs/library/entries/{id}.json")
        ],
        "the entry, its fingerprint and a copy of the recording live in the bucket"
    );
    assert_eq!(
        head_status(&s3, &bucket, "refs/library/index/library.idx").await,
        200,
        "the library's index is stored beside its entries"
    );

    // No --scene: every scene is judged, the library's abuse entry's included.
    let verdict = stdout_json(
        &run(vec!["moderate".into(), bad_path.clone()])
            .await
            .expect("runs"),
    );
    assert_eq!(verdict["data"]["abuse_info"]["score"], 100);
    assert_eq!(verdict["scenes"][3], "abuse");
    assert_eq!(verdict["data"]["abuse_info"]["label"], "slur");

    let remove = run(vec!["library".into(), "remove".into(), id])
        .await
        .expect("runs");
    assert!(
        remove.status.success(),
        "{}",
        String::from_utf8_lossy(&remove.stderr)
    );
    let verdict = stdout_json(
        &run(vec![
            "moderate".into(),
            bad_path,
            "--scene".into(),
            "abuse".into(),
        ])
        .await
        .expect("runs"),
    );
    assert_eq!(verdict["data"]["abuse_info"]["score"], 0);
}

#[tokio::test]
async fn library_add_takes_every_audio_object_under_an_s3_prefix() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, freq) in [300, 500, 700].iter().enumerate() {
        let clip = tone(&dir.path().join(format!("ref{i}.mp3")), 3.0, *freq, &[]);
        put_file(
            &s3,
            &bucket,
            &format!("refs/jingle-{i}.mp3"),
            &clip,
            "audio/mpeg",
        )
        .await;
    }
    put_bytes(&s3, &bucket, "refs/notes.txt", b"not audio".to_vec()).await;
    let config = dir.path().join("earshot.toml");
    std::fs::write(
        &config,
        format!(
            "[s3]\nendpoint_url = \"{LOCALSTACK}\"\nregion = \"us-east-1\"\nforce_path_style = true\n\
             access_key_id = \"test\"\nsecret_access_key = \"test\"\n\n\
             [engines.local]\ntype = \"local\"\nlibrary = \"{}\"\n",
            dir.path().join("library").display()
        ),
    )
    .expect("write");
    let (config, cwd, prefix) = (
        config.clone(),
        dir.path().to_owned(),
        format!("s3://{bucket}/refs/"),
    );
    let out = tokio::task::spawn_blocking(move || {
        earshot(
            Some(&config),
            &[
                "library", "add", "--scene", "ads", "--label", "jingle", &prefix,
            ],
            &cwd,
        )
    })
    .await
    .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let sources: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    assert_eq!(
        sources,
        (0..3)
            .map(|i| format!("s3://{bucket}/refs/jingle-{i}.mp3"))
            .collect::<Vec<_>>(),
        "every audio object, and only those"
    );
    let entries = std::fs::read_dir(dir.path().join("library/entries"))
        .expect("entries")
        .count();
    assert_eq!(
        entries, 9,
        "three entries, each with its fingerprint and recording"
    );
}

/// `earshot scan`, `scan --status`, `scan --dry-run`, `retro` and `restore` as the README shows
/// them, run as the binary.
#[tokio::test]
async fn scan_retro_and_restore_from_the_command_line() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = tone(&dir.path().join("bad.mp3"), 3.0, 500, &[]);
    let clean = tone(&dir.path().join("clean.mp3"), 3.0, 260, &[]);
    let library = library_with(dir.path(), &bad, earshot::model::Scene::Ads).await;
    put_file(&s3, &bucket, "audio/bad.mp3", &bad, "audio/mpeg").await;
    put_file(&s3, &bucket, "audio/clean.mp3", &clean, "audio/mpeg").await;
    let config = dir.path().join("earshot.toml");
    let mut typed = config_at(LOCALSTACK, &bucket, &listener.url, "move", &library);
    std::fs::write(&config, config_toml(&typed)).expect("write");
    let run = |args: Vec<String>| {
        let (config, cwd) = (config.clone(), dir.path().to_owned());
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            earshot(Some(&config), &args, &cwd)
        })
    };
    let args = |text: &str| -> Vec<String> {
        text.replace("media", &bucket)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };

    // The README's commands, with the test's bucket for `media`.
    let plan = stdout_json(
        &run(args("scan s3://media/audio/ --dry-run"))
            .await
            .expect("runs"),
    );
    assert_eq!(plan["counts"]["by_suffix"]["mp3"], 2, "{plan}");
    assert_eq!(listener.arrived(), 0, "a dry run judges nothing");
    let done = stdout_json(
        &run(args("scan s3://media/audio/ --since 7d --concurrency 8"))
            .await
            .expect("runs"),
    );
    assert_eq!(done["counts"]["judged"]["blocked"], 1, "{done}");
    assert_eq!(done["counts"]["judged"]["passed"], 1, "{done}");
    let status = run(args("scan --status s3://media")).await.expect("runs");
    let listed = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success() && listed.contains("finished"),
        "{listed}"
    );
    assert_eq!(head_status(&s3, &bucket, "audio/bad.mp3").await, 404);

    let mut restore = args("restore s3://media/audio/bad.mp3 --reason");
    restore.push("licensed jingle".to_owned());
    let out = run(restore).await.expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(head_status(&s3, &bucket, "audio/bad.mp3").await, 200);
    let calls = listener
        .wait_for(3, std::time::Duration::from_secs(30))
        .await;
    assert_eq!(
        calls[2].json()["data"]["action"]["reason"],
        "licensed jingle"
    );
    // A time window over a prefix: the block restored above is not restored twice.
    let window = run(args(
        "restore s3://media/audio/ --since 2026-12-01T00:00:00Z --until 2099-01-01T00:00:00Z --reason again",
    ))
    .await
    .expect("runs");
    let said = String::from_utf8_lossy(&window.stdout);
    assert!(
        window.status.success() && said.contains("already restored"),
        "{said}{}",
        String::from_utf8_lossy(&window.stderr)
    );

    // No rule keeps prints: `retro` is a usage error (exit 2) that says what to set.
    let out = run(args("retro --dry-run")).await.expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("retro = { keep = true }"));
    typed.rules[0].retro.keep = true;
    std::fs::write(&config, config_toml(&typed)).expect("write");
    let out = run(args("retro --since 1d")).await.expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Shell completions and man pages come from the command definitions, need no config, and
/// name every command: the bash script is valid bash that completes `serve` and `check-config`;
/// `man --dir` writes a page per command and subcommand.
#[test]
fn completions_and_man_pages_are_made_from_the_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bash = earshot(None, &["completions", "bash"], dir.path());
    assert!(
        bash.status.success(),
        "{}",
        String::from_utf8_lossy(&bash.stderr)
    );
    let script = String::from_utf8(bash.stdout).expect("UTF-8");
    assert!(script.contains("_earshot()") && script.contains("check-config"));
    let script_path = dir.path().join("earshot.bash");
    std::fs::write(&script_path, &script).expect("write");
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script_path)
        .output()
        .expect("bash runs");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    for shell in ["zsh", "fish"] {
        let out = earshot(None, &["completions", shell], dir.path());
        assert!(out.status.success() && out.stdout.len() > 1000, "{shell}");
    }
    let page = earshot(None, &["man"], dir.path());
    assert!(
        page.status.success(),
        "{}",
        String::from_utf8_lossy(&page.stderr)
    );
    let page = String::from_utf8(page.stdout).expect("UTF-8");
    assert!(
        page.contains(".TH earshot 1") && page.contains(".SH NAME"),
        "{page}"
    );
    let pages = dir.path().join("man");
    let wrote = earshot(
        None,
        &["man", "--dir", pages.to_str().expect("UTF-8")],
        dir.path(),
    );
    assert!(
        wrote.status.success(),
        "{}",
        String::from_utf8_lossy(&wrote.stderr)
    );
    for name in [
        "earshot.1",
        "earshot-serve.1",
        "earshot-callbacks-replay.1",
        "earshot-review-decide.1",
    ] {
        let text =
            std::fs::read_to_string(pages.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".TH"), "{name}");
    }
}
