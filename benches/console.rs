//! The console at scale, against LocalStack, in seconds and S3 requests (earshot's own counted
//! client), before and after day packs and queue paging:
//!
//! 1. the history CSV of one day of 100,000 results: before, the day listed and every row read
//!    on its own (16 at a time, as the console read it until packs); after, the first read
//!    (which finds no pack, reads every row and writes one) and the reads after it (the pack);
//! 2. the queue page with 10,000 open items: before, every item read (the queue as a whole);
//!    after, the first page of 50 and the 100th.
//!
//! Run with `bench/run.sh console` (starts LocalStack). `BENCH_QUICK=1` shrinks it to 5,000
//! results and 1,000 items. Written to bench/out/console.md.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;
use earshot::metrics::Metrics;
use earshot::state::review::{self, ResultRow};
use futures::{StreamExt, TryStreamExt};

fn quick() -> bool {
    std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// Every request counted on a metrics page, and the GETs among them.
fn counted(metrics: &Metrics) -> (u64, u64) {
    let page = metrics.render();
    let mut all = 0;
    let mut gets = 0;
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("earshot_s3_requests_total{operation=\"") {
            let (operation, value) = rest.split_once("\"} ").expect("a sample");
            let value: u64 = value.trim().parse().expect("a count");
            all += value;
            if operation == "GetObject" {
                gets += value;
            }
        }
    }
    (all, gets)
}

struct Measured {
    what: &'static str,
    secs: f64,
    requests: u64,
    gets: u64,
}

async fn measure<T>(
    what: &'static str,
    metrics: &Metrics,
    run: impl std::future::Future<Output = T>,
) -> (T, Measured) {
    let (all, gets) = counted(metrics);
    let started = Instant::now();
    let out = run.await;
    let secs = started.elapsed().as_secs_f64();
    let (all_after, gets_after) = counted(metrics);
    (
        out,
        Measured {
            what,
            secs,
            requests: all_after - all,
            gets: gets_after - gets,
        },
    )
}

fn row(bucket: &str, day_start: u64, n: u64) -> ResultRow {
    ResultRow {
        judged_at: day_start + n * 86_400 / 100_000,
        trace_id: format!("{n:08x}-5f0c-4d2e-9a7b-{n:012x}"),
        bucket: bucket.to_owned(),
        key: format!("audio/user-{}/voice-{n}.m4a", n % 977),
        rule: "voice".to_owned(),
        source: "upload".to_owned(),
        code: 0,
        message: "OK".to_owned(),
        result: if n.is_multiple_of(50) { 2 } else { 0 },
        forbidden_status: 0,
        scenes: vec![
            (earshot::model::Scene::Porn, (n % 7) as u8, String::new()),
            (earshot::model::Scene::Ads, (n % 90) as u8, String::new()),
            (earshot::model::Scene::Illegal, 0, String::new()),
        ],
        review: None,
        terms: Vec::new(),
    }
}

/// The history's reads before day packs: a listing, then every row on its own, 16 at a time.
async fn rows_one_by_one(s3: &aws_sdk_s3::Client, bucket: &str, day: &str) -> Vec<ResultRow> {
    let keys: Vec<String> =
        earshot::storage::object::list(s3, bucket, &earshot::layout::results_of_day(day))
            .await
            .expect("listing")
            .into_iter()
            .map(|listed| listed.key)
            .collect();
    futures::stream::iter(keys)
        .map(|key| async move {
            let body = earshot::storage::object::get(s3, bucket, &key).await?;
            Ok::<_, earshot::storage::object::ObjectError>(
                serde_json::from_slice::<ResultRow>(&body.expect("a row")).expect("valid"),
            )
        })
        .buffered(16)
        .try_collect()
        .await
        .expect("rows")
}

async fn history(results: u64) -> Vec<Measured> {
    let plain = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&plain).await;
    let metrics = Metrics::default();
    let s3 =
        earshot::storage::s3_client_counted(&s3_config(LOCALSTACK), metrics.s3_counters()).await;
    let day_start = 1_772_582_400; // 2026-03-04
    let day = earshot::clock::day(day_start);
    let started = Instant::now();
    futures::stream::iter(0..results)
        .map(|n| {
            let (plain, bucket) = (&plain, &bucket);
            async move { review::record_result(plain, &row(bucket, day_start, n)).await }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await
        .expect("rows written");
    eprintln!(
        "{results} results written in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let csv = |rows: Vec<ResultRow>| {
        assert_eq!(rows.len() as u64, results);
        earshot::console::results_csv(&rows).len()
    };
    let (before, m1) = measure("history CSV, before: every row read", &metrics, async {
        csv(rows_one_by_one(&s3, &bucket, &day).await)
    })
    .await;
    let (first, m2) = measure(
        "history CSV, after: first read (packs the day)",
        &metrics,
        async {
            csv(review::results_of_day(&s3, &bucket, &day)
                .await
                .expect("rows"))
        },
    )
    .await;
    let (warm, m3) = measure("history CSV, after: read from the pack", &metrics, async {
        csv(review::results_of_day(&s3, &bucket, &day)
            .await
            .expect("rows"))
    })
    .await;
    assert_eq!((before, first), (warm, warm), "the same CSV every way");
    vec![m1, m2, m3]
}

async fn queue(items: u64) -> Vec<Measured> {
    let s3 = s3(LOCALSTACK).await;
    let bucket = fresh_bucket(&s3).await;
    let waiting = common::review_items::one_item_waiting(&s3, &bucket, 86_400).await;
    let (pipeline, first) = (&waiting.pipeline, &waiting.item);
    let started = Instant::now();
    futures::stream::iter(1..items)
        .map(|n| {
            let mut copy = first.clone();
            copy.trace_id = format!("copy-{n:06}");
            copy.created_at = first.created_at - items + n;
            let s3 = &s3;
            async move { review::open(s3, &copy).await }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await
        .expect("items opened");
    eprintln!(
        "{items} items opened in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let metrics = &pipeline.metrics;
    let (all, m1) = measure("queue page, before: every item read", metrics, async {
        pipeline.review_queue().await.expect("queue").len() as u64
    })
    .await;
    assert_eq!(all, items);
    let (page, m2) = measure("queue page, after: first page of 50", metrics, async {
        pipeline
            .review_page(None, 50, |_| true)
            .await
            .expect("page")
    })
    .await;
    assert_eq!((page.items.len(), page.total as u64), (50, items));
    // The last page (the 200th with 10,000 items), found from its cursor.
    let cursor = {
        let q = &review::queue(&s3, &bucket).await.expect("queue")[(items as usize) - 51];
        format!("{}-{}", q.created_at, q.trace_id)
    };
    let (last, m3) = measure("queue page, after: the last page", metrics, async {
        pipeline
            .review_page(Some(&cursor), 50, |_| true)
            .await
            .expect("page")
    })
    .await;
    assert_eq!(last.items.len(), 50);
    assert!(last.next.is_none());
    vec![m1, m2, m3]
}

#[tokio::main]
async fn main() {
    require_localstack();
    let (results, items) = if quick() {
        (5_000, 1_000)
    } else {
        (100_000, 10_000)
    };
    let mut measured = history(results).await;
    measured.extend(queue(items).await);
    let mut table = format!(
        "Console at scale: one day of {results} results, {items} open review items (LocalStack)\n\n\
         | read | seconds | S3 requests | of them GETs |\n|---|---|---|---|\n"
    );
    for m in &measured {
        table.push_str(&format!(
            "| {} | {:.2} | {} | {} |\n",
            m.what, m.secs, m.requests, m.gets
        ));
    }
    print!("{table}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/out");
    std::fs::create_dir_all(&out).expect("bench/out");
    std::fs::write(out.join("console.md"), table).expect("written");
}
