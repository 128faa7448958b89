//! Shumei end to end, and several engines on one rule.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shumei_blocks_end_to_end_and_checks_required_fields() {
    let setup = setup().await;
    let fake = FakeShumei::start().await;
    let listener = Listener::start().await;
    let files = clips(setup.dir.path(), 2);
    fake.find(&file_sha256(&files[0]), "banedaudio");
    let shumei = engine_section(&format!(
        r#"
        type = "shumei"
        access_key = "{SHUMEI_ACCESS_KEY}"
        app_id = "default"
        event_id = "audio"
        endpoint = "{}"
        callback_base_url = "{}"
        "#,
        fake.url,
        setup.base()
    ));
    let config = setup.with(setup.config(&listener.url, &["shumei"]), "shumei", shumei);
    let daemon = setup.start(&config).await;
    setup.upload("audio/song.mp3", &files[0]).await;
    setup.upload("audio/talk.mp3", &files[1]).await;
    let callbacks = by_key(&listener.wait_for(2, WAIT).await);
    let song = &callbacks["audio/song.mp3"];
    assert_eq!(song["code"], 0, "{song}");
    assert_eq!(song["data"]["illegal_info"]["score"], 99);
    assert_eq!(song["data"]["illegal_info"]["engine"], "shumei");
    assert!(
        song["data"]["illegal_info"]["label"]
            .as_str()
            .unwrap()
            .starts_with("banedaudio")
    );
    assert_eq!(
        head_status(&setup.s3, &setup.bucket, "audio/song.mp3").await,
        404
    );
    assert_eq!(callbacks["audio/talk.mp3"]["data"]["result"], 0);

    // earshot's requests carried every field Shumei requires; one without data.btId is refused.
    let requests = fake.requests();
    assert!(
        requests.iter().all(|(_, code)| *code == 1100),
        "{requests:?}"
    );
    let (sent, _) = &requests[0];
    assert_eq!(sent["type"], "EROTIC_ADVERT_POLITY_DIRTY");
    assert_eq!(sent["data"]["returnFinishInfo"], 1);
    assert_eq!(sent["data"]["lang"], "zh");
    let mut missing = sent.clone();
    missing["data"].as_object_mut().unwrap().remove("btId");
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/audio/v4", fake.url))
        .json(&missing)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["code"], 1902);
    assert!(answer["message"].as_str().unwrap().contains("data.btId"));

    // Shumei does not sign results: the token is what proves one. A result for another job under
    // this token, or under a made-up token, is refused.
    let callback = sent["callback"].as_str().unwrap().to_owned();
    let other = json!({"code": 1100, "btId": "ffffffffffffffffffffffffffffffff", "riskLevel": "REJECT",
                       "audioDetail": []});
    let client = reqwest::Client::new();
    let status = client
        .post(&callback)
        .json(&other)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let made_up = format!("{}/engines/shumei/results/abc.def", setup.base());
    let status = client
        .post(made_up)
        .json(&other)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_engines_per_rule_the_highest_score_wins_and_a_down_engine_follows_the_policy() {
    let setup = setup().await;
    let classifier = Classifier::start().await;
    let listener = Listener::start().await;
    let (known_bad, _) = known_bad_in_library(setup.dir.path()).await;
    let files = clips(setup.dir.path(), 1);
    classifier.find(&file_sha256(&files[0]), "ads", 95);
    let classifier_engine = engine_section(&format!(
        r#"
        type = "http"
        url = "{}"
        bearer_token = "classifier-token"
        timeout_secs = 10
        "#,
        classifier.url
    ));
    let both = setup.config(&listener.url, &["local", "classifier"]);
    let config = setup.with(both.clone(), "classifier", classifier_engine);
    let daemon = setup.start(&config).await;
    setup.upload("audio/known-bad.mp3", &known_bad).await;
    setup.upload("audio/pitch.mp3", &files[0]).await;
    let callbacks = by_key(&listener.wait_for(2, WAIT).await);
    let bad = &callbacks["audio/known-bad.mp3"];
    assert_eq!(bad["data"]["porn_info"]["engine"], "local", "{bad}");
    assert!(bad["data"]["porn_info"]["score"].as_u64().unwrap() > 90);
    assert_eq!(bad["data"]["forbidden_status"], 2);
    let pitch = &callbacks["audio/pitch.mp3"];
    assert_eq!(pitch["data"]["ads_info"]["engine"], "classifier", "{pitch}");
    assert_eq!(pitch["data"]["ads_info"]["score"], 95);
    assert_eq!(pitch["data"]["forbidden_status"], 2);
    // Both sides kept to openapi/http-engine.yaml: earshot's requests, the classifier's answers.
    let requests = classifier.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for request in &requests {
        assert_http_contract("Request", request);
    }
    for answer in classifier.answers() {
        assert_http_contract("Answer", &answer);
    }
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");

    // The classifier is down; the rule says "review": judged on the local engine, not blocked,
    // called back as suspicious with the failure named.
    let down = engine_section(
        "type = \"http\"\nurl = \"http://127.0.0.1:9/classify\"\ntimeout_secs = 2\n",
    );
    let mut review = both.clone();
    review.rules[0].on_engine_error = OnEngineError::Review;
    let config = setup.with(review, "classifier", down.clone());
    let daemon = setup.start(&config).await;
    let other = clips(&setup.dir.path().join("more"), 1);
    setup.upload("audio/unreviewed.mp3", &other[0]).await;
    let callbacks = listener.wait_for(3, WAIT).await;
    let body = by_key(&callbacks)["audio/unreviewed.mp3"].clone();
    assert_eq!(body["code"], 0, "{body}");
    assert_eq!(body["data"]["result"], 2);
    assert_eq!(body["data"]["forbidden_status"], 0);
    assert_eq!(body["data"]["engine_errors"][0]["engine"], "classifier");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("held for review"),
        "{body}"
    );
    assert_eq!(
        head_status(&setup.s3, &setup.bucket, "audio/unreviewed.mp3").await,
        200
    );
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");

    // Still down; the rule says "pass": the local engine's verdict stands on its own and blocks.
    let mut pass = both;
    pass.rules[0].on_engine_error = OnEngineError::Pass;
    let config = setup.with(pass, "classifier", down);
    let daemon = setup.start(&config).await;
    setup.upload("audio/known-bad-again.mp3", &known_bad).await;
    let callbacks = listener.wait_for(4, WAIT).await;
    let body = by_key(&callbacks)["audio/known-bad-again.mp3"].clone();
    assert_eq!(body["code"], 0, "{body}");
    assert_eq!(body["data"]["forbidden_status"], 2, "{body}");
    assert_eq!(body["data"]["porn_info"]["engine"], "local");
    assert_eq!(body["data"]["engine_errors"][0]["engine"], "classifier");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("judged without it"),
        "{body}"
    );
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}
