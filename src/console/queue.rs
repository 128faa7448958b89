//! The review queue, one item, and decisions on one item or a batch.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::{Html, Peer, Shared, failed, html, score};
use crate::config::ReviewVerdict;
use crate::pipeline::{DecideRequest, ReviewError};

fn verdict(text: &str) -> Option<ReviewVerdict> {
    match text {
        "block" => Some(ReviewVerdict::Block),
        "pass" => Some(ReviewVerdict::Pass),
        _ => None,
    }
}

/// Items on a page of the queue.
const QUEUE_PAGE: usize = 50;

pub(super) async fn queue(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let user = match c.user(&headers, peer, &Method::GET, "/") {
        Ok(user) => user,
        Err(to_login) => return *to_login,
    };
    let filter = html::QueueFilter {
        rule: q.get("rule").cloned().unwrap_or_default(),
        scene: q.get("scene").cloned().unwrap_or_default(),
        min: score(q.get("min")),
        max: score(q.get("max")),
    };
    let after = q.get("after").map(String::as_str).filter(|a| !a.is_empty());
    let page = match c
        .pipeline
        .review_page(after, QUEUE_PAGE, |i| filter.keeps(i))
        .await
    {
        Ok(page) => page,
        Err(e) => return failed(e),
    };
    let rules: Vec<String> = c
        .pipeline
        .rules()
        .all()
        .iter()
        .filter(|r| r.block.review == crate::config::Review::Human)
        .map(|r| r.id.clone())
        .collect();
    let csrf = c.auth.csrf_token(&user);
    Html(html::queue(
        &user,
        &csrf,
        &page,
        after.is_some(),
        &filter,
        &rules,
        q.get("done").map(String::as_str),
    ))
    .into_response()
}

pub(super) async fn item(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let user = match c.user(&headers, peer, &Method::GET, &format!("/item/{id}")) {
        Ok(user) => user,
        Err(to_login) => return *to_login,
    };
    let (item, decision) = match c.pipeline.review_item(&id).await {
        Ok(found) => found,
        Err(ReviewError::NotFound { .. }) => {
            return (StatusCode::NOT_FOUND, "No such review item.").into_response();
        }
        Err(e) => return failed(e),
    };
    // The strongest segment: where the upload's player starts, and the reference it matched.
    let best = item
        .scenes
        .values()
        .flat_map(|s| s.segments.iter())
        .max_by_key(|s| s.score);
    let mut matched = html::Matched {
        offset_secs: best.map_or(0.0, |s| s.offset_secs),
        reference: None,
    };
    if let Some(segment) = best
        && let Some(reference) = &segment.reference_id
    {
        matched.reference = Some((
            reference.clone(),
            segment.reference_offset_secs.unwrap_or(0.0),
            segment.label.clone(),
        ));
    }
    let queue: Vec<String> = c
        .pipeline
        .review_ids()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(_, q)| q.trace_id)
        .collect();
    let at = queue.iter().position(|id| *id == item.trace_id);
    let neighbours = match at {
        Some(i) => (
            i.checked_sub(1).map(|p| queue[p].as_str()),
            queue.get(i + 1).map(String::as_str),
        ),
        None => (None, queue.first().map(String::as_str)),
    };
    let csrf = c.auth.csrf_token(&user);
    Html(html::item(
        &user,
        &csrf,
        &item,
        decision.as_ref(),
        &matched,
        neighbours,
    ))
    .into_response()
}

pub(super) async fn decide(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (user, form) = match c.change(&headers, peer, &body) {
        Ok(ok) => ok,
        Err(refused) => return *refused,
    };
    let csrf = c.auth.csrf_token(&user);
    let Some(verdict) = verdict(form.one("verdict")) else {
        return (StatusCode::BAD_REQUEST, "verdict must be block or pass").into_response();
    };
    // The next item, looked up before this one leaves the queue.
    let queue = c.pipeline.review_ids().await.unwrap_or_default();
    let next = queue
        .iter()
        .skip_while(|(_, q)| q.trace_id != id)
        .nth(1)
        .map(|(_, q)| q.trace_id.clone());
    let request = DecideRequest {
        verdict,
        by: user.name.clone(),
        reason: form.one("reason").to_owned(),
    };
    match c.pipeline.decide_review(&id, &request).await {
        Ok(_) => {
            let done = html::q(&format!("{} {}", verdict.as_str(), id));
            let to = match next {
                Some(next) => format!("/item/{next}?done={done}"),
                None => format!("/?done={done}"),
            };
            Redirect::to(&to).into_response()
        }
        Err(e @ ReviewError::Conflict(_)) => (
            StatusCode::CONFLICT,
            Html(html::message(
                "Already decided",
                &user,
                &csrf,
                "error",
                &format!("Not changed: {e}."),
            )),
        )
            .into_response(),
        Err(e @ ReviewError::NoReason) => (
            StatusCode::BAD_REQUEST,
            Html(html::message(
                "A reason is required",
                &user,
                &csrf,
                "error",
                &e.to_string(),
            )),
        )
            .into_response(),
        Err(e) => failed(e),
    }
}

pub(super) async fn decide_batch(
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
    let ids = form.all("id");
    let reason = form.one("reason").trim();
    let Some(verdict) = verdict(form.one("verdict")) else {
        return (StatusCode::BAD_REQUEST, "verdict must be block or pass").into_response();
    };
    if ids.is_empty() || reason.is_empty() {
        let page = html::message(
            "Nothing decided",
            &user,
            &csrf,
            "error",
            "A batch decision needs at least one selected item and a reason.",
        );
        return (StatusCode::BAD_REQUEST, Html(page)).into_response();
    }
    let request = DecideRequest {
        verdict,
        by: user.name.clone(),
        reason: reason.to_owned(),
    };
    let (mut done, mut refused) = (0, Vec::new());
    for id in &ids {
        match c.pipeline.decide_review(id, &request).await {
            Ok(_) => done += 1,
            Err(e) => refused.push(e.to_string()),
        }
    }
    let mut text = format!(
        "{} {done} of {} selected items.",
        if verdict == ReviewVerdict::Block {
            "Blocked"
        } else {
            "Passed"
        },
        ids.len()
    );
    if !refused.is_empty() {
        text.push_str(&format!(" Not decided: {}.", refused.join("; ")));
    }
    let status = if refused.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    (
        status,
        Html(html::message(
            "Batch decision",
            &user,
            &csrf,
            if refused.is_empty() { "flash" } else { "error" },
            &text,
        )),
    )
        .into_response()
}
