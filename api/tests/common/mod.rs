//! Runs the real `payd` binary on a temporary data dir and talks HTTP/1.1 to it over TCP, so
//! that tests can also send what no well-behaved client library would (bad headers, slow or
//! oversized bodies).
#![allow(dead_code)] // each test file uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const ADMIN: &str = "adm_test_token_0123456789abcdef";

pub struct Payd {
    pub child: Child,
    pub addr: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Payd {
    /// Starts payd on a fresh temp dir with the test admin token, and waits until ready.
    pub fn start() -> Payd {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut p = Payd::start_in(&dir, &[("RONGPAY_ADMIN_TOKEN", ADMIN)]);
        p._tmp = Some(tmp);
        p
    }

    /// Starts payd on `dir` with extra environment variables, and waits until ready.
    /// [`Payd::start_in`] with the admin token and the rate limits out of the way (tests
    /// of races send hundreds of requests at once).
    pub fn start_unthrottled(dir: &Path) -> Payd {
        let mut env = vec![("RONGPAY_ADMIN_TOKEN", ADMIN)];
        for limit in ["PAYER", "MERCHANT", "IP"] {
            for (kind, value) in [("BURST", "100000"), ("PER_S", "100000")] {
                let name: &'static str =
                    Box::leak(format!("RONGPAY_RATE_{limit}_{kind}").into_boxed_str());
                env.push((name, value));
            }
        }
        Payd::start_in(dir, &env)
    }

    pub fn start_in(dir: &Path, env: &[(&str, &str)]) -> Payd {
        Payd::start_on_a_free_port(|addr| Payd::spawn_at(dir, addr, env))
    }

    /// Spawns payd on a port the kernel had free and waits until it is ready; again on
    /// another port if it exited first. The port is free when looked up, but payd binds it
    /// a moment later, and meanwhile another test's process may be handed it by the kernel
    /// (a simulator's channel): payd then exits with "address in use".
    fn start_on_a_free_port(spawn: impl Fn(&str) -> Payd) -> Payd {
        let mut exits = Vec::new();
        for _ in 0..3 {
            let mut p = spawn(&format!("127.0.0.1:{}", free_port()));
            match p.ready_or_exited() {
                None => return p,
                Some(status) => exits.push(format!("{} on {}", status, p.addr)),
            }
        }
        panic!("payd exited before it was ready, three times: {exits:?}");
    }

    /// Waits until payd answers `/readyz`; its exit status if it exited first.
    fn ready_or_exited(&mut self) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = try_request(&self.addr, "GET", "/readyz", &[], b"") {
                if r.status == 200 {
                    return None;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("payd did not become ready");
    }

    /// Starts payd on `dir` and returns once it was spawned (it may not even listen yet).
    pub fn spawn_in(dir: &Path, env: &[(&str, &str)]) -> Payd {
        Payd::spawn_at(dir, &format!("127.0.0.1:{}", free_port()), env)
    }

    /// Starts payd on `dir` listening on `addr`, without waiting.
    pub fn spawn_at(dir: &Path, addr: &str, env: &[(&str, &str)]) -> Payd {
        Payd::spawn_full(dir, addr, env, Stdio::piped(), Stdio::null(), None)
    }

    /// Starts payd on `dir` with its stderr (the JSON log) going to `stderr`, without waiting.
    pub fn spawn_with_stderr(dir: &Path, env: &[(&str, &str)], stderr: Stdio) -> Payd {
        let addr = format!("127.0.0.1:{}", free_port());
        Payd::spawn_full(dir, &addr, env, Stdio::piped(), stderr, None)
    }

    /// Starts payd on `dir` with a config file, and waits until ready.
    pub fn start_with_config(dir: &Path, env: &[(&str, &str)], config: &Path) -> Payd {
        Payd::start_on_a_free_port(|addr| {
            Payd::spawn_full(dir, addr, env, Stdio::piped(), Stdio::null(), Some(config))
        })
    }

    /// Starts payd on `dir` with stdout and stderr (its logs) appended to `log`, and waits
    /// until ready.
    pub fn start_logging(dir: &Path, env: &[(&str, &str)], log: &Path) -> Payd {
        let file = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap()
        };
        Payd::start_on_a_free_port(|addr| {
            Payd::spawn_full(dir, addr, env, file().into(), file().into(), None)
        })
    }

    fn spawn_full(
        dir: &Path,
        addr: &str,
        env: &[(&str, &str)],
        stdout: Stdio,
        stderr: Stdio,
        config: Option<&Path>,
    ) -> Payd {
        let addr = addr.to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_payd"));
        cmd.args(["serve", "--data-dir"])
            .arg(dir)
            .args(["--listen", &addr]);
        if let Some(file) = config {
            cmd.arg("--config").arg(file);
        }
        cmd.env_remove("RONGPAY_ADMIN_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.stdout(stdout).stderr(stderr).spawn().unwrap();
        Payd {
            child,
            addr,
            dir: dir.to_path_buf(),
            _tmp: None,
        }
    }

    /// Waits until payd answers `/readyz`; fails at once if it exits first.
    pub fn wait_ready(&mut self) {
        if let Some(status) = self.ready_or_exited() {
            panic!("payd exited before it was ready: {status}");
        }
    }

    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        try_request(&self.addr, method, path, headers, body).unwrap()
    }

    /// An admin JSON request.
    pub fn admin(&self, method: &str, path: &str, body: &str) -> Response {
        let auth = format!("Bearer {ADMIN}");
        self.req(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    }

    /// A JSON POST with `token`, and an `Idempotency-Key` when given.
    pub fn post(&self, token: &str, path: &str, key: Option<&str>, body: &str) -> Response {
        let auth = format!("Bearer {token}");
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(k) = key {
            headers.push(("Idempotency-Key", k));
        }
        self.req("POST", path, &headers, body.as_bytes())
    }

    /// An account's balance as the admin reads it.
    pub fn balance(&self, account: &str) -> String {
        self.admin("GET", &format!("/v1/accounts/{account}"), "")
            .json()["balance"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        unsafe_kill(self.child.id(), 15);
        self.child.wait().unwrap()
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Everything payd printed on stdout so far (read after it exited).
    pub fn stdout(child: &mut Child) -> String {
        let mut out = String::new();
        if let Some(mut s) = child.stdout.take() {
            s.read_to_string(&mut out).unwrap();
        }
        out
    }
}

impl Drop for Payd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: u32, signal: i32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The error code of an error answer, checking the contract's shape on the way.
    pub fn error_code(&self) -> String {
        let v = self.json();
        let e = &v["error"];
        assert!(
            e["type"].is_string() && e["message"].is_string(),
            "error shape: {v}"
        );
        e["code"].as_str().unwrap().to_string()
    }
}

/// A merchant made through the API: its secret key, id and balance account.
pub struct Shop {
    pub key: String,
    pub id: String,
    pub account: String,
}

/// Creates a merchant (admin) with `body`.
pub fn merchant(p: &Payd, body: &str) -> Shop {
    let r = p.admin("POST", "/v1/merchants", body);
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let m = r.json();
    Shop {
        key: m["secret_key"].as_str().unwrap().to_string(),
        id: m["id"].as_str().unwrap().to_string(),
        account: m["account_id"].as_str().unwrap().to_string(),
    }
}

/// A new, empty CNY account (admin): its id.
pub fn empty_account(p: &Payd) -> String {
    let a = p
        .admin("POST", "/v1/accounts", r#"{"currency":"CNY"}"#)
        .json();
    a["id"].as_str().unwrap().to_string()
}

/// A new CNY account holding `amount` from a deposit.
pub fn funded_account(p: &Payd, amount: &str) -> String {
    let id = empty_account(p);
    assert_eq!(
        p.admin(
            "POST",
            &format!("/v1/accounts/{id}/deposits"),
            &format!(r#"{{"amount":"{amount}"}}"#)
        )
        .status,
        201
    );
    id
}

/// A balance payment by merchant key `key` from `payer`.
pub fn pay(p: &Payd, key: &str, otn: &str, amount: &str, payer: &str) -> Response {
    let body = format!(
        r#"{{"out_trade_no":"{otn}","amount":"{amount}","currency":"CNY","payment_method":{{"type":"balance","account_id":"{payer}"}},"metadata":{{"order":"{otn}"}}}}"#
    );
    let auth = format!("Bearer {key}");
    p.req(
        "POST",
        "/v1/payments",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

/// One request on a fresh connection (`Connection: close`), with the given raw body.
pub fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(head.as_bytes())?;
    // A server may answer (413) before reading the whole body; keep going if it does.
    let _ = stream.write_all(body);
    read_response(stream)
}

pub fn read_response(stream: TcpStream) -> std::io::Result<Response> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        reader.read_line(&mut l)?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut body = Vec::new();
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    match len {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body)?;
        }
        None if chunked => loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|e| std::io::Error::other(format!("bad chunk size {size:?}: {e}")))?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        },
        None => {
            reader.read_to_end(&mut body)?;
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// A running `channel-sim`.
pub struct Sim {
    pub child: Child,
    pub control: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A tooling binary (`channel-sim`, `sms-sim`, `identity-sim`: the `rongpay-sims` crate, which payd does not
/// depend on) beside payd in the target dir. `cargo test --workspace` builds it (the sims
/// crate has integration tests, so cargo builds its binaries); testing this crate alone
/// needs `cargo build --release -p rongpay-sims` first.
pub fn tool(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_payd")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release -p rongpay-sims` (or test the whole workspace)",
        path.display()
    );
    path
}

impl Sim {
    pub fn start(channels: &[&str]) -> Sim {
        Sim::start_with(channels, &[])
    }

    /// With more command-line arguments (`--tls-cert …`).
    /// On a control port the kernel had free; on another if the sim exited first (another
    /// process was handed the port meanwhile, as for [`Payd::start_in`]).
    pub fn start_with(channels: &[&str], args: &[&str]) -> Sim {
        let mut exits = Vec::new();
        for _ in 0..3 {
            let control = free_addr();
            let mut cmd = Command::new(tool("channel-sim"));
            cmd.args(["--listen", &control]).args(args);
            for c in channels {
                cmd.args(["--channel", c]);
            }
            let child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut sim = Sim { child, control };
            let deadline = Instant::now() + Duration::from_secs(20);
            let exited = loop {
                if try_request(&sim.control, "GET", "/_sim/channels", &[], b"").is_ok() {
                    break None;
                }
                if let Ok(Some(status)) = sim.child.try_wait() {
                    break Some(status);
                }
                assert!(Instant::now() < deadline, "channel-sim did not start");
                std::thread::sleep(Duration::from_millis(20));
            };
            match exited {
                None => return sim,
                Some(status) => exits.push(format!("{status} on {}", sim.control)),
            }
        }
        panic!("channel-sim exited before it answered, three times: {exits:?}");
    }

    pub fn put(&self, name: &str, settings: Value) -> Value {
        let r = json_request(
            &self.control,
            "PUT",
            &format!("/_sim/channels/{name}"),
            &settings,
        );
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// The channel's address (host:port).
    pub fn addr(&self, name: &str) -> String {
        self.put(name, json!({}))["url"]
            .as_str()
            .unwrap()
            .trim_start_matches("http://")
            .to_string()
    }

    pub fn records(&self, name: &str) -> Vec<Value> {
        let r = try_request(
            &self.control,
            "GET",
            &format!("/_sim/channels/{name}/records"),
            &[],
            b"",
        )
        .unwrap();
        r.json()["data"].as_array().unwrap().clone()
    }
}

pub fn json_request(addr: &str, method: &str, path: &str, body: &Value) -> Response {
    try_request(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .unwrap()
}

// Channels and card payments (shared by the card, metrics and ops tests).

/// A card payment's routing attempts: (channel, outcome) in order.
pub fn outcomes(v: &Value) -> Vec<(String, String)> {
    v["routing"]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["channel"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A request's headers (names lowercased) and body.
pub type Request = (std::collections::BTreeMap<String, String>, Vec<u8>);

/// One HTTP/1.1 request read off a connection by a test's own receiver: its headers and its
/// body (`Content-Length` framed). `None` when the peer closed first.
pub fn read_request<R: BufRead>(reader: &mut R) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut headers = std::collections::BTreeMap::new();
    loop {
        let mut l = String::new();
        reader.read_line(&mut l)?;
        let l = l.trim_end().to_string();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok(Some((headers, body)))
}

/// The `Rongpay-Signature` a webhook delivery of `body` signed with `secret` carries, at the
/// time its own `signature` header names (`t=…`).
pub fn webhook_signature(secret: &str, signature: &str, body: &str) -> String {
    let t = signature
        .split(',')
        .next()
        .unwrap()
        .trim_start_matches("t=");
    services::signature::sign(secret.as_bytes(), t.parse().unwrap(), body.as_bytes())
}

/// Sets the merchant `key`'s webhook endpoint to `url`; returns its signing secret.
pub fn set_endpoint(p: &Payd, key: &str, url: &str) -> String {
    let auth = format!("Bearer {key}");
    let r = p.req(
        "PUT",
        "/v1/webhook_endpoint",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        format!(r#"{{"url":"{url}"}}"#).as_bytes(),
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
    r.json()["secret"].as_str().unwrap().to_string()
}

/// Adds a CNY card channel at `url`.
pub fn channel(p: &Payd, name: &str, url: &str, fee_rate: &str) -> Value {
    let r = p.post(
        ADMIN,
        "/v1/channels",
        None,
        &format!(
            r#"{{"name":"{name}","endpoint":"{url}","methods":["bank_card"],"currency":"CNY",
                "fee_rate":"{fee_rate}","max_amount":"50000.00","daily_limit":"1000000.00"}}"#
        ),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

pub fn channels(p: &Payd) -> Vec<Value> {
    p.admin("GET", "/v1/channels", "").json()["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Tokenizes `number` (valid through a future month) for the merchant `key`.
pub fn tokenize(p: &Payd, key: &str, number: &str) -> String {
    let r = p.post(
        key,
        "/v1/cards",
        None,
        &format!(
            r#"{{"card_number":"{number}","exp_month":12,"exp_year":2031,"holder":"Li Lei"}}"#
        ),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()["card_token"].as_str().unwrap().to_string()
}

pub fn card_pay(p: &Payd, key: &str, otn: &str, amount: &str, token: &str) -> Value {
    let r = p.post(
        key,
        "/v1/payments",
        None,
        &format!(
            r#"{{"out_trade_no":"{otn}","amount":"{amount}","currency":"CNY","payment_method":{{"type":"bank_card","card_token":"{token}"}}}}"#
        ),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// The payment, once it is no longer processing (within 20 s).
pub fn settled(p: &Payd, key: &str, id: &str) -> Value {
    settled_at(p, key, &format!("/v1/payments/{id}"))
}

/// Polls `path` (a payment or a refund) until it is no longer processing.
pub fn settled_at(p: &Payd, key: &str, path: &str) -> Value {
    let auth = format!("Bearer {key}");
    let id = path;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = p.req("GET", path, &[("Authorization", &auth)], b"").json();
        if now["status"] != "processing" {
            return now;
        }
        assert!(Instant::now() < deadline, "{id} was never resolved");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `sms-sim` (the SMS gateway simulator).
pub struct SmsSim {
    pub child: Child,
    pub addr: String,
    pub key: String,
}

impl Drop for SmsSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmsSim {
    pub fn start() -> SmsSim {
        let addr = free_addr();
        let key = "sms_test_key_0123456789abcdef".to_string();
        let child = Command::new(tool("sms-sim"))
            .args(["--listen", &addr, "--key", &key, "--receipt-delay-ms", "20"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let sim = SmsSim { child, addr, key };
        let deadline = Instant::now() + Duration::from_secs(20);
        while try_request(&sim.addr, "GET", "/_sim/messages", &[], b"").is_err() {
            assert!(Instant::now() < deadline, "sms-sim did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        sim
    }

    /// payd's settings for this gateway.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("RONGPAY_SMS_GATEWAY_URL", format!("http://{}", self.addr)),
            ("RONGPAY_SMS_GATEWAY_KEY", self.key.clone()),
        ]
    }

    /// Messages that reached the handset `to` (every one with `None`).
    pub fn messages(&self, to: Option<&str>) -> Vec<Value> {
        let path = match to {
            Some(to) => format!("/_sim/messages?to={}", to.replace('+', "%2B")),
            None => "/_sim/messages".to_string(),
        };
        try_request(&self.addr, "GET", &path, &[], b"")
            .unwrap()
            .json()["data"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn set(&self, settings: Value) {
        let r = json_request(&self.addr, "PUT", "/_sim/settings", &settings);
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    }

    /// The six digits of the last one-time code that reached `phone` (waits up to 10 s).
    pub fn last_code(&self, phone: &str) -> String {
        let mut code = String::new();
        eventually(10, "the code reaches the handset", || {
            code = self
                .messages(Some(phone))
                .last()
                .and_then(|m| {
                    m["text"]
                        .as_str()
                        .unwrap()
                        .split(|c: char| !c.is_ascii_digit())
                        .find(|w| w.len() == 6)
                        .map(str::to_string)
                })
                .unwrap_or_default();
            code.len() == 6
        });
        code
    }
}

/// A running `identity-sim` (the identity service simulator).
pub struct IdentitySim {
    pub child: Child,
    pub addr: String,
    pub key: String,
}

impl Drop for IdentitySim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl IdentitySim {
    pub fn start() -> IdentitySim {
        let addr = free_addr();
        let key = "idv_test_key_0123456789abcdef".to_string();
        let child = Command::new(tool("identity-sim"))
            .args(["--listen", &addr, "--key", &key])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let sim = IdentitySim { child, addr, key };
        let deadline = Instant::now() + Duration::from_secs(20);
        while try_request(&sim.addr, "GET", "/_sim/checks", &[], b"").is_err() {
            assert!(Instant::now() < deadline, "identity-sim did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        sim
    }

    /// payd's settings for this service.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("RONGPAY_IDENTITY_URL", format!("http://{}", self.addr)),
            ("RONGPAY_IDENTITY_KEY", self.key.clone()),
        ]
    }

    /// Adds a person to the service's register.
    pub fn add(&self, id_number: &str, name: &str) {
        let r = json_request(
            &self.addr,
            "POST",
            "/_sim/people",
            &serde_json::json!({"id_number": id_number, "name": name}),
        );
        assert_eq!(r.status, 201);
    }

    pub fn set(&self, settings: Value) {
        let r = json_request(&self.addr, "PUT", "/_sim/settings", &settings);
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    }

    /// The checks answered (reference, result) and how many were refused while down.
    pub fn checks(&self) -> Value {
        try_request(&self.addr, "GET", "/_sim/checks", &[], b"")
            .unwrap()
            .json()
    }
}

/// Waits up to `secs` for `f` to hold, polling every 50 ms.
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Prometheus and Alertmanager as `scripts/ops.sh` runs them, against `payd`, with short
/// intervals (1 s scrapes and evaluations, 1 s group wait).
pub struct Ops {
    pub child: Child,
    pub prometheus: String,
    pub alertmanager: String,
    pub dir: PathBuf,
}

impl Ops {
    pub fn start(payd: &Payd, dir: &Path) -> Ops {
        let prometheus = free_addr();
        let alertmanager = free_addr();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ops.sh");
        let child = Command::new("bash")
            .arg(script)
            .args(["--payd", &payd.addr, "--data-dir"])
            .arg(&payd.dir)
            .arg("--dir")
            .arg(dir)
            .env("RONGPAY_OPS_PROMETHEUS", &prometheus)
            .env("RONGPAY_OPS_ALERTMANAGER", &alertmanager)
            .env("RONGPAY_OPS_SCRAPE_INTERVAL", "1s")
            .env("RONGPAY_OPS_GROUP_WAIT", "1s")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ops = Ops {
            child,
            prometheus,
            alertmanager,
            dir: dir.to_path_buf(),
        };
        eventually(60, "Prometheus and Alertmanager to answer", || {
            try_request(&ops.prometheus, "GET", "/-/ready", &[], b"").is_ok_and(|r| r.status == 200)
                && try_request(&ops.alertmanager, "GET", "/-/ready", &[], b"")
                    .is_ok_and(|r| r.status == 200)
        });
        ops
    }

    /// An instant query's result vector.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let r = try_request(
            &self.prometheus,
            "GET",
            &format!("/api/v1/query?query={encoded}"),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["data"]["result"].as_array().unwrap().clone()
    }

    pub fn log(&self, which: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{which}.log"))).unwrap_or_default()
    }
}

impl Drop for Ops {
    fn drop(&mut self) {
        // SIGTERM: the script's trap stops Prometheus and Alertmanager (SIGKILL would orphan them).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Every file under `dir` (recursively), read whole: (path, bytes).
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

// The general ledger and the day-end (shared by the GL, settlement, payout and transfer tests).

/// The balance of GL account `code` in CNY as `GET /v1/gl/accounts` shows it.
pub fn gl_balance(p: &Payd, code: &str) -> String {
    let r = p.admin("GET", "/v1/gl/accounts", "");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let row = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == code && a["currency"] == "CNY")
        .unwrap_or_else(|| panic!("no GL account {code}: {v}"))
        .clone();
    row["balance"].as_str().unwrap().to_string()
}

/// The open business date.
pub fn open_date(p: &Payd) -> String {
    p.admin("GET", "/v1/gl/business_date", "").json()["business_date"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Closes the open date and waits for its day-end, which must finish done with the date's
/// trial balance balanced; answers the date closed.
pub fn close_day(p: &Payd) -> String {
    let date = open_date(p);
    let r = p.admin("POST", "/v1/gl/day_end", "{}");
    assert_eq!(r.status, 202, "{:?}", String::from_utf8_lossy(&r.body));
    let mut last = Value::Null;
    eventually(120, "the day-end finishes", || {
        last = p.admin("GET", &format!("/v1/gl/day_end/{date}"), "").json();
        last["status"] != "running"
    });
    assert_eq!(last["status"], "done", "{last:#}");
    let tb = p
        .admin("GET", &format!("/v1/gl/trial_balance?date={date}"), "")
        .json();
    assert_eq!(tb["balanced"], true, "{tb}");
    date
}

/// The platform's equity account (GL 3001) in CNY.
pub const EQUITY: &str = "acct_ffffffff00000000000000000008009c";
/// The platform's default reserve account (GL 1001, the customer-funds account) in CNY.
pub const RESERVE: &str = "acct_ffffffff00000000000000000001009c";

/// The platform puts `amount` of its own capital into the reserve (a manual GL entry: debit
/// the reserve, credit equity): what covers merchants' carried shortfalls, so the day-end's
/// coverage check holds.
pub fn seed_equity(p: &Payd, amount: &str) {
    let r = p.admin(
        "POST",
        "/v1/gl/entries",
        &format!(
            r#"{{"currency":"CNY","memo":"platform capital into the reserve","legs":[{{"account_id":"{RESERVE}","debit":"{amount}"}},{{"account_id":"{EQUITY}","credit":"{amount}"}}]}}"#
        ),
    );
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
}

/// A two-decimal amount as the API prints it ("-12.34") in minor units.
pub fn cents(text: &str) -> i64 {
    let neg = text.starts_with('-');
    let t = text.trim_start_matches('-');
    let (a, b) = t.split_once('.').unwrap();
    let v = a.parse::<i64>().unwrap() * 100 + b.parse::<i64>().unwrap();
    if neg {
        -v
    } else {
        v
    }
}
