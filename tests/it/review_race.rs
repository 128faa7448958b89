//! One review decision, carried out exactly once, however many deciders meet: five at once on
//! each of ten items (three `earshot review decide` processes and two consoles, each console a
//! pipeline of its own), and a winner killed between its claim and carrying it out, finished by
//! one of several finishers once its lease ran out. Counted: decision callbacks, `review-*` audit
//! entries, and (with `block.learn`) library additions, per item.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::common::browser::Served;
use crate::common::*;
use earshot::config::{ConsoleConfig, ConsoleUserConfig, Role};
use earshot::job::Job;
use earshot::pipeline::{Outcome, Pipeline};
use earshot::state::{blocks, review};

const ITEMS: usize = 10;

/// `n` suspicious uploads with different bytes (the tone before the excerpt varies), each judged
/// into the review queue; returns their trace ids.
async fn open_items(
    pipeline: &Pipeline,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    dir: &Path,
    upload: &Path,
    n: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let variant = dir.join(format!("variant{i}.mp3"));
        run(Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
            .arg(upload)
            .args(["-af", &format!("volume={:.2}", 1.0 - 0.02 * i as f64)])
            .args(["-b:a", "96k"])
            .arg(&variant));
        let key = format!("audio/item{i}.mp3");
        put_file(s3, bucket, &key, &variant, "audio/mpeg").await;
        match pipeline
            .process(&Job::new(bucket.to_owned(), &key))
            .await
            .expect("job runs")
        {
            Outcome::Finished { body, trace_id, .. } => {
                let review = body.data.review.expect("held for review");
                assert_eq!(
                    review.state, "pending",
                    "{key}: {}",
                    body.data.porn_info.score
                );
                ids.push(trace_id);
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    ids
}

/// A signed-in console client: (client, session cookie, CSRF token).
type Session = (reqwest::Client, String, String);

async fn sign_in(base: &str, user: &str, password: &str) -> Session {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let signed_in = http
        .post(format!("{base}/login"))
        .form(&[("user", user), ("password", password), ("next", "/")])
        .send()
        .await
        .expect("answers");
    assert_eq!(signed_in.status().as_u16(), 303, "{user} signs in");
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .expect("text")
        .split(';')
        .next()
        .expect("a cookie")
        .to_owned();
    let page = http
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("text");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token on the page")
        .to_owned();
    (http, cookie, csrf)
}

/// Decides through a console; true when this decision won (a redirect onwards), false when it
/// was refused as decided already (409).
async fn decide_in_console(
    (http, cookie, csrf): &Session,
    base: &str,
    id: &str,
    reason: &str,
) -> bool {
    let answer = http
        .post(format!("{base}/item/{id}/decide"))
        .header("cookie", cookie)
        .form(&[("verdict", "block"), ("reason", reason), ("csrf", csrf)])
        .send()
        .await
        .expect("answers");
    match answer.status().as_u16() {
        303 => true,
        409 => false,
        other => panic!(
            "console decision on {id}: {other} {}",
            answer.text().await.unwrap_or_default()
        ),
    }
}

/// `earshot review decide ID block` in a process of its own: (won, its stderr).
async fn decide_in_cli(
    config_path: &Path,
    id: &str,
    by: &str,
    crash_at: Option<&str>,
) -> (Option<i32>, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_earshot"));
    command
        .arg("--config")
        .arg(config_path)
        .args(["review", "decide", id, "block", "--reason", "known track"])
        .args(["--by", by])
        .env("EARSHOT_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    if let Some(point) = crash_at {
        command.env("EARSHOT_CRASH_AT", point);
    }
    let out = command.output().await.expect("earshot runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Per trace id: decision callbacks received (not the pending one).
fn decision_callbacks(received: &[Received]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for body in received.iter().map(Received::json) {
        let state = body["data"]["review"]["state"].as_str().unwrap_or("");
        if state == "block" || state == "pass" {
            let id = body["data"]["trace_id"]
                .as_str()
                .expect("trace id")
                .to_owned();
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

/// Per trace id: `review-*` audit entries.
async fn review_audits(s3: &aws_sdk_s3::Client, bucket: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for entry in blocks::audit_log(s3, bucket).await.expect("audit log") {
        if entry.action.starts_with("review-") {
            let id = entry.trace_id.expect("an item's trace id");
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

/// Library entries learned from `bucket`'s objects.
fn learned_entries(library: &Path, bucket: &str) -> usize {
    let mut found = 0;
    for entry in walkdir(library) {
        if entry.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&entry).unwrap_or_default();
            if text.contains(&format!("s3://{bucket}/")) {
                found += 1;
            }
        }
    }
    found
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// How many times a log says an upload was added to the library.
fn learned_in(log: &str) -> usize {
    log.matches("Blocked upload added to the reference library.")
        .count()
}

/// A bucket under human review with `block.learn`, a callback listener, and a suspicious upload
/// whose reference is in the library.
struct Setup {
    s3: aws_sdk_s3::Client,
    bucket: String,
    listener: Listener,
    dir: tempfile::TempDir,
    upload: std::path::PathBuf,
    library: std::path::PathBuf,
    config: earshot::config::Config,
}

impl Setup {
    async fn new() -> Setup {
        require_localstack();
        let s3 = s3(LOCALSTACK).await;
        let bucket = fresh_bucket(&s3).await;
        let listener = Listener::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (upload, library) = suspicious_in_library(dir.path()).await;
        let mut config = config(&bucket, &listener.url, "move", &library);
        human_review(&mut config, false, 3600);
        config.rules[0].block.learn = true;
        Setup {
            s3,
            bucket,
            listener,
            dir,
            upload,
            library,
            config,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_deciders_at_once_carry_each_decision_out_once() {
    let Setup {
        s3,
        bucket,
        listener,
        dir,
        upload,
        library,
        config,
    } = Setup::new().await;
    let hash = |p: &str| earshot::console::auth::hash_password(p).expect("hashes");
    let users = vec![
        ConsoleUserConfig {
            name: "ana".to_owned(),
            role: Role::Reviewer,
            password_hash: Some(hash("ana's long passphrase")),
        },
        ConsoleUserConfig {
            name: "bob".to_owned(),
            role: Role::Reviewer,
            password_hash: Some(hash("bob's long passphrase")),
        },
    ];
    let consoles: Vec<ConsoleConfig> = (0..2)
        .map(|_| ConsoleConfig {
            listen: format!("127.0.0.1:{}", free_port()),
            session_key: "a console session key of at least 32 characters".to_owned(),
            session_ttl_secs: 3600,
            secure_cookie: false,
            users: users.clone(),
            proxy: None,
        })
        .collect();
    let config_path = dir.path().join("earshot.toml");
    std::fs::write(&config_path, config_toml(&config)).expect("config written");
    let pipeline = Pipeline::new(config.clone()).await.expect("pipeline");
    let ids = open_items(&pipeline, &s3, &bucket, dir.path(), &upload, ITEMS).await;
    listener.wait_for(ITEMS, Duration::from_secs(60)).await;

    // Each console over a pipeline of its own, as two `earshot serve` would be.
    let mut served = Vec::new();
    for console in &consoles {
        let pipeline = Arc::new(Pipeline::new(config.clone()).await.expect("pipeline"));
        served.push(Served::start(pipeline, console).await);
    }
    let (ana_base, bob_base) = (served[0].base.clone(), served[1].base.clone());
    let ana = sign_in(&ana_base, "ana", "ana's long passphrase").await;
    let bob = sign_in(&bob_base, "bob", "bob's long passphrase").await;

    // Per item: three CLI processes and two consoles, all at once.
    let mut cli = Vec::new();
    let mut web = Vec::new();
    for id in &ids {
        for n in 0..3 {
            let (path, id) = (config_path.clone(), id.clone());
            cli.push(tokio::spawn(async move {
                let out = decide_in_cli(&path, &id, &format!("cli{n}"), None).await;
                (id, out)
            }));
        }
        for (who, base) in [(&ana, &ana_base), (&bob, &bob_base)] {
            let (who, base, id) = (who.clone(), base.clone(), id.clone());
            web.push(tokio::spawn(async move {
                let won = decide_in_console(&who, &base, &id, "known track").await;
                (id, won)
            }));
        }
    }
    let mut winners: BTreeMap<String, usize> = BTreeMap::new();
    let mut logs = String::new();
    for task in cli {
        let (id, (code, stderr)) = task.await.expect("joins");
        match code {
            Some(0) => *winners.entry(id).or_default() += 1,
            Some(1) => assert!(stderr.contains("decided already"), "{stderr}"),
            other => panic!("decide exited {other:?}: {stderr}"),
        }
        logs.push_str(&stderr);
    }
    for task in web {
        let (id, won) = task.await.expect("joins");
        if won {
            *winners.entry(id).or_default() += 1;
        }
    }
    for console in served {
        console.stop().await;
    }

    // Every decider has answered, so every decision is carried out: count what it did.
    for id in &ids {
        assert_eq!(winners.get(id), Some(&1), "{id}: one decider wins");
        let decision = review::decision(&s3, &bucket, id)
            .await
            .expect("reads")
            .expect("decided");
        assert!(decision.applied_at.is_some(), "{id}: {decision:?}");
        assert_eq!(decision.takeover, 0, "{id}: nobody took the claim over");
    }
    let received = listener.received();
    let callbacks = decision_callbacks(&received);
    let audits = review_audits(&s3, &bucket).await;
    for id in &ids {
        assert_eq!(callbacks.get(id), Some(&1), "{id}: callbacks {callbacks:?}");
        assert_eq!(audits.get(id), Some(&1), "{id}: audit entries {audits:?}");
    }
    assert_eq!(callbacks.len(), ITEMS);
    assert_eq!(learned_entries(&library, &bucket), ITEMS);
    // The consoles learn in this process: its log is not captured, so the CLI's additions are
    // counted against the CLI's wins.
    let cli_wins = received
        .iter()
        .map(Received::json)
        .filter(|b| {
            b["data"]["action"]["by"]
                .as_str()
                .is_some_and(|by| by.starts_with("cli"))
        })
        .count();
    assert_eq!(learned_in(&logs), cli_wins, "one addition per CLI win");
    assert!(review::queue(&s3, &bucket).await.expect("queue").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_winner_killed_before_carrying_out_is_finished_once_after_its_lease() {
    let Setup {
        s3,
        bucket,
        listener,
        dir,
        upload,
        library,
        mut config,
    } = Setup::new().await;
    config.rules[0].block.review_lease_secs = 3;
    let config_path = dir.path().join("earshot.toml");
    std::fs::write(&config_path, config_toml(&config)).expect("config written");
    let pipeline = Pipeline::new(config.clone()).await.expect("pipeline");
    let ids = open_items(&pipeline, &s3, &bucket, dir.path(), &upload, 1).await;
    let id = &ids[0];
    listener.wait_for(1, Duration::from_secs(60)).await;

    // Ana's decision is claimed, then her process dies before carrying it out.
    let (code, stderr) = decide_in_cli(&config_path, id, "ana", Some("review-claimed")).await;
    assert_ne!(code, Some(0), "the process was stopped: {stderr}");
    assert!(stderr.contains("EARSHOT_CRASH_AT"), "{stderr}");
    let claimed = review::current(&s3, &bucket, id)
        .await
        .expect("reads")
        .expect("claimed");
    assert_eq!((claimed.by.as_str(), claimed.applied_at), ("ana", None));
    assert_eq!(head_status(&s3, &bucket, "audio/item0.mp3").await, 200);

    // While her lease runs, a second decider is refused and carries nothing out.
    let (code, stderr) = decide_in_cli(&config_path, id, "bob", None).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("decided already: block by ana"), "{stderr}");
    assert_eq!(learned_in(&stderr), 0);
    assert_eq!(head_status(&s3, &bucket, "audio/item0.mp3").await, 200);
    assert!(decision_callbacks(&listener.received()).is_empty());

    // Once it has run out, five finishers meet: three deciders and two sweeps.
    let until = claimed.lease_until;
    eventually(Duration::from_secs(30), "the lease runs out", || async {
        (earshot::clock::system_secs() > until).then_some(())
    })
    .await;
    let mut cli = Vec::new();
    for n in 0..3 {
        let (path, id) = (config_path.clone(), id.clone());
        cli.push(tokio::spawn(async move {
            decide_in_cli(&path, &id, &format!("late{n}"), None).await
        }));
    }
    let sweeps: Vec<_> = (0..2)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move {
                let sweeper = Pipeline::new(config).await.expect("pipeline");
                sweeper.expire_reviews().await
            })
        })
        .collect();
    let mut logs = String::new();
    for task in cli {
        let (code, stderr) = task.await.expect("joins");
        assert_eq!(code, Some(1), "ana's decision stands: {stderr}");
        assert!(stderr.contains("decided already: block by ana"), "{stderr}");
        logs.push_str(&stderr);
    }
    let swept: usize = futures::future::join_all(sweeps)
        .await
        .into_iter()
        .map(|r| r.expect("joins"))
        .sum();

    let decision = review::current(&s3, &bucket, id)
        .await
        .expect("reads")
        .expect("decided");
    assert!(decision.applied_at.is_some(), "{decision:?}");
    assert_eq!((decision.by.as_str(), decision.takeover), ("ana", 1));
    let received = listener.received();
    assert_eq!(decision_callbacks(&received).get(id), Some(&1));
    assert_eq!(review_audits(&s3, &bucket).await.get(id), Some(&1));
    assert_eq!(learned_entries(&library, &bucket), 1);
    let by_cli = learned_in(&logs);
    assert_eq!(
        by_cli + swept,
        1,
        "finished once: {by_cli} by a decider, {swept} by a sweep"
    );
    assert_eq!(head_status(&s3, &bucket, "audio/item0.mp3").await, 404);
    let finished = received
        .iter()
        .map(Received::json)
        .find(|b| b["data"]["review"]["state"] == "block")
        .expect("the decision's callback");
    assert_eq!(finished["data"]["action"]["by"], "ana");
}
