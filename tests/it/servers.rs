//! The servers the tests talk to are the ones the project pins: a LocalStack of another version
//! already answering on the port is refused with a message naming the version found and the one
//! needed, instead of failing the tests with errors that do not say why.

use std::process::Command;

use crate::common::*;

fn check(url: &str) -> std::process::Output {
    Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/localstack/check-version.sh"
    ))
    .env("LOCALSTACK_URL", url)
    .output()
    .expect("check-version.sh runs")
}

#[tokio::test]
async fn a_foreign_localstack_on_the_port_is_refused_naming_both_versions() {
    // A server that answers LocalStack's health check as version 3.0.0 would.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let app = axum::Router::new().route(
        "/_localstack/health",
        axum::routing::get(|| async {
            axum::Json(
                serde_json::json!({"edition": "community", "version": "3.0.0", "services": {}}),
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || check(&url)
    })
    .await
    .expect("ran");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("version 3.0.0"), "{said}");
    assert!(
        said.contains(&format!("need {}", pinned_localstack())),
        "{said}"
    );

    // The pinned one, which the suite runs against, passes.
    require_localstack();
    let out = tokio::task::spawn_blocking(|| check(LOCALSTACK))
        .await
        .expect("ran");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
