//! A webhook receiver on 127.0.0.1 for the delivery tests and benches: it records every
//! request it gets (headers, body, when) and answers from a script — a status, or no
//! answer for a while — then 200.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use ring::hmac;
use tokio::net::TcpListener;

/// How the receiver answers one request.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// This status, at once.
    Status(u16),
    /// 200, after this long (longer than the sender's timeout: no answer in time).
    After(Duration),
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// Its headers, by lower-case name.
    pub headers: HashMap<String, String>,
    /// Its body.
    pub body: Bytes,
    /// When its body had arrived.
    pub at: Instant,
    /// The status it was answered with.
    pub status: u16,
    /// Whether the answer was held back ([`Reply::After`]): the sender had given up.
    pub late: bool,
}

impl Received {
    /// A header's value (`""` when it is missing).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// The event id it carries (`Jammi-Event-Id`).
    pub fn event_id(&self) -> i64 {
        self.header("jammi-event-id").parse().unwrap_or(-1)
    }

    /// Its body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Whether its `Jammi-Signature` is the HMAC-SHA256, keyed with `secret`, of
    /// `{Jammi-Delivery-Id}.{Jammi-Timestamp}.{body}`, checked in constant time.
    pub fn signed_with(&self, secret: &str) -> bool {
        let Some(hex) = self.header("jammi-signature").strip_prefix("sha256=") else {
            return false;
        };
        let Some(tag) = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
        else {
            return false;
        };
        let mut signed = format!(
            "{}.{}.",
            self.header("jammi-delivery-id"),
            self.header("jammi-timestamp")
        )
        .into_bytes();
        signed.extend_from_slice(&self.body);
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        hmac::verify(&key, &signed, &tag).is_ok()
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<Reply>,
}

/// A running receiver; it stops when dropped.
pub struct Receiver {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    /// Starts a receiver on a free port of 127.0.0.1.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("its address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        answer(Arc::clone(&state), request)
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            address,
            state,
            server,
        }
    }

    /// The URL to give a webhook.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// Answers the next requests with `replies`, in order, then with 200 again.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.lock().script.extend(replies);
    }

    /// Every request so far, in the order they arrived.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// The requests answered 2xx in time so far, in order.
    pub fn acknowledged(&self) -> Vec<Received> {
        let received = self.received();
        received
            .into_iter()
            .filter(|r| (200..300).contains(&r.status) && !r.late)
            .collect()
    }

    /// Waits until `done` holds of the requests received, for at most `limit`; whether it
    /// came to hold.
    pub async fn wait_until(&self, limit: Duration, done: impl Fn(&[Received]) -> bool) -> bool {
        let start = Instant::now();
        loop {
            if done(&self.lock().received) {
                return true;
            }
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn answer(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let at = Instant::now();
    // Recorded as it arrives, with the answer it is going to get.
    let reply = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        let reply = state.script.pop_front().unwrap_or(Reply::Status(200));
        let (status, late) = match reply {
            Reply::Status(status) => (status, false),
            Reply::After(_) => (200, true),
        };
        state.received.push(Received {
            headers,
            body,
            at,
            status,
            late,
        });
        reply
    };
    let status = match reply {
        Reply::Status(status) => status,
        Reply::After(wait) => {
            tokio::time::sleep(wait).await;
            200
        }
    };
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    Ok(response)
}
