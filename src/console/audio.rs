//! Audio for the players: the upload through a short-lived presigned URL, a library recording
//! proxied, both answering `Range`.

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use std::time::Duration;

use axum::http::HeaderValue;

use super::{AUDIO_URL_SECS, Peer, Shared, failed};
use crate::pipeline::ReviewError;
use crate::state::review::ReviewItem;

/// The upload's audio: a redirect to a short-lived presigned URL of wherever the bytes are now
/// (the object, or its backup when moved).
pub(super) async fn audio(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let item = match item_for_user(&c, &headers, peer, &id).await {
        Ok(item) => item,
        Err(answer) => return *answer,
    };
    let s3 = &c.pipeline.s3;
    let (key, version) = whereabouts(s3, &item).await;
    match crate::storage::presigned_get(
        s3,
        &item.bucket,
        &key,
        version,
        Duration::from_secs(AUDIO_URL_SECS),
    )
    .await
    {
        Ok(url) => {
            let mut response = Redirect::temporary(&url).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => failed(e),
    }
}

/// The review item `id` for a signed-in user, or the answer instead: to the login, 404, or the
/// failure.
pub(super) async fn item_for_user(
    c: &super::Console,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
    id: &str,
) -> Result<ReviewItem, Box<Response>> {
    c.user(headers, peer, &Method::GET, "/")?;
    match c.pipeline.review_item(id).await {
        Ok((item, _)) => Ok(item),
        Err(ReviewError::NotFound { .. }) => Err(Box::new(
            (StatusCode::NOT_FOUND, "No such item.").into_response(),
        )),
        Err(e) => Err(Box::new(failed(e))),
    }
}

/// Where the upload's bytes are now: the object itself (with its version) while it still is the
/// one judged, else its backup (moved).
pub(super) async fn whereabouts<'a>(
    s3: &aws_sdk_s3::Client,
    item: &'a ReviewItem,
) -> (String, Option<&'a str>) {
    let here = s3
        .head_object()
        .bucket(&item.bucket)
        .key(&item.key)
        .send()
        .await
        .is_ok_and(|h| h.e_tag().map(|e| e.trim_matches('"')) == Some(item.etag.as_str()));
    if here {
        (item.key.clone(), item.version_id.as_deref())
    } else {
        (crate::layout::backup_key(&item.key), None)
    }
}

/// A library recording, proxied (with byte ranges, so the player can seek).
pub(super) async fn reference(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(to_login) = c.user(&headers, peer, &Method::GET, "/") {
        return *to_login;
    }
    for library in &c.libraries {
        match library.recording(&id).await {
            Ok(Some(bytes)) => return ranged(&headers, bytes),
            Ok(None) => {}
            Err(e) => return failed(e),
        }
    }
    (
        StatusCode::NOT_FOUND,
        "The library keeps no recording of this reference.",
    )
        .into_response()
}

/// `bytes`, or the one range the request asks for.
fn ranged(headers: &HeaderMap, bytes: Vec<u8>) -> Response {
    let len = bytes.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(start, end)| {
            let start: usize = start.parse().ok()?;
            let end: usize = if end.is_empty() {
                len.checked_sub(1)?
            } else {
                end.parse::<usize>().ok()?.min(len.checked_sub(1)?)
            };
            (start <= end).then_some((start, end))
        });
    let common = [
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (header::ACCEPT_RANGES, "bytes".to_owned()),
        (header::CACHE_CONTROL, "private, no-store".to_owned()),
    ];
    match range {
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            common,
            [(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))],
            bytes[start..=end].to_vec(),
        )
            .into_response(),
        None => (StatusCode::OK, common, bytes).into_response(),
    }
}
