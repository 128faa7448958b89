//! The reviewer sees what was heard: a spoken ad held for review shows, on its console page, the
//! transcript around the heard term with the words marked, the term and its dictionary, and a
//! sentence that says a dictionary's example in other words beside that example and their
//! similarity; a click on the line plays the upload from there; the history and its CSV carry the
//! term.

use std::sync::Arc;

use serde_json::json;

use crate::common::browser::{Driver, Served};
use crate::common::*;
use crate::meaning::meaning_model;
use crate::speech::{Part, add_terms, say, speech_engine, upload_of};
use earshot::config::{ConsoleConfig, ConsoleUserConfig, Role};
use earshot::job::Job;
use earshot::pipeline::{Outcome, Pipeline};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_item_page_shows_the_heard_term_in_its_transcript_and_seeks_there() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let listener = Listener::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(&bucket, &listener.url, "move", &dir.path().join("library"));
    config.engines.insert(
        "speech".to_owned(),
        speech_engine(&dir.path().join("dictionaries")),
    );
    if let Some(earshot::config::EngineConfig::Speech(speech)) = config.engines.get_mut("speech") {
        let ((model, model_sha256), (tokenizer, tokenizer_sha256)) = meaning_model();
        speech.meaning = Some(earshot::config::MeaningConfig {
            enabled: true,
            model: model.display().to_string(),
            model_sha256,
            tokenizer: tokenizer.display().to_string(),
            tokenizer_sha256,
            threshold: 0.5,
        });
    }
    config.rules[0].engine = earshot::config::EngineNames::Many(vec!["speech".into()]);
    human_review(&mut config, false, 3600);
    let path = dir.path().join("earshot.toml");
    std::fs::write(&path, config_toml(&config)).expect("write");
    add_terms(
        &path,
        &["held_ads", "--scene", "ads", "--score", "75", "casino"],
    );
    let example = "send your bank details to claim your prize";
    add_terms(&path, &["held_ads", "--examples", "--score", "70", example]);
    let spoken = say(
        dir.path(),
        "pitch",
        "espeak",
        "Good evening everyone. Visit the new casino downtown tonight. Doors open at eight. \
         To receive the prize money, just tell us your card details.",
    );
    let (upload, starts) = upload_of(
        dir.path(),
        "upload",
        &[Part::Silence(4.0), Part::File(&spoken, 0.0, None)],
    );
    put_file(&s3, &bucket, "audio/pitch.mp3", &upload, "audio/mpeg").await;
    let hash = earshot::console::auth::hash_password("ana's long passphrase").expect("hashes");
    let port = free_port();
    let console = ConsoleConfig {
        listen: format!("127.0.0.1:{port}"),
        session_key: "a console session key of at least 32 characters".to_owned(),
        session_ttl_secs: 3600,
        secure_cookie: false,
        users: vec![ConsoleUserConfig {
            name: "ana".to_owned(),
            role: Role::Reviewer,
            password_hash: Some(hash),
        }],
        proxy: None,
    };
    config.console = Some(console.clone());
    let pipeline = Arc::new(Pipeline::new(config).await.expect("pipeline"));
    let id = match pipeline
        .process(&Job::new(bucket.clone(), "audio/pitch.mp3"))
        .await
        .expect("runs")
    {
        Outcome::Finished { body, trace_id, .. } => {
            let review = body.data.review.expect("held for review");
            assert_eq!(
                review.state, "pending",
                "score {}",
                body.data.ads_info.score
            );
            trace_id
        }
        other => panic!("{other:?}"),
    };
    let served = Served::start(pipeline.clone(), &console).await;
    let base = served.base.clone();

    let driver = Driver::start().await;
    let ana = driver.browser().await;
    ana.goto(&format!("{base}/login")).await;
    ana.type_into("#user", "ana").await;
    ana.type_into("#password", "ana's long passphrase").await;
    ana.click("#login").await;
    ana.goto(&format!("{base}/item/{id}")).await;
    // The paraphrase of the example: the sentence, the example, their similarity.
    let heard = ana.text("#transcript").await;
    assert!(heard.contains("means"), "the paraphrase's line: {heard}");
    let meant = ana.text("#transcript li.judged").await;
    assert!(meant.to_lowercase().contains("prize money"), "{meant}");
    assert_eq!(ana.text("#transcript .example").await, example);
    assert!(meant.contains("similarity 0."), "{meant}");
    let line = ana.text("#transcript li.heard").await;
    assert!(line.contains("casino"), "{line}");
    assert!(
        line.to_lowercase().contains("downtown"),
        "the words around the term: {line}"
    );
    assert_eq!(ana.text("#transcript mark").await.to_lowercase(), "casino");
    assert_eq!(ana.text("#transcript .term").await, "casino");
    assert_eq!(ana.text("#transcript .dictionary").await, "held_ads");
    let engines = ana.text("#engines").await;
    assert!(
        engines.contains("casino"),
        "the engine's keywords: {engines}"
    );
    // The heard term is placed inside the spoken part, and a click plays from there.
    let offset: f64 = ana
        .exec(
            "return parseFloat(document.querySelector('#transcript li.heard').dataset.offset);",
            json!([]),
        )
        .await
        .as_f64()
        .expect("an offset");
    assert!(offset > starts[1], "{offset} after the silence");
    ana.click("#transcript li.heard").await;
    ana.wait_until(
        "the player seeks to the line",
        &format!(
            "return Math.abs(document.getElementById('upload').currentTime - {offset}) < 1.0;"
        ),
    )
    .await;

    // The history and its CSV carry the term.
    ana.goto(&format!("{base}/history")).await;
    assert_eq!(ana.text("table.day .term").await, "casino");
    let csv = ana.fetch_text("/history.csv").await;
    let header: Vec<&str> = csv.lines().next().expect("a header").split(',').collect();
    let row: Vec<&str> = csv.lines().nth(1).expect("a row").split(',').collect();
    let terms = header
        .iter()
        .position(|h| *h == "terms")
        .expect("a terms column");
    assert_eq!(row[terms], "\"casino\"", "{csv}");

    ana.quit().await;
    served.stop().await;
}
