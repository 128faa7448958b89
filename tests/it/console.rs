//! The review console in a real browser (Debian's headless Chromium over WebDriver) against
//! LocalStack: login (a wrong password refused, every page redirecting to it without a
//! session), a keyboard decision that blocks the object and sends the second callback, the
//! upload's player at the matched segment, two reviewers on one item, a state change without
//! the CSRF token refused, a batch decision, a restore (refused to a reviewer, done by an
//! admin), and the CSV export. Screenshots of the queue and an
//! item page go to `target/console-screenshots/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::common::browser::{Browser, Driver, Served};
use crate::common::*;
use earshot::config::{ConsoleConfig, ConsoleUserConfig, Role};
use earshot::job::Job;
use earshot::pipeline::{Outcome, Pipeline};

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots")
}

async fn log_in(browser: &Browser, base: &str, user: &str, password: &str) {
    browser.goto(&format!("{base}/login")).await;
    browser.type_into("#user", user).await;
    browser.type_into("#password", password).await;
    browser.click("#login").await;
}

async fn decide_on_page(browser: &Browser, reason: &str, button: &str) {
    browser.type_into("#reason", reason).await;
    browser.click(button).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_decide_in_the_browser() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (upload, library) = suspicious_in_library(dir.path()).await;
    let mut config = config(&bucket, &listener.url, "move", &library);
    human_review(&mut config, false, 3600);
    let hash = |p: &str| earshot::console::auth::hash_password(p).expect("hashes");
    let port = free_port();
    let console = ConsoleConfig {
        listen: format!("127.0.0.1:{port}"),
        session_key: "a console session key of at least 32 characters".to_owned(),
        session_ttl_secs: 3600,
        secure_cookie: false,
        users: vec![
            ConsoleUserConfig {
                name: "ana".to_owned(),
                role: Role::Reviewer,
                password_hash: Some(hash("ana's long passphrase")),
            },
            ConsoleUserConfig {
                name: "bob".to_owned(),
                role: Role::Admin,
                password_hash: Some(hash("bob's long passphrase")),
            },
        ],
        proxy: None,
    };
    config.console = Some(console.clone());
    let keys = ["audio/a.mp3", "audio/b.mp3", "audio/c.mp3", "audio/d.mp3"];
    let pipeline = Arc::new(Pipeline::new(config).await.expect("pipeline"));
    let mut ids = Vec::new();
    for key in keys {
        put_file(&s3, &bucket, key, &upload, "audio/mpeg").await;
        match pipeline
            .process(&Job::new(bucket.clone(), key))
            .await
            .expect("runs")
        {
            Outcome::Finished { body, trace_id, .. } => {
                assert_eq!(body.data.review.expect("review").state, "pending");
                ids.push(trace_id);
            }
            other => panic!("{other:?}"),
        }
    }
    listener.wait_for(4, Duration::from_secs(30)).await;
    let served = Served::start(pipeline.clone(), &console).await;
    let base = served.base.clone();

    let driver = Driver::start().await;
    let ana = driver.browser().await;
    // Without a session every page leads to the login.
    for page in ["/", "/history", "/blocked", &format!("/item/{}", ids[0])] {
        ana.goto(&format!("{base}{page}")).await;
        assert!(
            ana.url().await.contains("/login"),
            "{page} → {}",
            ana.url().await
        );
    }
    let anonymous = reqwest::get(format!("{base}/history.csv"))
        .await
        .expect("answers");
    assert!(!String::from_utf8_lossy(&anonymous.bytes().await.expect("body")).contains("audio/"));
    log_in(&ana, &base, "ana", "wrong password").await;
    ana.wait_until(
        "the login refused",
        "return document.querySelector('#error') !== null",
    )
    .await;
    assert!(
        ana.text("#error")
            .await
            .contains("Wrong user name or password")
    );
    log_in(&ana, &base, "ana", "ana's long passphrase").await;
    ana.wait_until(
        "the queue",
        "return document.querySelector('#queue') !== null",
    )
    .await;
    assert_eq!(ana.count("#queue tbody tr").await, 4);
    ana.screenshot(&screenshots().join("queue.png")).await;

    // The item page: the upload's player waits at the matched segment (about 3 s in), not
    // playing; the reference's player at its own offset (about 5 s in).
    ana.goto(&format!("{base}/item/{}", ids[0])).await;
    ana.wait_until(
        "the players to load",
        "return document.getElementById('upload').readyState >= 1 && document.getElementById('reference').readyState >= 1",
    )
    .await;
    ana.wait_until(
        "the seek",
        "return document.getElementById('upload').currentTime > 1",
    )
    .await;
    let players = ana
        .exec(
            "const u = document.getElementById('upload'), r = document.getElementById('reference');
             return [u.currentTime, u.paused, r.currentTime, r.paused, document.querySelectorAll('#timeline div').length];",
            json!([]),
        )
        .await;
    let upload_at = players[0].as_f64().expect("time");
    let reference_at = players[2].as_f64().expect("time");
    assert!(
        (upload_at - 3.0).abs() < 0.6,
        "upload starts at {upload_at}"
    );
    assert!(
        (reference_at - 5.0).abs() < 0.6,
        "reference starts at {reference_at}"
    );
    assert_eq!(
        (players[1].as_bool(), players[3].as_bool()),
        (Some(true), Some(true)),
        "no autoplay"
    );
    assert!(players[4].as_u64() >= Some(1), "segments on the timeline");
    // The waveform earshot drew from the decoded upload, the matched segment marked where it
    // was heard (about 3 s into 4.8 s).
    ana.wait_until(
        "the waveform",
        "const w = document.getElementById('waveform'); return w.complete && w.naturalWidth > 0",
    )
    .await;
    let picture = ana.fetch_text(&format!("/waveform/{}", ids[0])).await;
    assert!(picture.starts_with("<svg"), "{picture}");
    let duration: f64 = picture
        .split("data-duration=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next()?.parse().ok())
        .expect("the duration drawn");
    assert!((duration - 4.76).abs() < 0.2, "{duration}");
    let offsets: Vec<f64> = picture
        .split("class=\"segment\"")
        .skip(1)
        .filter_map(|rest| {
            rest.split("data-offset=\"")
                .nth(1)?
                .split('"')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        offsets.iter().any(|at| (at - 3.0).abs() < 0.6),
        "segments at {offsets:?}"
    );
    ana.screenshot(&screenshots().join("item.png")).await;

    // Decide with the keyboard: a reason, leave the field, press b.
    ana.type_into("#reason", "matches a known track").await;
    ana.keys("\u{E00C}").await; // Escape: out of the field
    ana.keys("b").await;
    ana.wait_until(
        "the next item",
        &format!("return !location.pathname.endsWith('{}')", ids[0]),
    )
    .await;
    let second = listener.wait_for(5, Duration::from_secs(30)).await;
    let decided = second[4].json();
    assert_eq!(decided["data"]["trace_id"], ids[0].as_str());
    assert_eq!(decided["data"]["review"]["state"], "block");
    assert_eq!(decided["data"]["action"]["by"], "ana");
    assert_eq!(
        head_status(&s3, &bucket, keys[0]).await,
        404,
        "blocked (moved)"
    );

    // Two reviewers on one item: bob passes first; ana's block is refused with his decision.
    let bob = driver.browser().await;
    log_in(&bob, &base, "bob", "bob's long passphrase").await;
    bob.wait_until(
        "the queue",
        "return document.querySelector('#queue') !== null",
    )
    .await;
    ana.goto(&format!("{base}/item/{}", ids[1])).await;
    bob.goto(&format!("{base}/item/{}", ids[1])).await;
    decide_on_page(&bob, "original recording, fine", "#pass").await;
    listener.wait_for(6, Duration::from_secs(30)).await;
    decide_on_page(&ana, "sounds like the known track", "#block").await;
    ana.wait_until(
        "the conflict",
        "return document.querySelector('#message') !== null",
    )
    .await;
    let conflict = ana.text("#message").await;
    assert!(
        conflict.contains("decided already: pass by bob"),
        "{conflict}"
    );
    assert_eq!(
        head_status(&s3, &bucket, keys[1]).await,
        200,
        "bob's pass stands"
    );

    // A state change without the CSRF token is refused, and changes nothing.
    ana.goto(&format!("{base}/item/{}", ids[2])).await;
    ana.exec(
        "document.querySelector('#decide input[name=csrf]').remove(); return null;",
        json!([]),
    )
    .await;
    decide_on_page(&ana, "no token", "#block").await;
    ana.wait_until(
        "the refusal",
        "return document.querySelector('#message') !== null",
    )
    .await;
    assert!(
        ana.text("#message")
            .await
            .contains("CSRF token is missing or wrong")
    );
    assert_eq!(head_status(&s3, &bucket, keys[2]).await, 200);
    let status = ana
        .exec_async(
            "const done = arguments[arguments.length - 1];
             fetch('/decide', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                               body: 'verdict=block&reason=x&id=' + arguments[0]}).then(r => done(r.status));",
            json!([ids[2]]),
        )
        .await;
    assert_eq!(status, 403, "the session cookie alone is not enough");

    // A batch decision: the count is shown, a reason is required.
    ana.goto(&format!("{base}/")).await;
    ana.wait_until(
        "the queue",
        "return document.querySelectorAll('#queue tbody tr').length === 2",
    )
    .await;
    ana.click(&format!("input[value='{}']", ids[2])).await;
    ana.click(&format!("input[value='{}']", ids[3])).await;
    assert_eq!(ana.text("#batch-block .count").await, "2");
    ana.click("#batch-block").await; // no reason yet: the browser keeps the form
    assert!(ana.url().await.ends_with('/'), "{}", ana.url().await);
    ana.type_into("#reason", "same known track, reposted").await;
    ana.click("#batch-block").await;
    ana.wait_until(
        "the batch result",
        "return document.querySelector('#message') !== null",
    )
    .await;
    assert_eq!(ana.text("#message").await, "Blocked 2 of 2 selected items.");
    listener.wait_for(8, Duration::from_secs(30)).await;
    assert_eq!(head_status(&s3, &bucket, keys[2]).await, 404);
    assert_eq!(head_status(&s3, &bucket, keys[3]).await, 404);

    // Restore from the Blocked page: a reviewer may not, an admin may (with a reason).
    let restore = "const row = [...document.querySelectorAll('#blocked tr')]
                       .find(r => r.textContent.includes(arguments[0]));
                   row.querySelector('input[name=reason]').value = arguments[1];
                   row.querySelector('button').click(); return null;";
    ana.goto(&format!("{base}/blocked")).await;
    assert_eq!(ana.count("#blocked form").await, 3);
    ana.exec(restore, json!([keys[0], "licensed after all"]))
        .await;
    ana.wait_until(
        "the refusal",
        "return document.querySelector('#message') !== null",
    )
    .await;
    assert_eq!(ana.text("#message").await, "Only an admin may restore.");
    assert_eq!(head_status(&s3, &bucket, keys[0]).await, 404);
    bob.goto(&format!("{base}/blocked")).await;
    bob.exec(restore, json!([keys[0], "licensed after all"]))
        .await;
    bob.wait_until(
        "the restore",
        "return document.querySelector('#message') !== null",
    )
    .await;
    assert_eq!(bob.text("#message").await, format!("Restored {}.", keys[0]));
    assert_eq!(head_status(&s3, &bucket, keys[0]).await, 200);
    let restored = listener.wait_for(9, Duration::from_secs(30)).await[8].json();
    assert_eq!(restored["data"]["source"], "restore");
    assert_eq!(restored["data"]["action"]["by"], "bob");

    // The CSV export of the history, as the browser downloads it.
    let csv = ana.fetch_text("/history.csv").await;
    let mut lines = csv.lines();
    let header = lines.next().expect("header");
    assert!(header.starts_with("time,bucket,key,rule,source,code,result"));
    let review = header
        .split(',')
        .position(|h| h == "review")
        .expect("a review column");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 4, "{csv}");
    let review_of = |key: &str| {
        rows.iter()
            .find(|r| r.contains(&format!("\"{key}\"")))
            .and_then(|r| r.split(',').nth(review))
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(review_of(keys[0]), "\"block\"");
    assert_eq!(review_of(keys[1]), "\"pass\"");
    assert_eq!(review_of(keys[3]), "\"block\"");
    let filtered = ana.fetch_text("/history.csv?name=b.mp3").await;
    assert_eq!(filtered.lines().count(), 2, "header and one row");

    ana.quit().await;
    bob.quit().await;
    served.stop().await;
}
