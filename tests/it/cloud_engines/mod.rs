//! The cloud engines end to end: `earshot serve` (MinIO-shaped webhook events, LocalStack S3)
//! driving local servers that implement Tencent AMS's and Shumei's contracts
//! (`tests/it/common/providers/`) and a user's own classifier: blocks via each engine, forged and
//! tampered provider results refused, a restart between task creation and result, throttling
//! obeyed, the no-callback path polled, an overdue result called back with code 1202, and rules
//! with several engines and an engine that is down.

mod others;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::providers::*;
use crate::common::*;
use earshot::config::{AmsEngineConfig, Config, EngineConfig, EngineNames, OnEngineError};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);
const TOKEN: &str = "minio-webhook-token-0123456789";
const TOKEN_KEY: &str = "job-token-key-0123456789abcdef0123456789";
const AMS_SEED: &str = "ams-callback-seed-0123";

struct Setup {
    s3: aws_sdk_s3::Client,
    bucket: String,
    dir: tempfile::TempDir,
    port: u16,
}

async fn setup() -> Setup {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("library")).expect("library dir");
    std::fs::create_dir_all(dir.path().join("more")).expect("more dir");
    Setup {
        s3,
        bucket,
        dir,
        port: free_port(),
    }
}

impl Setup {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A config with one rule judged by `engines` (in order), the local engine, the webhook and
    /// async jobs; a test adds its provider sections with [`Setup::with`].
    fn config(&self, callback_url: &str, engines: &[&str]) -> Config {
        let text = format!(
            r#"
            [s3]
            endpoint_url = "{LOCALSTACK}"
            region = "us-east-1"
            force_path_style = true
            access_key_id = "test"
            secret_access_key = "test"

            [[rules]]
            id = "voice"
            bucket = "{bucket}"
            prefix = "audio/"
            scenes = ["porn", "ads", "illegal", "abuse"]
            block = {{ enabled = true, mode = "move", min_score = 90 }}
            callback = {{ url = "{callback_url}", seed = "s3cret", max_attempts = 3, initial_backoff_ms = 50 }}

            [engines.local]
            type = "local"
            library = "{library}"

            [async_jobs]
            token_key = "{TOKEN_KEY}"
            sweep_secs = 1

            [sources.webhook]
            listen = "127.0.0.1:{port}"
            [sources.webhook.minio]
            auth_token = "{TOKEN}"
            "#,
            bucket = self.bucket,
            library = self.dir.path().join("library").display(),
            port = self.port,
        );
        let mut config = Config::from_toml_str(&text).expect("the base config is valid");
        config.rules[0].engine =
            EngineNames::Many(engines.iter().map(|name| (*name).to_owned()).collect());
        config
    }

    /// `config` with the engine `name` added (it must validate as a whole).
    fn with(&self, mut config: Config, name: &str, engine: EngineConfig) -> Config {
        config.engines.insert(name.to_owned(), engine);
        Config::from_toml_str(&config_toml(&config)).expect("the test config is valid")
    }

    /// The `ams` engine on the fake AMS, as `tune` leaves it.
    fn ams(&self, fake: &FakeAms, tune: impl FnOnce(&mut AmsEngineConfig)) -> EngineConfig {
        let mut engine = engine_section(&format!(
            r#"
            type = "tencent_ams"
            secret_id = "{AMS_SECRET_ID}"
            secret_key = "{AMS_SECRET_KEY}"
            endpoint = "{}"
            biz_type = "earshot_test"
            seed = "{AMS_SEED}"
            callback_base_url = "{}"
            "#,
            fake.url,
            self.base()
        ));
        let EngineConfig::TencentAms(ams) = &mut engine else {
            unreachable!("the section above is tencent_ams");
        };
        tune(ams);
        engine
    }

    async fn start(&self, config: &Config) -> Daemon {
        self.start_logging(config, "info").await
    }

    async fn start_logging(&self, config: &Config, filter: &str) -> Daemon {
        let mut daemon = Daemon::spawn_logging(self.dir.path(), &config_toml(config), filter);
        daemon
            .wait_until_listening(&format!("{}/healthz", self.base()))
            .await;
        daemon
    }

    /// Uploads and notifies earshot the way MinIO does.
    async fn upload(&self, key: &str, file: &Path) {
        put_file(&self.s3, &self.bucket, key, file, "audio/mpeg").await;
        let event = s3_event(&self.bucket, key);
        let answer = reqwest::Client::new()
            .post(format!("{}/minio", self.base()))
            .bearer_auth(TOKEN)
            .json(&event)
            .send()
            .await
            .expect("webhook answers");
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    }
}

/// Distinct short recordings (each its own SHA-256).
fn clips(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            tone(
                &dir.join(format!("clip-{i}.mp3")),
                2.0,
                300 + 20 * i as u32,
                &["-b:a", "64k"],
            )
        })
        .collect()
}

fn by_key(callbacks: &[Received]) -> std::collections::HashMap<String, Value> {
    callbacks
        .iter()
        .map(|r| {
            let body = r.json();
            (body["data"]["key"].as_str().unwrap().to_owned(), body)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ams_blocks_end_to_end_and_forged_results_are_refused() {
    let setup = setup().await;
    let fake = FakeAms::start().await;
    let listener = Listener::start().await;
    let files = clips(setup.dir.path(), 2);
    fake.find(&file_sha256(&files[0]), "Porn", 97);
    let config = setup.with(
        setup.config(&listener.url, &["ams"]),
        "ams",
        setup.ams(&fake, |_| {}),
    );
    // earshot's own debug logging on: no secret may show even there.
    let daemon = setup.start_logging(&config, "info,earshot=debug").await;

    setup.upload("audio/bad.mp3", &files[0]).await;
    setup.upload("audio/clean.mp3", &files[1]).await;
    let callbacks = by_key(&listener.wait_for(2, WAIT).await);
    let bad = &callbacks["audio/bad.mp3"];
    assert_eq!(bad["code"], 0, "{bad}");
    assert_eq!(bad["data"]["forbidden_status"], 2, "{bad}");
    assert_eq!(bad["data"]["porn_info"]["score"], 97);
    assert_eq!(bad["data"]["porn_info"]["hit_flag"], 1);
    assert_eq!(bad["data"]["porn_info"]["engine"], "ams");
    assert_eq!(
        head_status(&setup.s3, &setup.bucket, "audio/bad.mp3").await,
        404
    );
    let clean = &callbacks["audio/clean.mp3"];
    assert_eq!(
        (clean["code"].clone(), clean["data"]["result"].clone()),
        (json!(0), json!(0)),
        "{clean}"
    );
    assert_eq!(
        head_status(&setup.s3, &setup.bucket, "audio/clean.mp3").await,
        200
    );

    // What AMS received: signed requests only, Tasks with the presigned URL it could download,
    // Seed and a callback URL on earshot.
    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.error.is_none()), "{requests:?}");
    let tasks = fake.tasks();
    assert_eq!(tasks.len(), 2);
    assert!(tasks.iter().all(|t| t.seed.as_deref() == Some(AMS_SEED)));
    let result_url = tasks[0].callback_url.clone().expect("CallbackUrl");
    assert!(
        result_url.starts_with(&format!("{}/engines/ams/results/", setup.base())),
        "{result_url}"
    );

    // A request signed with another key is refused by the fake, as AMS would.
    let payload = br#"{"TaskId":"x"}"#;
    let timestamp = earshot::clock::system_secs() as i64;
    let host = fake.url.trim_start_matches("http://").to_owned();
    let request = earshot::engines::tc3::Request {
        service: "ams",
        host: &host,
        content_type: earshot::engines::tc3::CONTENT_TYPE,
        payload,
        timestamp,
    };
    let forged = reqwest::Client::new()
        .post(&fake.url)
        .header(
            "Authorization",
            earshot::engines::tc3::authorization(AMS_SECRET_ID, "wrong-key", &request),
        )
        .header("Content-Type", earshot::engines::tc3::CONTENT_TYPE)
        .header("X-TC-Action", "DescribeTaskDetail")
        .header("X-TC-Version", "2020-12-29")
        .header("X-TC-Timestamp", timestamp.to_string())
        .body(payload.to_vec())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        forged["Response"]["Error"]["Code"],
        "AuthFailure.SignatureFailure"
    );

    // Results POSTed to earshot that AMS did not send, or that were altered, are refused.
    let genuine = serde_json::to_vec(&tasks[0].detail).unwrap();
    let sign = |body: &[u8], seed: &str| earshot::signing::x_signature(seed, body);
    let post = |url: String, body: Vec<u8>, signature: Option<String>| async move {
        let mut request = reqwest::Client::new().post(url).body(body);
        if let Some(signature) = signature {
            request = request.header("X-Signature", signature);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        (status, answer.text().await.unwrap())
    };
    let mut tampered: Value = tasks[0].detail.clone();
    tampered["Labels"] = json!([{"Label": "Porn", "Suggestion": "Block", "Score": 100}]);
    let tampered = serde_json::to_vec(&tampered).unwrap();
    assert_eq!(
        post(
            result_url.clone(),
            tampered.clone(),
            Some(sign(&genuine, AMS_SEED))
        )
        .await
        .0,
        401,
        "body changed, signature kept"
    );
    assert_eq!(
        post(
            result_url.clone(),
            tampered.clone(),
            Some(sign(&tampered, "guessed-seed"))
        )
        .await
        .0,
        401,
        "signed with another seed"
    );
    assert_eq!(
        post(result_url.clone(), genuine.clone(), None).await.0,
        401,
        "no signature"
    );
    let (token_body, token_tag) = result_url
        .rsplit_once('/')
        .unwrap()
        .1
        .split_once('.')
        .unwrap();
    let forged_token = format!("{}x.{token_tag}", &token_body[..token_body.len() - 1]);
    let forged_url = format!("{}/engines/ams/results/{forged_token}", setup.base());
    assert_eq!(
        post(forged_url, genuine.clone(), Some(sign(&genuine, AMS_SEED)))
            .await
            .0,
        401,
        "token altered"
    );
    let mut foreign = tasks[0].detail.clone();
    foreign["DataId"] = json!("0123456789abcdef0123456789abcdef");
    let foreign = serde_json::to_vec(&foreign).unwrap();
    assert_eq!(
        post(
            result_url.clone(),
            foreign.clone(),
            Some(sign(&foreign, AMS_SEED))
        )
        .await
        .0,
        401,
        "a job the token does not name"
    );
    // The genuine result again (a provider retry) is harmless: once both jobs are finished and
    // cleared, it is answered as taken and ignored, and nothing is called back twice.
    eventually(WAIT, "no job left waiting", || async {
        let waiting = earshot::state::pending::waiting_in(&setup.s3, &setup.bucket)
            .await
            .unwrap();
        waiting.is_empty().then_some(())
    })
    .await;
    let (status, answer) = post(result_url, genuine.clone(), Some(sign(&genuine, AMS_SEED))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer.trim(), "ignored: no job waits for this result");
    assert_eq!(listener.received().len(), 2);
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    assert!(log.contains("Provider result refused"), "{log}");
    assert!(
        log.contains("CreateAudioModerationTask."),
        "debug logging was on: {log}"
    );
    for secret in [AMS_SECRET_ID, AMS_SECRET_KEY, AMS_SEED, TOKEN_KEY, "s3cret"] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_between_task_and_result_still_finishes_the_job() {
    let setup = setup().await;
    let fake = FakeAms::start().await;
    fake.set_delivery(Delivery::Hold);
    let listener = Listener::start().await;
    let files = clips(setup.dir.path(), 1);
    fake.find(&file_sha256(&files[0]), "Ad", 95);
    let config = setup.with(
        setup.config(&listener.url, &["ams"]),
        "ams",
        setup.ams(&fake, |_| {}),
    );
    let first = setup.start(&config).await;
    setup.upload("audio/pitch.mp3", &files[0]).await;
    fake.wait_for_tasks(1, WAIT).await;
    // The task exists and AMS works on it; earshot stops (a deploy, a crash) before any result.
    let (status, log) = first.terminate().await;
    assert!(status.success(), "{log}");
    assert!(
        log.contains("Submitted; waiting for the engine's result."),
        "{log}"
    );
    assert!(listener.received().is_empty());

    let second = setup.start(&config).await;
    eventually(WAIT, "the fake AMS finishing the task", || async {
        fake.tasks()[0].done.then_some(())
    })
    .await;
    fake.release().await;
    let callbacks = listener.wait_for(1, WAIT).await;
    let body = callbacks[0].json();
    assert_eq!(body["code"], 0, "{body}");
    assert_eq!(body["data"]["ads_info"]["score"], 95);
    assert_eq!(body["data"]["ads_info"]["engine"], "ams");
    assert_eq!(body["data"]["forbidden_status"], 2);
    assert_eq!(
        head_status(&setup.s3, &setup.bucket, "audio/pitch.mp3").await,
        404
    );
    assert!(signature_ok(&callbacks[0], "s3cret"));
    // Nothing is left waiting (cleared right after the callback is delivered and recorded).
    eventually(WAIT, "no job left waiting", || async {
        let waiting = earshot::state::pending::waiting_in(&setup.s3, &setup.bucket)
            .await
            .unwrap();
        waiting.is_empty().then_some(())
    })
    .await;
    let (status, log) = second.terminate().await;
    assert!(status.success(), "{log}");
    assert!(log.contains("Provider result received."), "{log}");
}

/// `max_concurrent` counts tasks, not processes: tasks a daemon left at AMS when it stopped are
/// still in progress there, so the daemon that takes over counts them (the sweep adopts them)
/// and creates no new task until one of them ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_left_by_a_stopped_daemon_count_against_max_concurrent() {
    let setup = setup().await;
    let fake = FakeAms::start().await;
    let listener = Listener::start().await;
    let files = clips(setup.dir.path(), 3);
    fake.stick(&file_sha256(&files[0]));
    fake.stick(&file_sha256(&files[1]));
    let deadline = Duration::from_secs(20);
    let config = setup.with(
        setup.config(&listener.url, &["ams"]),
        "ams",
        setup.ams(&fake, |ams| {
            ams.max_concurrent = 2;
            ams.poll_after_secs = 15;
            ams.deadline_secs = deadline.as_secs();
        }),
    );
    let first = setup.start(&config).await;
    setup.upload("audio/slow-0.mp3", &files[0]).await;
    setup.upload("audio/slow-1.mp3", &files[1]).await;
    fake.wait_for_tasks(2, WAIT).await;
    let created = std::time::Instant::now();
    let (status, log) = first.terminate().await;
    assert!(status.success(), "{log}");

    let second = setup.start(&config).await;
    // A sweep (every second) finds the two tasks waiting and counts them.
    eventually(WAIT, "both outstanding tasks holding a slot", || async {
        let log = second.log();
        (log.matches("A provider task found outstanding holds a task slot.")
            .count()
            >= 2)
            .then_some(())
    })
    .await;
    setup.upload("audio/next.mp3", &files[2]).await;
    // Evidence that the third job reached its submission and found no free slot.
    eventually(WAIT, "the third job waiting for a slot", || async {
        second
            .log()
            .contains("Every task slot is taken; waiting for one.")
            .then_some(())
    })
    .await;
    assert!(
        created.elapsed() < deadline,
        "the check came after the deadline ({:?}); the machine is too slow for this test",
        created.elapsed()
    );
    assert_eq!(
        fake.tasks().len(),
        2,
        "a third task was created while two were in progress"
    );
    // At the deadline the two are called back 1202, their slots free, and the third goes in.
    let callbacks = by_key(&listener.wait_for(3, WAIT).await);
    assert_eq!(callbacks["audio/slow-0.mp3"]["code"], 1202);
    assert_eq!(callbacks["audio/slow-1.mp3"]["code"], 1202);
    assert_eq!(
        callbacks["audio/next.mp3"]["code"],
        0,
        "{}\nlog:\n{}",
        callbacks["audio/next.mp3"],
        second.log()
    );
    assert_eq!(fake.tasks().len(), 3);
    let (status, log) = second.terminate().await;
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_callbacks_results_are_polled_and_overdue_ones_called_back_1202() {
    let setup = setup().await;
    let fake = FakeAms::start().await;
    fake.set_delivery(Delivery::Never);
    let listener = Listener::start().await;
    let files = clips(setup.dir.path(), 2);
    fake.find(&file_sha256(&files[0]), "Porn", 99);
    fake.stick(&file_sha256(&files[1]));
    let config = setup.with(
        setup.config(&listener.url, &["ams"]),
        "ams",
        setup.ams(&fake, |ams| {
            ams.poll_after_secs = 1;
            ams.deadline_secs = 6;
        }),
    );
    let daemon = setup.start(&config).await;
    setup.upload("audio/polled.mp3", &files[0]).await;
    setup.upload("audio/stuck.mp3", &files[1]).await;
    let callbacks = by_key(&listener.wait_for(2, WAIT).await);
    let polled = &callbacks["audio/polled.mp3"];
    assert_eq!(polled["code"], 0, "{polled}");
    assert_eq!(polled["data"]["porn_info"]["score"], 99);
    assert_eq!(
        head_status(&setup.s3, &setup.bucket, "audio/polled.mp3").await,
        404
    );
    let stuck = &callbacks["audio/stuck.mp3"];
    assert_eq!(stuck["code"], 1202, "{stuck}");
    assert_eq!(stuck["data"]["forbidden_status"], 0);
    assert!(
        stuck["message"]
            .as_str()
            .unwrap()
            .contains("no result from engine ams"),
        "{stuck}"
    );
    assert_eq!(stuck["data"]["engine_errors"][0]["engine"], "ams");
    assert_eq!(
        head_status(&setup.s3, &setup.bucket, "audio/stuck.mp3").await,
        200
    );
    let describes = fake
        .requests()
        .iter()
        .filter(|r| r.action == "DescribeTaskDetail" && r.error.is_none())
        .count();
    assert!(describes >= 2, "{:?}", fake.requests());
    assert!(fake.tasks().iter().all(|t| !t.called_back));
    // The silent task was asked at a doubling interval (1 s, then 1-2 s, then 2-4 s), not at
    // every one-second sweep until its deadline (5 times): both tasks' polls are counted.
    let base = setup.base();
    let ended = scrape(&base, "earshot_engine_task_polls_count{engine=\"ams\"}").await;
    assert_eq!(ended, Some(2.0), "both tasks ended by polling or deadline");
    let running = scrape(
        &base,
        "earshot_engine_polls_total{engine=\"ams\",answer=\"running\"}",
    )
    .await
    .expect("the silent task was polled");
    assert!(
        (1.0..=3.0).contains(&running),
        "{running} polls of the silent task"
    );
    let results = scrape(
        &base,
        "earshot_engine_polls_total{engine=\"ams\",answer=\"result\"}",
    )
    .await;
    assert_eq!(results, Some(1.0));
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    assert!(log.contains("result fetched by polling"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_configured_rate_and_concurrency_are_never_exceeded_and_throttling_is_answered_with_backoff()
 {
    let setup = setup().await;
    let fake = FakeAms::start().await;
    let listener = Listener::start().await;
    let files = clips(setup.dir.path(), 12);
    // earshot may send 5 requests a second, one task each; AMS allows 20. Nothing reaches it
    // faster than 5/s.
    let config = setup.with(
        setup.config(&listener.url, &["ams"]),
        "ams",
        setup.ams(&fake, |ams| {
            ams.rate_per_sec = 5.0;
            ams.max_batch = 1;
        }),
    );
    let daemon = setup.start(&config).await;
    for (i, file) in files.iter().enumerate().take(6) {
        setup.upload(&format!("audio/steady-{i}.mp3"), file).await;
    }
    listener.wait_for(6, WAIT).await;
    assert!(fake.max_requests_per_second() <= 5, "{:?}", fake.requests());
    assert!(fake.requests().iter().all(|r| r.error.is_none()));
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");

    // Now AMS allows 2 a second while earshot is configured for 20: it answers
    // RequestLimitExceeded, earshot backs off, and every job still completes.
    fake.set_rate_limit(2);
    let throttled_since = std::time::Instant::now();
    let config = setup.with(
        setup.config(&listener.url, &["ams"]),
        "ams",
        setup.ams(&fake, |ams| {
            ams.max_batch = 1;
        }),
    );
    let daemon = setup.start(&config).await;
    for (i, file) in files.iter().enumerate().skip(6) {
        setup.upload(&format!("audio/burst-{i}.mp3"), file).await;
    }
    let callbacks = listener.wait_for(12, WAIT).await;
    assert!(callbacks.iter().all(|c| c.json()["code"] == 0));
    let throttled = fake
        .requests()
        .iter()
        .filter(|r| r.error.as_deref() == Some("RequestLimitExceeded"))
        .count();
    assert!(
        throttled >= 1,
        "the fake never throttled: {:?}",
        fake.requests()
    );
    assert!(fake.max_accepted_per_second(throttled_since) <= 2);
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
    assert!(log.contains("AMS is throttling; backing off."), "{log}");

    // Tasks in progress: AMS queues whatever it is given, so only earshot can keep its count
    // down. With max_concurrent = 3 and 1 s per task, 8 uploads at once never have more than 3
    // tasks unfinished at AMS — and do reach 3.
    let fake = FakeAms::start().await;
    fake.set_work(Duration::from_secs(1));
    let config = setup.with(
        setup.config(&listener.url, &["ams"]),
        "ams",
        setup.ams(&fake, |ams| {
            ams.max_concurrent = 3;
        }),
    );
    let daemon = setup.start(&config).await;
    for (i, file) in files.iter().enumerate().take(8) {
        setup
            .upload(&format!("audio/concurrent-{i}.mp3"), file)
            .await;
    }
    let callbacks = listener.wait_for(20, WAIT).await;
    assert!(callbacks.iter().all(|c| c.json()["code"] == 0));
    assert_eq!(fake.max_unfinished(), 3, "{:?}", fake.requests());
    let (status, log) = daemon.terminate().await;
    assert!(status.success(), "{log}");
}
