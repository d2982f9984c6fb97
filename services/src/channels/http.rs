//! The channel client: payd's HTTP/1.1 calls to its channels ([`super::wire`]), on hyper's
//! connection API with payd's own pool of kept-alive connections.
//!
//! Not reqwest, which the cold calls (webhooks, SMS, identity checks) keep using: a card
//! payment makes one channel call, and reqwest's per-call work (parsing the URL through the
//! `url` crate with IDNA, its retry and timeout layers, a request builder) was ≈ 4–6 µs of
//! the ≈ 60 µs a card payment costs beyond a balance payment (docs/BENCHMARKS.md, fifth
//! slice). Nor hyper-util's pooled client any more: it runs each connection as a task of its
//! own and hands every request and answer across a channel to it, so one call woke two tasks
//! and went through a pool keyed by a boxed, hashed key (docs/BENCHMARKS.md, session 33).
//! Here the calling task drives its connection itself while it waits for the answer, and a
//! connection at rest is polled by no one: it is checked when it is taken again.
//!
//! A call is an [`http::Uri`] (parsed by `http`, no IDNA: endpoints are validated when a
//! channel is configured), a JSON body written once, and one deadline around the connect,
//! the send and the whole answer. An answer's body is read up to a bound (a channel that
//! streams without end is an error, not memory growth).
//!
//! Only a request that was never written is sent again, once, on a new connection (when a
//! resting connection turns out closed): one that went out on a connection that then closed
//! without an answer is "no answer", since the channel may have acted on it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Context;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_util::either::Either;

/// The largest answer read from a channel call's body, except where a call says otherwise
/// (a statement download): charge, refund and payout answers are a few hundred bytes.
pub const ANSWER_BYTES_MAX: usize = 64 * 1024;

/// How long a connection may rest in the pool before it is closed rather than used.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Every this many calls, the whole pool is swept of connections idle too long (a channel
/// no longer called keeps none open for long).
const SWEEP_EVERY: u64 = 1024;

/// Kept-alive HTTP/1.1 connections to the channels, `http://` or `https://` (TLS by
/// [`crate::tls::client_config`]: the endpoint's certificate must chain to a trusted root and
/// name its host), straight to the endpoint (no proxy taken from the environment, which
/// reqwest would have honoured), idle connections closed after 90 s. A failed TLS handshake
/// is a failure to connect: no request was sent, so the channel cannot have acted on it.
///
/// Connections are pooled per endpoint and per thread: a socket is registered with the
/// reactor of the runtime that opened it (each HTTP worker runs its own), so a connection is
/// taken again only on the thread that opened it, where its readiness is seen without a
/// hop to another thread.
#[derive(Clone)]
pub struct ChannelHttp {
    inner: Arc<Inner>,
}

struct Inner {
    idle: Mutex<Pool>,
    idle_per_host: usize,
    connect_timeout: Duration,
    tls: tokio_rustls::TlsConnector,
}

#[derive(Default)]
struct Pool {
    by_key: HashMap<Key, Vec<Resting>>,
    calls: u64,
}

/// Where a connection goes: the thread that opened it, TLS or not, and `host:port`.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    thread: std::thread::ThreadId,
    tls: bool,
    authority: String,
}

struct Resting {
    conn: Conn,
    since: Instant,
}

/// One HTTP/1.1 connection: the handle requests are sent through, and the connection's
/// state machine, which whoever waits on it polls.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    driver: Pin<Box<http1::Connection<TokioIo<Stream>, Full<Bytes>>>>,
    /// The connection's state machine finished (closed by either side, or failed).
    done: bool,
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
    /// At most `idle_per_host` idle connections kept per channel (and HTTP worker); a
    /// connection attempt gives up after `connect_timeout`; `https://` endpoints are reached
    /// with `tls`.
    pub fn new(
        idle_per_host: usize,
        connect_timeout: Duration,
        tls: rustls::ClientConfig,
    ) -> ChannelHttp {
        ChannelHttp {
            inner: Arc::new(Inner {
                idle: Mutex::new(Pool::default()),
                idle_per_host,
                connect_timeout,
                tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            }),
        }
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

    /// Connections resting in the pool (all threads', all endpoints').
    #[cfg(test)]
    fn idle_connections(&self) -> usize {
        self.inner
            .idle
            .lock()
            .map_or(0, |pool| pool.by_key.values().map(Vec::len).sum())
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
        let tls = if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
            true
        } else if uri.scheme() == Some(&http::uri::Scheme::HTTP) {
            false
        } else {
            return Err(not_http(url));
        };
        let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
            return Err(not_http(url));
        };
        if host.is_empty() {
            return Err(not_http(url));
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        // An IPv6 literal is bracketed in a URL, not in a name to resolve or to check a
        // certificate against.
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_string();
        let key = Key {
            thread: std::thread::current().id(),
            tls,
            authority: authority.as_str().to_string(),
        };
        // Origin form on the wire, the authority in Host (as an HTTP/1.1 client sends it).
        let target = uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string();
        let mut request = Request::builder()
            .method(method)
            .uri(target)
            .header(hyper::header::HOST, authority.as_str());
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| CallError::Url(e.to_string()))?;
        let answer = async {
            let mut request = request;
            // A new connection's future (the lookup, the TLS handshake: ≈ 1.2 KiB) is boxed
            // where it is awaited: most calls take a resting connection, and inline it made
            // every call's future, and every future holding one, that much larger to move.
            let (mut conn, mut reused) = match self.checkout(&key) {
                Some(conn) => (conn, true),
                None => (Box::pin(self.connect(&host, port, tls)).await?, false),
            };
            let resp = loop {
                let sent = conn.sender.try_send_request(request);
                match conn.drive(sent).await {
                    Ok(resp) => break resp,
                    Err(mut e) => match e.take_message() {
                        // Never written (a resting connection the channel had just closed):
                        // nothing reached the channel, so it goes once more, on a new one.
                        Some(back) if reused => {
                            request = back;
                            conn = Box::pin(self.connect(&host, port, tls)).await?;
                            reused = false;
                        }
                        // A new connection closed before the request went out: as a refused
                        // connection, the channel never saw it.
                        Some(_) => {
                            return Err(CallError::Connect(format!(
                                "{authority}: closed before the request was sent: {}",
                                chain(&e.into_error())
                            )))
                        }
                        None => return Err(CallError::Io(chain(&e.into_error()))),
                    },
                }
            };
            let status = resp.status();
            let body = conn
                .drive(Limited::new(resp.into_body(), max).collect())
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        CallError::TooLarge(max)
                    } else {
                        CallError::Io(format!("reading the answer: {e}"))
                    }
                })?
                .to_bytes();
            self.checkin(key, conn);
            Ok(Reply { status, body })
        };
        tokio::time::timeout(timeout, answer)
            .await
            .map_err(|_| CallError::Timeout(timeout))?
    }

    /// A resting connection to `key` that is still open, if there is one; the closed and the
    /// stale are dropped on the way.
    fn checkout(&self, key: &Key) -> Option<Conn> {
        loop {
            // Taken out under the lock, checked outside it (the check may read the socket).
            let (mut conn, since) = {
                let mut pool = self.inner.idle.lock().ok()?;
                pool.calls = pool.calls.wrapping_add(1);
                let now = Instant::now();
                if pool.calls % SWEEP_EVERY == 0 {
                    pool.by_key.retain(|_, rest| {
                        rest.retain(|r| now.duration_since(r.since) < IDLE_TIMEOUT);
                        !rest.is_empty()
                    });
                }
                // The most recently used first: the likeliest to be open still.
                let Resting { conn, since } = pool.by_key.get_mut(key)?.pop()?;
                (conn, since)
            };
            if since.elapsed() >= IDLE_TIMEOUT {
                continue;
            }
            // Whatever happened while it rested (the channel closed it, sent something
            // unasked) is read now: a closed one finishes its state machine here.
            conn.poll_once();
            if !conn.done && conn.sender.is_ready() {
                return Some(conn);
            }
        }
    }

    /// Back to the pool once it can take another request (the answer read whole, no
    /// `Connection: close`), unless the pool has enough for this endpoint.
    fn checkin(&self, key: Key, mut conn: Conn) {
        if conn.done {
            return;
        }
        // The connection's state machine goes back to idle on its next poll after the
        // answer's end; that needs no I/O, so one turn decides.
        conn.poll_once();
        if conn.done || !conn.sender.is_ready() {
            return;
        }
        let Ok(mut pool) = self.inner.idle.lock() else {
            return;
        };
        let rest = pool.by_key.entry(key).or_default();
        if rest.len() < self.inner.idle_per_host {
            rest.push(Resting {
                conn,
                since: Instant::now(),
            });
        }
    }

    /// A new connection (TCP, then TLS for `https://`), within the connect timeout for the
    /// TCP part; every address the name resolves to is tried in turn.
    async fn connect(&self, host: &str, port: u16, tls: bool) -> Result<Conn, CallError> {
        let refused = |e: &dyn std::fmt::Display| CallError::Connect(format!("{host}:{port}: {e}"));
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| refused(&e))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for addr in addrs {
            match tokio::time::timeout(self.inner.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    tcp = Some(s);
                    break;
                }
                Ok(Err(e)) => last = Some(e.to_string()),
                Err(_) => {
                    last = Some(format!(
                        "no connection within {:?}",
                        self.inner.connect_timeout
                    ))
                }
            }
        }
        let Some(tcp) = tcp else {
            return Err(refused(&last.unwrap_or_else(|| "no address".to_string())));
        };
        let _ = tcp.set_nodelay(true);
        let stream = if tls {
            let name = rustls::pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| refused(&e))?;
            let tls = self.inner.tls.connect(name, tcp).await.map_err(|e| {
                CallError::Connect(crate::tls::failure(&e).unwrap_or_else(|| chain(&e)))
            })?;
            Either::Right(Box::new(tls))
        } else {
            Either::Left(tcp)
        };
        let (sender, driver) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CallError::Connect(chain(&e)))?;
        Ok(Conn {
            sender,
            driver: Box::pin(driver),
            done: false,
        })
    }
}

fn not_http(url: &str) -> CallError {
    CallError::Url(format!("{url} is not an http:// or https:// URL"))
}

impl Conn {
    /// Waits for `fut` (an answer, its body) while driving the connection that produces it.
    async fn drive<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            // The connection first: it writes what was queued and reads what arrived,
            // which is what readies `fut`.
            self.poll_driver(cx);
            fut.as_mut().poll(cx)
        })
        .await
    }

    fn poll_driver(&mut self, cx: &mut Context<'_>) {
        if !self.done && self.driver.as_mut().poll(cx).is_ready() {
            // Closed or failed: a request in flight hears of it through its own future.
            self.done = true;
        }
    }

    /// One turn of the connection's state machine, with no one to wake (the caller checks
    /// the outcome at once; the next poll registers its own waker).
    fn poll_once(&mut self) {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        self.poll_driver(&mut cx);
    }
}

/// A channel connection's byte stream: TCP, or TLS over TCP.
type Stream = Either<TcpStream, Box<tokio_rustls::client::TlsStream<TcpStream>>>;

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

    /// A server that answers each request it reads with `200 {"n": k}` (k counting from 1
    /// over the whole server), taking up to `per_connection` requests on a connection before
    /// closing it. Returns its URL and how many connections it accepted.
    async fn keep_alive_server(
        per_connection: usize,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                let served = served.clone();
                tokio::spawn(async move {
                    let mut pending = Vec::new();
                    let mut buf = [0u8; 4096];
                    for _ in 0..per_connection {
                        // One request: a head and no body (these tests GET).
                        let end = loop {
                            if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                                break end + 4;
                            }
                            let n = socket.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            pending.extend_from_slice(&buf[..n]);
                        };
                        pending.drain(..end);
                        let k = served.fetch_add(1, Ordering::SeqCst) + 1;
                        let body = format!("{{\"n\": {k}}}");
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    // Closed after its last answer, as a channel's idle timeout would.
                });
            }
        });
        (url, accepted)
    }

    fn n_of(reply: &Reply) -> u64 {
        reply.json::<serde_json::Value>().unwrap()["n"]
            .as_u64()
            .unwrap()
    }

    #[tokio::test]
    async fn calls_in_turn_share_one_kept_alive_connection() {
        let (url, accepted) = keep_alive_server(100).await;
        let http = client();
        for k in 1..=5 {
            let reply = http
                .get(&format!("{url}/charges/{k}"), Duration::from_secs(2))
                .await
                .unwrap();
            assert_eq!(n_of(&reply), k);
            assert_eq!(http.idle_connections(), 1);
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_channel_closed_while_it_rested_is_not_used() {
        // One answer per connection, then the server closes it: each call finds its
        // resting connection closed, drops it and opens another, and is answered.
        let (url, accepted) = keep_alive_server(1).await;
        let http = client();
        for k in 1..=3 {
            let reply = http
                .get(&format!("{url}/charges/{k}"), Duration::from_secs(2))
                .await
                .unwrap();
            assert_eq!(n_of(&reply), k);
            // Let the close arrive before the next call takes the connection.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_request_written_to_a_connection_that_then_closes_is_not_sent_again() {
        // The server reads the request and closes without answering: the channel may have
        // acted on it, so it is "no answer" (not a refusal, and not sent a second time).
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                drop(socket);
            }
        });
        let http = client();
        let err = http
            .post(
                &format!("{url}/charges"),
                Some(&serde_json::json!({"amount_minor": 5})),
                Duration::from_secs(2),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, CallError::Io(_)), "{err:?}");
        assert!(!err.is_connect());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(http.idle_connections(), 0);
    }

    #[tokio::test]
    async fn connections_rest_up_to_the_bound_per_endpoint() {
        let (url, accepted) = keep_alive_server(100).await;
        let http = ChannelHttp::new(
            2,
            Duration::from_secs(1),
            crate::tls::client_config(None).unwrap(),
        );
        // Five calls at once need five connections; two of them are kept.
        let calls = (0..5).map(|k| {
            let http = http.clone();
            let url = format!("{url}/charges/{k}");
            async move { http.get(&url, Duration::from_secs(2)).await }
        });
        for reply in futures_util::future::join_all(calls).await {
            assert!(reply.unwrap().answered());
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 5);
        assert_eq!(http.idle_connections(), 2);
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
