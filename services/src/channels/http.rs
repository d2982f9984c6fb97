//! The channel client: payd's HTTP/1.1 calls to its channels ([`super::wire`]), on hyper's
//! pooled client.
//!
//! Not reqwest, which the cold calls (webhooks, SMS, identity checks) keep using: a card
//! payment makes one channel call, and reqwest's per-call work (parsing the URL through the
//! `url` crate with IDNA, its retry and timeout layers, a request builder) was ≈ 4–6 µs of
//! the ≈ 60 µs a card payment costs beyond a balance payment (docs/BENCHMARKS.md, fifth
//! slice).
//! Here a call is an [`http::Uri`] (parsed by `http`, no IDNA: endpoints are validated when
//! a channel is configured), a JSON body written once, and one deadline around the send and
//! the whole answer. An answer's body is read up to a bound (a channel that streams without
//! end is an error, not memory growth).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// The largest answer read from a channel call's body, except where a call says otherwise
/// (a statement download): charge, refund and payout answers are a few hundred bytes.
pub const ANSWER_BYTES_MAX: usize = 64 * 1024;

/// Pooled HTTP/1.1 connections to the channels, `http://` or `https://` (TLS by
/// [`crate::tls::client_config`]: the endpoint's certificate must chain to a trusted root and
/// name its host), straight to the endpoint (no proxy taken from the environment, which
/// reqwest would have honoured), idle connections closed after 90 s. A failed TLS handshake
/// is a failure to connect: no request was sent, so the channel cannot have acted on it.
#[derive(Clone)]
pub struct ChannelHttp {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// Why a call has no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The URL is not an absolute `http://` or `https://` one.
    #[error("invalid URL: {0}")]
    Url(String),
    /// No connection was made (refused, unreachable, or a TLS handshake that failed: an
    /// untrusted or misnamed certificate): the channel never saw the request.
    #[error("could not connect: {0}")]
    Connect(String),
    /// Sent (or maybe sent), and no whole answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(String),
    /// The answer's body is over the bound the call set.
    #[error("an answer over {0} bytes")]
    TooLarge(usize),
}

impl CallError {
    /// The request never reached the channel (nothing there can have happened).
    pub fn is_connect(&self) -> bool {
        matches!(self, CallError::Connect(_) | CallError::Url(_))
    }
}

/// A channel's answer: its status and its whole body. The flows ask what the channel
/// protocol ([`super::wire`]) distinguishes; HTTP's status codes stay in this module.
#[derive(Debug)]
pub struct Reply {
    status: StatusCode,
    pub body: Bytes,
}

impl Reply {
    /// A 2xx: the body is the answer.
    pub fn answered(&self) -> bool {
        self.status.is_success()
    }

    /// 404: the channel does not know the request (it never reached it).
    pub fn unknown(&self) -> bool {
        self.status == StatusCode::NOT_FOUND
    }

    /// 409: refused for the state the request found (a void of a captured charge).
    pub fn conflict(&self) -> bool {
        self.status == StatusCode::CONFLICT
    }

    /// The status's number, for messages.
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.body)
    }
}

impl ChannelHttp {
    /// At most `idle_per_host` idle connections kept per channel; a connection attempt gives
    /// up after `connect_timeout`; `https://` endpoints are reached with `tls`.
    pub fn new(
        idle_per_host: usize,
        connect_timeout: Duration,
        tls: rustls::ClientConfig,
    ) -> ChannelHttp {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(connector);
        ChannelHttp { client }
    }

    /// `GET url`, its answer within `timeout`.
    pub async fn get(&self, url: &str, timeout: Duration) -> Result<Reply, CallError> {
        self.call(Method::GET, url, None, timeout, ANSWER_BYTES_MAX)
            .await
    }

    /// `GET url` with a larger answer allowed (up to `max` bytes).
    pub async fn get_large(
        &self,
        url: &str,
        timeout: Duration,
        max: usize,
    ) -> Result<Reply, CallError> {
        self.call(Method::GET, url, None, timeout, max).await
    }

    /// `POST url` with `body` as JSON (or no body), its answer within `timeout`.
    pub async fn post<T: serde::Serialize>(
        &self,
        url: &str,
        body: Option<&T>,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| CallError::Io(format!("encoding the request: {e}")))?;
        self.call(Method::POST, url, body, timeout, ANSWER_BYTES_MAX)
            .await
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
        max: usize,
    ) -> Result<Reply, CallError> {
        let uri: hyper::Uri = url.parse().map_err(|e| CallError::Url(format!("{e}")))?;
        let scheme = uri.scheme();
        if !(scheme == Some(&http::uri::Scheme::HTTP) || scheme == Some(&http::uri::Scheme::HTTPS))
            || uri.host().is_none()
        {
            return Err(CallError::Url(format!(
                "{url} is not an http:// or https:// URL"
            )));
        }
        let mut request = Request::builder().method(method).uri(uri);
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| CallError::Url(e.to_string()))?;
        let answer = async {
            let resp = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    CallError::Connect(crate::tls::failure(&e).unwrap_or_else(|| chain(&e)))
                } else {
                    CallError::Io(e.to_string())
                }
            })?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), max)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        CallError::TooLarge(max)
                    } else {
                        CallError::Io(format!("reading the answer: {e}"))
                    }
                })?
                .to_bytes();
            Ok(Reply { status, body })
        };
        tokio::time::timeout(timeout, answer)
            .await
            .map_err(|_| CallError::Timeout(timeout))?
    }
}

/// An error and what caused it, "a: b: c" (hyper's own message is only "client error
/// (Connect)").
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        text.push_str(": ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-connection server: reads one request, then writes `answer` (if any) and keeps
    /// the connection open for a while. Returns its URL and the request it read.
    async fn server(answer: Option<Vec<u8>>) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            // The head, then as many body bytes as its Content-Length says.
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            let whole = |r: &[u8]| {
                let end = r.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
                let head = String::from_utf8_lossy(&r[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                (r.len() >= end + len).then_some(())
            };
            while whole(&request).is_none() {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            if let Some(answer) = answer {
                let _ = socket.write_all(&answer).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            request
        });
        (url, task)
    }

    fn client() -> ChannelHttp {
        ChannelHttp::new(
            4,
            Duration::from_secs(1),
            crate::tls::client_config(None).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_call_sends_json_and_reads_the_whole_answer() {
        let (url, seen) = server(Some(
            b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"ok\": true}\n".to_vec(),
        ))
        .await;
        let reply = client()
            .post(
                &format!("{url}/charges"),
                Some(&serde_json::json!({"amount_minor": 5})),
                Duration::from_secs(2),
            )
            .await
            .unwrap();
        assert!(reply.answered());
        assert_eq!(reply.status(), 200);
        assert_eq!(
            reply.json::<serde_json::Value>().unwrap(),
            serde_json::json!({"ok": true})
        );
        let request = String::from_utf8(seen.await.unwrap()).unwrap();
        assert!(
            request.starts_with("POST /charges HTTP/1.1\r\n"),
            "{request}"
        );
        let lower = request.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: application/json\r\n"),
            "{request}"
        );
        assert!(lower.contains("content-length: 18\r\n"), "{request}");
        assert!(request.ends_with("{\"amount_minor\":5}"), "{request}");
    }

    #[tokio::test]
    async fn no_answer_within_the_deadline_is_a_timeout_not_a_refusal() {
        let (url, _seen) = server(None).await;
        let err = client()
            .get(&format!("{url}/charges/x"), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, CallError::Timeout(_)), "{err:?}");
        assert!(!err.is_connect());
    }

    #[tokio::test]
    async fn an_answer_over_the_bound_is_refused() {
        let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec();
        answer.extend(std::iter::repeat_n(b'x', 100_000));
        let (url, _seen) = server(Some(answer)).await;
        let http = client();
        let err = http
            .get(&format!("{url}/statements"), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CallError::TooLarge(ANSWER_BYTES_MAX)),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_and_a_bad_url_never_reach_a_channel() {
        // A port nothing listens on: bind one, then close it.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let http = client();
        let err = http
            .get(
                &format!("http://127.0.0.1:{port}/x"),
                Duration::from_secs(2),
            )
            .await
            .unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        // Nothing listens there for TLS either: refused before any handshake.
        let err = http
            .get(
                &format!("https://127.0.0.1:{port}/x"),
                Duration::from_secs(2),
            )
            .await
            .unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        for url in [
            "ftp://127.0.0.1:1/x",
            "127.0.0.1:1/x",
            "http:///x",
            "not a url",
        ] {
            let err = http.get(url, Duration::from_secs(2)).await.unwrap_err();
            assert!(matches!(err, CallError::Url(_)), "{url}: {err:?}");
        }
    }
}
