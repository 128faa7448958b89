//! A TCP gate in front of a real server (LocalStack): open, it relays every connection; closed,
//! it cuts the connections it relays and drops new ones at once, as an unreachable S3 would.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub struct Gate {
    /// `http://127.0.0.1:PORT`, to use as an endpoint.
    pub url: String,
    /// Cancelled when the gate closes; a fresh one while open.
    open: Arc<Mutex<Option<CancellationToken>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Gate {
    /// An open gate relaying to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Gate {
        let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", socket.local_addr().expect("bound"));
        let open = Arc::new(Mutex::new(Some(CancellationToken::new())));
        let state = open.clone();
        let upstream = upstream.to_owned();
        let server = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = socket.accept().await else {
                    return;
                };
                let Some(cut) = state.lock().expect("not poisoned").clone() else {
                    drop(inbound);
                    continue;
                };
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = cut.cancelled() => {}
                    }
                });
            }
        });
        Gate {
            url,
            open,
            _server: server,
        }
    }

    /// Cuts every relayed connection and refuses new ones.
    pub fn close(&self) {
        if let Some(cut) = self.open.lock().expect("not poisoned").take() {
            cut.cancel();
        }
    }

    pub fn open(&self) {
        self.open
            .lock()
            .expect("not poisoned")
            .get_or_insert_with(CancellationToken::new);
    }
}
