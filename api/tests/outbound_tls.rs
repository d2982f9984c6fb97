//! payd's outbound HTTPS against the real payd, the real channel-sim serving TLS, and an
//! HTTPS webhook receiver, with a CA and server certificates made at test time by the
//! `openssl` CLI: a card payment is charged over TLS and its webhook delivered over TLS when
//! `outbound_tls_ca_file` trusts the CA; with a certificate that does not name the host, or
//! without that CA, nothing is sent (no charge at the channel, no delivery) and the reason is
//! said; a CA file that does not parse stops payd at start.

use std::io::{BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and two server certificates it signed: `localhost` (DNS:localhost,
/// IP:127.0.0.1) and `elsewhere` (DNS:elsewhere.example only). Files `<name>.pem`,
/// `<name>.key` in `dir`.
fn pki(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-days",
        "2",
        "-subj",
        "/CN=rongpay test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&ca, dir);
    for (name, san) in [
        ("localhost", "DNS:localhost,IP:127.0.0.1"),
        ("elsewhere", "DNS:elsewhere.example"),
    ] {
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend([
            "-subj",
            "/CN=rongpay test server",
            "-keyout",
            &key,
            "-out",
            &csr,
        ]);
        openssl(&req, dir);
        std::fs::write(
            dir.join(&ext),
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName={san}\n"
            ),
        )
        .unwrap();
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
            dir,
        );
    }
}

#[derive(Clone, Debug)]
struct Delivery {
    signature: String,
    body: String,
}

/// An HTTPS webhook receiver on loopback (rustls, the certificate `name` of [`pki`]): what
/// it took (each answered 200), and the handshakes that failed with what the peer said.
struct Receiver {
    addr: String,
    taken: Arc<Mutex<Vec<Delivery>>>,
    failed_handshakes: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start(dir: &Path, name: &str) -> Receiver {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join(format!("{name}.pem")))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join(format!("{name}.key"))).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let taken = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let (t, f) = (taken.clone(), failed.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, t, f) = (config.clone(), t.clone(), f.clone());
                std::thread::spawn(move || {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    while tls.conn.is_handshaking() {
                        if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
                            f.lock().unwrap().push(e.to_string());
                            return;
                        }
                    }
                    let _ = serve(BufReader::new(tls), &t);
                });
            }
        });
        Receiver {
            addr,
            taken,
            failed_handshakes: failed,
        }
    }

    fn url(&self) -> String {
        format!("https://{}/hooks", self.addr)
    }

    fn taken(&self) -> Vec<Delivery> {
        self.taken.lock().unwrap().clone()
    }

    fn failed_handshakes(&self) -> Vec<String> {
        self.failed_handshakes.lock().unwrap().clone()
    }
}

/// Reads requests off one connection and answers each 200.
fn serve<S: Read + Write>(
    mut reader: BufReader<S>,
    taken: &Mutex<Vec<Delivery>>,
) -> std::io::Result<()> {
    while let Some((headers, body)) = read_request(&mut reader)? {
        taken.lock().unwrap().push(Delivery {
            signature: headers
                .get("rongpay-signature")
                .cloned()
                .unwrap_or_default(),
            body: String::from_utf8_lossy(&body).to_string(),
        });
        let out = reader.get_mut();
        out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")?;
        out.flush()?;
    }
    Ok(())
}

/// The last error of the first event about `object`, once a delivery of it has failed
/// (within 10 s).
fn delivery_error(p: &Payd, key: &str, object: &str) -> String {
    let mut last_error = String::new();
    eventually(10, "a failed delivery", || {
        last_error = events_of(p, key, object)
            .first()
            .and_then(|e| e["last_error"].as_str())
            .unwrap_or_default()
            .to_string();
        !last_error.is_empty()
    });
    last_error
}

/// The merchant's events about `object` (a payment id).
fn events_of(p: &Payd, key: &str, object: &str) -> Vec<Value> {
    let auth = format!("Bearer {key}");
    let page = p
        .req("GET", "/v1/events", &[("Authorization", &auth)], b"")
        .json();
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["object_id"] == object)
        .cloned()
        .collect()
}

#[test]
fn charges_and_webhooks_go_over_verified_tls_and_an_untrusted_peer_gets_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("pki");
    std::fs::create_dir_all(&certs).unwrap();
    pki(&certs);
    let ca: PathBuf = certs.join("ca.pem");
    let ca = ca.to_str().unwrap();

    let sim = Sim::start_with(
        &["bank"],
        &[
            "--tls-cert",
            certs.join("localhost.pem").to_str().unwrap(),
            "--tls-key",
            certs.join("localhost.key").to_str().unwrap(),
        ],
    );
    let bank_url = sim.put("bank", json!({}))["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(bank_url.starts_with("https://127.0.0.1:"), "{bank_url}");
    let rx = Receiver::start(&certs, "localhost");
    let misnamed = Receiver::start(&certs, "elsewhere");

    // payd trusting the test CA.
    let data = tmp.path().join("data");
    let env = [
        ("RONGPAY_ADMIN_TOKEN", ADMIN),
        (
            "RONGPAY_WEBHOOK_RETRY_MS",
            "100,100,100,100,100,100,100,100",
        ),
        ("RONGPAY_WEBHOOK_POLL_MS", "50"),
    ];
    let mut trusting = env.to_vec();
    trusting.push(("RONGPAY_OUTBOUND_TLS_CA_FILE", ca));
    let p = Payd::start_in(&data, &trusting);
    channel(&p, "bank", &bank_url, "0.002");
    let shop = merchant(&p, r#"{"name":"TLS shop"}"#);
    let secret = set_endpoint(&p, &shop.key, &rx.url());
    let token = tokenize(&p, &shop.key, "4111111111111111");

    // The charge goes to https://127.0.0.1:… and is booked; the webhook reaches https://.
    let v = card_pay(&p, &shop.key, "tls-1", "100.00", &token);
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(outcomes(&v), vec![("bank".into(), "charged".into())]);
    assert_eq!(sim.records("bank").len(), 1);
    assert_eq!(p.balance(&shop.account), "99.40");
    let paid = v["id"].as_str().unwrap().to_string();
    eventually(10, "the webhook over TLS", || {
        rx.taken()
            .iter()
            .any(|d| serde_json::from_str::<Value>(&d.body).unwrap()["data"]["id"] == paid.as_str())
    });
    let d = rx.taken()[0].clone();
    let body: Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(body["type"], "payment.succeeded");
    assert_eq!(
        d.signature,
        webhook_signature(&secret, &d.signature, &d.body)
    );
    println!(
        "trusted CA: charge over TLS {:?}, webhook delivered over TLS: {}",
        outcomes(&v),
        body["type"]
    );

    // A certificate from the trusted CA that does not name the host: no delivery, and the
    // event says why.
    let other = merchant(&p, r#"{"name":"Misnamed endpoint"}"#);
    set_endpoint(&p, &other.key, &misnamed.url());
    let payer = funded_account(&p, "10.00");
    let paid_other = pay(&p, &other.key, "m-1", "1.00", &payer).json();
    let paid_other = paid_other["id"].as_str().unwrap().to_string();
    let last_error = delivery_error(&p, &other.key, &paid_other);
    assert!(
        last_error.contains("TLS handshake failed") && last_error.contains("not valid for name"),
        "{last_error}"
    );
    assert!(misnamed.taken().is_empty());
    assert!(!misnamed.failed_handshakes().is_empty());
    println!(
        "misnamed certificate: last_error {last_error:?}; the receiver saw {:?}",
        misnamed.failed_handshakes()[0]
    );
    assert_eq!(p.terminate().code(), Some(0));

    // The same store without the CA: the channel is not reached (nothing charged, the payment
    // fails rather than stays in doubt) and the webhook is not delivered.
    let log = tmp.path().join("payd.log");
    let p = Payd::start_logging(&data, &env, &log);
    let v = card_pay(&p, &shop.key, "tls-2", "10.00", &token);
    assert_eq!(
        (v["status"].as_str(), v["failure_code"].as_str()),
        (Some("failed"), Some("channel_unavailable")),
        "{v}"
    );
    assert_eq!(
        outcomes(&v),
        vec![("bank".into(), "connection_refused".into())]
    );
    assert_eq!(sim.records("bank").len(), 1, "no second charge at the bank");
    assert_eq!(p.balance(&shop.account), "99.40");
    let failed = v["id"].as_str().unwrap().to_string();
    let last_error = delivery_error(&p, &shop.key, &failed);
    assert!(last_error.contains("UnknownIssuer"), "{last_error}");
    // The log writer writes a warning at once, on its own thread.
    eventually(10, "the failed channel call is logged", || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("channel not reached")
    });
    let logged = std::fs::read_to_string(&log).unwrap();
    let line = logged
        .lines()
        .find(|l| l.contains("channel not reached"))
        .expect("the failed channel call is logged");
    assert!(
        line.contains("TLS handshake failed") && line.contains("UnknownIssuer"),
        "{line}"
    );
    assert_eq!(rx.taken().len(), 1, "nothing delivered without the CA");
    println!(
        "untrusted CA: charge {:?}; last_error {last_error:?}",
        outcomes(&v)
    );

    // Every try refused the same way (1 + 8 retries); with the CA back, the merchant
    // resends the event and it goes out.
    eventually(10, "the event given up", || {
        events_of(&p, &shop.key, &failed)[0]["status"] == "failed"
    });
    let event = events_of(&p, &shop.key, &failed)[0].clone();
    assert_eq!(event["attempts"], 9, "{event}");
    assert_eq!(rx.taken().len(), 1);
    drop(p);
    let p = Payd::start_in(&data, &trusting);
    let auth = format!("Bearer {}", shop.key);
    let r = p.req(
        "POST",
        &format!("/v1/events/{}/resend", event["id"].as_str().unwrap()),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 202, "{:?}", String::from_utf8_lossy(&r.body));
    eventually(10, "the event delivered once the CA is trusted", || {
        rx.taken().len() == 2
    });
    let body: Value = serde_json::from_str(&rx.taken()[1].body).unwrap();
    assert_eq!(
        (body["type"].as_str(), body["data"]["id"].as_str()),
        (Some("payment.failed"), Some(failed.as_str()))
    );
    drop(p);

    // A CA file that is not PEM stops payd at start, naming the setting.
    let bad = tmp.path().join("bad-ca.pem");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_payd"))
        .args(["serve", "--data-dir"])
        .arg(tmp.path().join("data2"))
        .args(["--listen", "127.0.0.1:1"])
        .env("RONGPAY_OUTBOUND_TLS_CA_FILE", &bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        err.contains("outbound_tls_ca_file") && err.contains("no PEM certificate"),
        "{err}"
    );
}
