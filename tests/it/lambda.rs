//! The real `earshot-lambda` binary against a local Lambda Runtime API (tests/common/lambda_api.rs),
//! with S3 on LocalStack and a real callback listener: an S3 event invoked directly, an SQS batch
//! where only the record that failed for a passing reason is reported in `batchItemFailures`, and
//! a malformed payload answered with an error while the runtime keeps serving.

use std::time::Duration;

use crate::common::lambda_api::{Answer, RuntimeApi};
use crate::common::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

fn sqs_record(message_id: &str, body: &Value) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("handle-{message_id}"),
        "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:uploads",
        "awsRegion": "us-east-1"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lambda_handles_s3_events_sqs_batches_and_malformed_payloads() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let missing_bucket = unique("earshot-missing");
    let dir = tempfile::tempdir().expect("tempdir");
    let (known_bad, library) = known_bad_in_library(dir.path()).await;
    let clean = tone(&dir.path().join("clean.mp3"), 4.0, 330, &["-b:a", "96k"]);
    let corrupt = corrupt_flac(dir.path());
    let listener = Listener::start().await;

    // A second rule names a bucket that does not exist: its events fail for a passing reason.
    let mut typed = config_at(LOCALSTACK, &bucket, &listener.url, "move", &library);
    typed
        .rules
        .push(another_rule(&typed, "elsewhere", &missing_bucket));
    let config = dir.path().join("earshot.toml");
    std::fs::write(&config, config_toml(&typed)).expect("write config");

    put_file(
        &s3,
        &bucket,
        "audio/known-bad.mp3",
        &known_bad,
        "audio/mpeg",
    )
    .await;
    put_file(&s3, &bucket, "audio/clean.mp3", &clean, "audio/mpeg").await;
    put_file(&s3, &bucket, "audio/broken.flac", &corrupt, "audio/flac").await;

    let api = RuntimeApi::start().await;
    let log = dir.path().join("lambda.log");
    let mut child = api.spawn(
        &config,
        "info",
        std::fs::File::create(&log).expect("log file").into(),
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // 1. An S3 event invoked directly: judged, moved, called back.
    let id = api.invoke(s3_event(&bucket, "audio/known-bad.mp3"));
    let Answer::Response(answer) = api.answer(&id, WAIT).await else {
        panic!("S3 event answered with an error; log:\n{}", read_log());
    };
    assert_eq!(answer["jobs"][0]["code"], 0, "{answer}");
    assert_eq!(answer["jobs"][0]["forbidden_status"], 2, "{answer}");
    assert_eq!(head_status(&s3, &bucket, "audio/known-bad.mp3").await, 404);
    let callbacks = listener.wait_for(1, WAIT).await;
    assert_eq!(callbacks[0].json()["data"]["forbidden_status"], 2);

    // 2. An SQS batch: a clean upload, corrupt audio (bad input: judged and called back, not
    //    retried), and an object in a bucket that does not exist (passing: retried).
    let batch = json!({"Records": [
        sqs_record("msg-clean", &s3_event(&bucket, "audio/clean.mp3")),
        sqs_record("msg-corrupt", &s3_event(&bucket, "audio/broken.flac")),
        sqs_record("msg-missing-bucket", &s3_event(&missing_bucket, "audio/any.mp3")),
    ]});
    let id = api.invoke(batch);
    let Answer::Response(answer) = api.answer(&id, WAIT).await else {
        panic!("SQS batch answered with an error; log:\n{}", read_log());
    };
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "msg-missing-bucket"}]}),
        "log:\n{}",
        read_log()
    );
    let callbacks = listener.wait_for(3, WAIT).await;
    let by_key = |key: &str| {
        callbacks
            .iter()
            .map(Received::json)
            .find(|body| {
                body["data"]["url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(key))
            })
            .unwrap_or_else(|| panic!("no callback for {key}"))
    };
    assert_eq!(by_key("audio/clean.mp3")["code"], 0);
    assert_eq!(by_key("audio/clean.mp3")["data"]["forbidden_status"], 0);
    assert_eq!(by_key("audio/broken.flac")["code"], 1003);
    // The batch was answered after every job in it ended: no callback can come later.
    assert_eq!(
        listener.received().len(),
        3,
        "the record of the missing bucket is not called back, only retried"
    );

    // 3. A malformed payload: an error answer, and the runtime keeps serving.
    let id = api.invoke(json!({"hello": "world"}));
    let Answer::Error(error) = api.answer(&id, WAIT).await else {
        panic!("a malformed payload must be answered with an error");
    };
    assert!(
        error.to_string().contains("malformed invocation payload"),
        "{error}"
    );
    let id = api.invoke(s3_event(&bucket, "audio/clean.mp3"));
    let Answer::Response(answer) = api.answer(&id, WAIT).await else {
        panic!("the runtime stopped serving after a malformed payload");
    };
    assert_eq!(answer["jobs"][0]["outcome"], "duplicate", "{answer}");

    // 4. SNS invoking Lambda, and EventBridge "Object Created": the same object, recognised as
    //    already judged.
    let sns = json!({"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "Sns": {"Type": "Notification", "MessageId": "m-1",
                "TopicArn": "arn:aws:sns:us-east-1:000000000000:uploads",
                "Message": s3_event(&bucket, "audio/clean.mp3").to_string()}
    }]});
    let eventbridge = json!({
        "version": "0", "id": "e-1", "detail-type": "Object Created", "source": "aws.s3",
        "account": "000000000000", "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": "audio/clean.mp3"}}
    });
    for payload in [sns, eventbridge] {
        let id = api.invoke(payload);
        let Answer::Response(answer) = api.answer(&id, WAIT).await else {
            panic!(
                "SNS/EventBridge payload answered with an error; log:\n{}",
                read_log()
            );
        };
        assert_eq!(answer["jobs"][0]["outcome"], "duplicate", "{answer}");
        assert_eq!(answer["jobs"][0]["key"], "audio/clean.mp3", "{answer}");
    }
    assert_eq!(
        listener.received().len(),
        3,
        "duplicates are not called back"
    );
    assert!(child.try_wait().expect("status").is_none(), "still running");

    // The init phase was measured and logged.
    assert!(read_log().contains("init_ms"), "log:\n{}", read_log());
    assert!(api.first_next().is_some());
}

/// S3 Batch Operations invoking the function (schema 1.0 with a bucket ARN, 2.0 with a bucket
/// name; keys URL-encoded as in the job's manifest): one result per task, as S3 records it in the
/// completion report.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lambda_answers_s3_batch_operations_with_a_result_per_task() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let missing_bucket = unique("earshot-missing");
    let dir = tempfile::tempdir().expect("tempdir");
    let (known_bad, library) = known_bad_in_library(dir.path()).await;
    let clean = tone(&dir.path().join("clean.mp3"), 4.0, 330, &["-b:a", "96k"]);
    let corrupt = corrupt_flac(dir.path());
    let listener = Listener::start().await;
    let mut typed = config_at(LOCALSTACK, &bucket, &listener.url, "move", &library);
    typed
        .rules
        .push(another_rule(&typed, "elsewhere", &missing_bucket));
    let config = dir.path().join("earshot.toml");
    std::fs::write(&config, config_toml(&typed)).expect("write config");
    put_file(
        &s3,
        &bucket,
        "audio/known bad.mp3",
        &known_bad,
        "audio/mpeg",
    )
    .await;
    put_file(&s3, &bucket, "audio/clean.mp3", &clean, "audio/mpeg").await;
    put_file(&s3, &bucket, "audio/broken.flac", &corrupt, "audio/flac").await;
    put_file(&s3, &bucket, "video/out-of-scope.mp3", &clean, "audio/mpeg").await;

    let api = RuntimeApi::start().await;
    let log = dir.path().join("lambda.log");
    let _child = api.spawn(
        &config,
        "info",
        std::fs::File::create(&log).expect("log file").into(),
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let task = |id: &str, key: &str| {
        json!({"taskId": id, "s3Key": key, "s3VersionId": null,
               "s3BucketArn": format!("arn:aws:s3:::{bucket}")})
    };
    let v1 = json!({
        "invocationSchemaVersion": "1.0",
        "invocationId": "inv-1",
        "job": {"id": "job-1"},
        "tasks": [task("t-bad", "audio/known+bad.mp3"), task("t-clean", "audio/clean.mp3")]
    });
    let v2 = json!({
        "invocationSchemaVersion": "2.0",
        "invocationId": "inv-2",
        "job": {"id": "job-2", "userArguments": {}},
        "tasks": [
            {"taskId": "t-corrupt", "s3Key": "audio/broken.flac", "s3VersionId": null, "s3Bucket": bucket},
            {"taskId": "t-scope", "s3Key": "video/out-of-scope.mp3", "s3VersionId": null, "s3Bucket": bucket},
            {"taskId": "t-missing", "s3Key": "audio/any.mp3", "s3VersionId": null, "s3Bucket": missing_bucket},
        ]
    });
    let mut codes = std::collections::BTreeMap::new();
    for (payload, version) in [(v1, "1.0"), (v2, "2.0")] {
        let invocation = payload["invocationId"].clone();
        let id = api.invoke(payload);
        let Answer::Response(answer) = api.answer(&id, WAIT).await else {
            panic!(
                "batch invocation answered with an error; log:\n{}",
                read_log()
            );
        };
        assert_eq!(answer["invocationSchemaVersion"], version, "{answer}");
        assert_eq!(answer["invocationId"], invocation, "{answer}");
        assert_eq!(answer["treatMissingKeysAs"], "PermanentFailure", "{answer}");
        for result in answer["results"].as_array().expect("results") {
            codes.insert(
                result["taskId"].as_str().expect("task id").to_owned(),
                (
                    result["resultCode"].as_str().expect("code").to_owned(),
                    result["resultString"].as_str().expect("text").to_owned(),
                ),
            );
        }
    }
    let code = |task: &str| codes[task].0.as_str();
    assert_eq!(code("t-bad"), "Succeeded", "{codes:?}");
    assert!(codes["t-bad"].1.contains("forbidden_status 2"), "{codes:?}");
    assert_eq!(code("t-clean"), "Succeeded", "{codes:?}");
    assert_eq!(
        code("t-corrupt"),
        "Succeeded",
        "bad input is judged: {codes:?}"
    );
    assert!(codes["t-corrupt"].1.starts_with("code 1003"), "{codes:?}");
    assert_eq!(code("t-scope"), "PermanentFailure", "{codes:?}");
    assert!(codes["t-scope"].1.contains("no rule"), "{codes:?}");
    assert_eq!(code("t-missing"), "TemporaryFailure", "{codes:?}");
    assert!(codes["t-missing"].1.contains(&missing_bucket), "{codes:?}");

    assert_eq!(head_status(&s3, &bucket, "audio/known bad.mp3").await, 404);
    let callbacks = listener.wait_for(3, WAIT).await;
    assert!(
        callbacks
            .iter()
            .all(|c| c.json()["data"]["source"] == "batch"),
        "{callbacks:?}"
    );
    assert_eq!(listener.received().len(), 3, "one per judged task");

    // The README's job parameters ask for what this function answers.
    let job: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/aws/s3-batch-job.json"),
        )
        .expect("infra/aws/s3-batch-job.json"),
    )
    .expect("JSON");
    assert_eq!(
        job["Operation"]["LambdaInvoke"]["InvocationSchemaVersion"],
        "2.0"
    );
    assert_eq!(
        job["Manifest"]["Spec"]["Format"],
        "S3InventoryReport_CSV_20161130"
    );
    assert_eq!(job["Report"]["Format"], "Report_CSV_20180820");
}

/// An asynchronous engine under Lambda: the S3 event leaves the job waiting; AMS's result reaches
/// the function through its URL (an HTTP API 2.0 payload) and finishes the job; an altered result
/// is answered 401; a scheduled `{"earshot": "sweep"}` runs the sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lambda_takes_provider_results_through_its_function_url() {
    use crate::common::providers::{AMS_SECRET_ID, AMS_SECRET_KEY, Delivery, FakeAms, file_sha256};
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let library = dir.path().join("library");
    std::fs::create_dir_all(&library).expect("library");
    let clip = tone(&dir.path().join("pitch.mp3"), 2.0, 520, &["-b:a", "64k"]);
    let fake = FakeAms::start().await;
    fake.set_delivery(Delivery::Hold);
    fake.find(&file_sha256(&clip), "Ad", 96);
    let listener = Listener::start().await;
    let function_url = "https://abc123.lambda-url.us-east-1.on.aws";
    let mut typed = config_at(LOCALSTACK, &bucket, &listener.url, "move", &library);
    let ams = engine_section(&format!(
        "type = \"tencent_ams\"\nsecret_id = \"{AMS_SECRET_ID}\"\n\
         secret_key = \"{AMS_SECRET_KEY}\"\nendpoint = \"{}\"\nseed = \"lambda-seed\"\n\
         callback_base_url = \"{function_url}\"\n",
        fake.url
    ));
    typed.engines.insert("ams".to_owned(), ams);
    typed.async_jobs.token_key = Some("lambda-token-key-0123456789abcdef0123".to_owned());
    typed.rules[0].engine = earshot::config::EngineNames::One("ams".to_owned());
    let config = dir.path().join("earshot.toml");
    std::fs::write(&config, config_toml(&typed)).expect("write config");
    put_file(&s3, &bucket, "audio/pitch.mp3", &clip, "audio/mpeg").await;

    let api = RuntimeApi::start().await;
    let log = dir.path().join("lambda.log");
    let mut child = api.spawn(
        &config,
        "info",
        std::fs::File::create(&log).expect("log file").into(),
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let id = api.invoke(s3_event(&bucket, "audio/pitch.mp3"));
    let Answer::Response(answer) = api.answer(&id, WAIT).await else {
        panic!("S3 event answered with an error; log:\n{}", read_log());
    };
    assert_eq!(answer["jobs"][0]["outcome"], "waiting", "{answer}");
    let task = fake.wait_for_tasks(1, WAIT).await.remove(0);
    let callback_url = task.callback_url.clone().expect("CallbackUrl");
    let path = callback_url
        .strip_prefix(function_url)
        .expect("the result URL is on the function URL")
        .to_owned();
    let detail = eventually(WAIT, "the fake AMS finishing its task", || async {
        let task = fake.tasks().remove(0);
        task.done.then_some(task.detail)
    })
    .await;
    let body = serde_json::to_string(&detail).unwrap();
    let request = |body: &str, signature: String| {
        json!({
            "version": "2.0", "rawPath": path, "rawQueryString": "",
            "headers": {"content-type": "application/json", "x-signature": signature},
            "requestContext": {"http": {"method": "POST", "path": path}},
            "body": body, "isBase64Encoded": false
        })
    };
    // Altered on the way: refused.
    let altered = body.replace("\"Ad\"", "\"Porn\"");
    let id = api.invoke(request(
        &altered,
        earshot::signing::x_signature("lambda-seed", body.as_bytes()),
    ));
    let Answer::Response(answer) = api.answer(&id, WAIT).await else {
        panic!("HTTP request answered with an error; log:\n{}", read_log());
    };
    assert_eq!(answer["statusCode"], 401, "{answer}");
    // AMS's genuine result: the job finishes in this invocation.
    let id = api.invoke(request(
        &body,
        earshot::signing::x_signature("lambda-seed", body.as_bytes()),
    ));
    let Answer::Response(answer) = api.answer(&id, WAIT).await else {
        panic!("HTTP request answered with an error; log:\n{}", read_log());
    };
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let callbacks = listener.wait_for(1, WAIT).await;
    let body = callbacks[0].json();
    assert_eq!(body["data"]["ads_info"]["score"], 96, "{body}");
    assert_eq!(body["data"]["ads_info"]["engine"], "ams");
    assert_eq!(head_status(&s3, &bucket, "audio/pitch.mp3").await, 404);
    let id = api.invoke(json!({"earshot": "sweep"}));
    let Answer::Response(answer) = api.answer(&id, WAIT).await else {
        panic!("sweep answered with an error; log:\n{}", read_log());
    };
    assert_eq!(answer["swept"], true);
    child.kill().await.expect("kill");
}
