//! The history of results (a page and CSV), the blocked objects, and restoring one.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Console, Html, Peer, Shared, failed, html, score};
use crate::config::Role;
use crate::pipeline::{RestoreRequest, Restored};
use crate::state::blocks;
use crate::state::review::{self, ResultRow};

/// The history's filters from the query; the range defaults to the last seven days.
fn history_filter(q: &HashMap<String, String>, now: u64) -> html::HistoryFilter {
    let get = |k: &str| q.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let mut filter = html::HistoryFilter {
        from: get("from"),
        to: get("to"),
        result: get("result"),
        scene: get("scene"),
        label: get("label"),
        min: score(q.get("min")),
        max: score(q.get("max")),
        name: get("name"),
    };
    if crate::clock::day_start(&filter.to).is_none() {
        filter.to = crate::clock::day(now);
    }
    if crate::clock::day_start(&filter.from).is_none() {
        filter.from = crate::clock::day(now.saturating_sub(6 * 86_400));
    }
    filter
}

/// Every kept row of every day in the filter's range, by day (no cap on the range).
async fn history_rows(
    c: &Console,
    filter: &html::HistoryFilter,
) -> Result<Vec<(String, Vec<ResultRow>)>, crate::state::StateError> {
    let mut by_day: std::collections::BTreeMap<String, Vec<ResultRow>> = Default::default();
    for bucket in c.pipeline.rules().buckets() {
        for day in review::result_days(&c.pipeline.s3, bucket).await? {
            if day < filter.from || day > filter.to {
                continue;
            }
            let rows = review::results_of_day(&c.pipeline.s3, bucket, &day).await?;
            by_day
                .entry(day)
                .or_default()
                .extend(rows.into_iter().filter(|r| filter.keeps(r)));
        }
    }
    Ok(by_day
        .into_iter()
        .map(|(day, mut rows)| {
            rows.sort_by_key(|r| r.judged_at);
            (day, rows)
        })
        .collect())
}

pub(super) async fn history(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let user = match c.user(&headers, peer, &Method::GET, "/history") {
        Ok(user) => user,
        Err(to_login) => return *to_login,
    };
    let filter = history_filter(&q, c.now());
    match history_rows(&c, &filter).await {
        Ok(days) => Html(html::history(
            &user,
            &c.auth.csrf_token(&user),
            &filter,
            &days,
        ))
        .into_response(),
        Err(e) => failed(e),
    }
}

pub(super) async fn history_csv(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(to_login) = c.user(&headers, peer, &Method::GET, "/history") {
        return *to_login;
    }
    let filter = history_filter(&q, c.now());
    match history_rows(&c, &filter).await {
        Ok(days) => {
            let rows: Vec<ResultRow> = days.into_iter().flat_map(|(_, rows)| rows).collect();
            let name = format!(
                "attachment; filename=\"earshot-{}-{}.csv\"",
                filter.from, filter.to
            );
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (header::CONTENT_DISPOSITION, name),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                ],
                html::csv(&rows),
            )
                .into_response()
        }
        Err(e) => failed(e),
    }
}

pub(super) async fn blocked(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
) -> Response {
    let user = match c.user(&headers, peer, &Method::GET, "/blocked") {
        Ok(user) => user,
        Err(to_login) => return *to_login,
    };
    let mut records = Vec::new();
    for bucket in c.pipeline.rules().buckets() {
        match blocks::all_blocks(&c.pipeline.s3, bucket).await {
            Ok(found) => records.extend(found.into_iter().filter(|r| r.restore.is_none())),
            Err(e) => return failed(e),
        }
    }
    records.sort_by_key(|r| std::cmp::Reverse(r.blocked_at));
    Html(html::blocked(&user, &c.auth.csrf_token(&user), &records)).into_response()
}

pub(super) async fn restore(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user, form) = match c.change(&headers, peer, &body) {
        Ok(ok) => ok,
        Err(refused) => return *refused,
    };
    let csrf = c.auth.csrf_token(&user);
    if user.role != Role::Admin {
        let page = html::message(
            "Not allowed",
            &user,
            &csrf,
            "error",
            "Only an admin may restore.",
        );
        return (StatusCode::FORBIDDEN, Html(page)).into_response();
    }
    let reason = form.one("reason").trim();
    if reason.is_empty() {
        let page = html::message(
            "A reason is required",
            &user,
            &csrf,
            "error",
            "A restore needs a reason.",
        );
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    }
    let records =
        match blocks::blocks_of_key(&c.pipeline.s3, form.one("bucket"), form.one("key")).await {
            Ok(records) => records,
            Err(e) => return failed(e),
        };
    let Some(record) = records
        .into_iter()
        .find(|r| r.trace_id == form.one("trace_id"))
    else {
        return (StatusCode::NOT_FOUND, "No such block.").into_response();
    };
    let key = record.key.clone();
    let request = RestoreRequest {
        by: user.name.clone(),
        reason: reason.to_owned(),
        mark_normal: false,
    };
    match c.pipeline.restore(record, &request).await {
        Ok(Restored::Done { .. }) | Ok(Restored::Already { .. }) => Html(html::message(
            "Restored",
            &user,
            &csrf,
            "flash",
            &format!("Restored {key}."),
        ))
        .into_response(),
        Err(e) => (
            StatusCode::CONFLICT,
            Html(html::message(
                "Not restored",
                &user,
                &csrf,
                "error",
                &e.to_string(),
            )),
        )
            .into_response(),
    }
}
