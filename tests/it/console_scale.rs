//! The console's reads at scale, counted in S3 requests by earshot's own client: a day of the
//! history is read from its pack (one GET) plus the rows changed or added since, and the queue
//! page reads the items of its page only, with a cursor to the next.

use earshot::metrics::Metrics;
use earshot::pipeline::Pipeline;
use earshot::state::review::{self, ResultRow};

use crate::common::browser::Served;
use crate::common::review_items::one_item_waiting;
use crate::common::*;

/// Requests of `operation` counted on a metrics page.
fn requests(metrics: &Metrics, operation: &str) -> u64 {
    let name = format!("earshot_s3_requests_total{{operation=\"{operation}\"}}");
    metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&name)?.trim().parse().ok())
        .unwrap_or(0)
}

fn row(bucket: &str, day_start: u64, n: u64) -> ResultRow {
    ResultRow {
        judged_at: day_start + 60 + n,
        trace_id: format!("trace-{n:05}"),
        bucket: bucket.to_owned(),
        key: format!("audio/{n}.mp3"),
        rule: "uploads".to_owned(),
        source: "upload".to_owned(),
        code: 0,
        message: "OK".to_owned(),
        result: 0,
        forbidden_status: 0,
        scenes: vec![(earshot::model::Scene::Porn, (n % 100) as u8, String::new())],
        review: None,
        terms: Vec::new(),
    }
}

#[tokio::test]
async fn a_days_history_is_read_from_its_pack_and_only_rows_changed_since_are_read_again() {
    require_localstack();
    let plain = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&plain).await;
    let metrics = Metrics::default();
    let counted =
        earshot::storage::s3_client_counted(&s3_config(LOCALSTACK), metrics.s3_counters()).await;
    let day = "2026-03-04";
    let day_start = 1_772_582_400; // 2026-03-04T00:00:00Z
    assert_eq!(earshot::clock::day(day_start), day);
    let written: Vec<ResultRow> = (0..150).map(|n| row(&bucket, day_start, n)).collect();
    for r in &written {
        review::record_result(&plain, r).await.expect("row");
    }

    // The first read GETs every row (and finds no pack), then packs the day.
    let rows = review::results_of_day(&counted, &bucket, day)
        .await
        .expect("read");
    assert_eq!(rows, written);
    assert_eq!(requests(&metrics, "GetObject"), 151);
    assert_eq!(requests(&metrics, "PutObject"), 1, "the pack written");

    // The second reads the pack alone.
    let rows = review::results_of_day(&counted, &bucket, day)
        .await
        .expect("read");
    assert_eq!(rows, written);
    assert_eq!(requests(&metrics, "GetObject"), 152);
    assert_eq!(requests(&metrics, "ListObjectsV2"), 2);

    // A row a review changed and a row added since are read on their own.
    let mut reviewed = written[7].clone();
    reviewed.review = Some("block".to_owned());
    review::record_result(&plain, &reviewed).await.expect("row");
    let added = row(&bucket, day_start, 500);
    review::record_result(&plain, &added).await.expect("row");
    let rows = review::results_of_day(&counted, &bucket, day)
        .await
        .expect("read");
    let mut expected = written.clone();
    expected[7] = reviewed;
    expected.push(added);
    assert_eq!(rows, expected);
    assert_eq!(requests(&metrics, "GetObject"), 152 + 3);
    assert_eq!(
        requests(&metrics, "PutObject"),
        1,
        "two rows are not worth a pack"
    );

    // A damaged pack costs a slow read, then is packed again.
    plain
        .put_object()
        .bucket(&bucket)
        .key(earshot::layout::result_pack_key(day))
        .body(b"not gzip at all".to_vec().into())
        .send()
        .await
        .expect("pack damaged");
    let rows = review::results_of_day(&counted, &bucket, day)
        .await
        .expect("read");
    assert_eq!(rows, expected);
    assert_eq!(requests(&metrics, "GetObject"), 155 + 1 + 151);
    assert_eq!(requests(&metrics, "PutObject"), 2);
}

#[tokio::test]
async fn the_queue_page_reads_only_its_items_and_pages_on_in_order() {
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let waiting = one_item_waiting(&s3, &bucket, 3600).await;
    let (pipeline, first) = (&waiting.pipeline, &waiting.item);
    // 119 more like it, half of them scored 95, all older than the real one.
    for n in 0..119u64 {
        let mut copy = first.clone();
        copy.trace_id = format!("copy-{n:04}");
        copy.created_at = first.created_at - 1000 + n;
        copy.score = if n % 2 == 0 { 95 } else { 70 };
        review::open(&s3, &copy).await.expect("opened");
    }

    let gets = || requests(&pipeline.metrics, "GetObject");
    let before = gets();
    let page = pipeline
        .review_page(None, 50, |_| true)
        .await
        .expect("page");
    assert_eq!((page.items.len(), page.total), (50, 120));
    assert_eq!(gets() - before, 50, "only the page's items are read");
    let ids: Vec<&str> = page.items.iter().map(|i| i.trace_id.as_str()).collect();
    assert_eq!(ids[0], "copy-0000");
    assert_eq!(ids[49], "copy-0049");
    let next = page.next.expect("more follow");

    let page = pipeline
        .review_page(Some(&next), 50, |_| true)
        .await
        .expect("page");
    assert_eq!(page.items[0].trace_id, "copy-0050");
    let last = pipeline
        .review_page(page.next.as_deref(), 50, |_| true)
        .await
        .expect("page");
    assert_eq!(last.items.len(), 20);
    assert_eq!(last.items[19].trace_id, first.trace_id);
    assert!(last.next.is_none());

    // A filter reads on until the page is full: 50 of the score-95 items take 99 reads.
    let before = gets();
    let high = pipeline
        .review_page(None, 50, |i| i.score >= 90)
        .await
        .expect("page");
    assert_eq!(high.items.len(), 50);
    assert!(high.items.iter().all(|i| i.score == 95));
    assert_eq!(high.items[49].trace_id, "copy-0098");
    assert_eq!(gets() - before, 100, "two chunks of 50 read");
}

/// Two consoles (two replicas, each its own process state) on one bucket: failed logins made
/// on both at once all count, and the lockout they earn holds on either.
#[tokio::test]
async fn a_login_lockout_holds_across_two_consoles_on_one_bucket() {
    use earshot::config::{ConsoleConfig, ConsoleUserConfig, Role};
    use earshot::console::auth::{LOCKOUT_SECS, MAX_FAILURES};
    require_localstack();
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let library = dir.path().join("library");
    std::fs::create_dir_all(&library).expect("library");
    let password = "ana's long passphrase";
    let user = ConsoleUserConfig {
        name: "ana".to_owned(),
        role: Role::Reviewer,
        password_hash: Some(earshot::console::auth::hash_password(password).expect("hash")),
    };
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let console = ConsoleConfig {
            listen: format!("127.0.0.1:{}", free_port()),
            session_key: "a console session key of at least 32 characters".to_owned(),
            session_ttl_secs: 3600,
            secure_cookie: false,
            users: vec![user.clone()],
            proxy: None,
        };
        let config = config(&bucket, "http://127.0.0.1:9/unused", "move", &library);
        let pipeline = std::sync::Arc::new(Pipeline::new(config).await.expect("pipeline"));
        replicas.push(Served::start(pipeline, &console).await);
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let log_in = |base: &str, password: &str| {
        client
            .post(format!("{base}/login"))
            .form(&[("user", "ana"), ("password", password), ("next", "/")])
            .send()
    };
    let (a, b) = (&replicas[0].base, &replicas[1].base);

    // One short of the limit, half on each replica, at the same moment.
    let wrong: Vec<_> = (0..MAX_FAILURES - 1)
        .map(|n| log_in(if n % 2 == 0 { a } else { b }, "guess"))
        .collect();
    for answer in futures::future::join_all(wrong).await {
        assert_eq!(answer.expect("answers").status(), 401);
    }
    // Still allowed: the right password works on A, and forgets the failures.
    assert_eq!(log_in(a, password).await.expect("answers").status(), 303);
    let prefix = earshot::layout::login_failures_prefix(&hex::encode(
        <sha2::Sha256 as sha2::Digest>::digest(b"ana"),
    ));
    let failures = || async {
        earshot::storage::object::list(&s3, &bucket, &prefix)
            .await
            .expect("listing")
            .len()
    };
    assert_eq!(failures().await, 0, "a login forgets the failures");

    // The limit reached across both: each replica refuses even the right password.
    let wrong: Vec<_> = (0..MAX_FAILURES)
        .map(|n| log_in(if n % 2 == 0 { a } else { b }, "guess"))
        .collect();
    for answer in futures::future::join_all(wrong).await {
        assert_eq!(answer.expect("answers").status(), 401);
    }
    assert_eq!(
        failures().await,
        MAX_FAILURES as usize,
        "every failure counted"
    );
    for base in [a, b] {
        assert_eq!(log_in(base, password).await.expect("answers").status(), 429);
    }
    // Once the window has passed, the failures no longer count and are deleted.
    let now = earshot::clock::system_secs();
    let recent = earshot::state::logins::failures_since(&s3, &bucket, "ana", now + LOCKOUT_SECS)
        .await
        .expect("counted");
    assert_eq!(recent, 0);
    assert_eq!(failures().await, 0);
    for replica in replicas {
        replica.stop().await;
    }
}

/// The process serving the console packs today's results as they come (every ten minutes), so
/// History's read of today is a listing and a GET even before anyone opened it.
#[tokio::test]
async fn the_console_keeps_todays_results_packed() {
    require_localstack();
    let plain = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&plain).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let library = dir.path().join("library");
    std::fs::create_dir_all(&library).expect("library");
    let day_start = 1_772_582_400; // 2026-03-04
    let mut pipeline = Pipeline::new(config(
        &bucket,
        "http://127.0.0.1:9/unused",
        "move",
        &library,
    ))
    .await
    .expect("pipeline");
    pipeline.clock = earshot::clock::Clock::fixed(day_start + 3600);
    let written: Vec<ResultRow> = (0..80).map(|n| row(&bucket, day_start, n)).collect();
    for r in &written {
        review::record_result(&plain, r).await.expect("row");
    }
    pipeline.pack_recent_results().await;
    let metrics = Metrics::default();
    let counted =
        earshot::storage::s3_client_counted(&s3_config(LOCALSTACK), metrics.s3_counters()).await;
    let rows = review::results_of_day(&counted, &bucket, "2026-03-04")
        .await
        .expect("read");
    assert_eq!(rows, written);
    assert_eq!(requests(&metrics, "GetObject"), 1, "the pack alone");
}
