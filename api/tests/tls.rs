//! TLS on the listener (issue #6) against the real payd, with a self-signed certificate made
//! at test time by the `openssl` CLI and real clients (`curl`, `openssl s_client`): HTTPS
//! works end to end, TLS 1.2 and 1.3 are taken, TLS 1.1 and plain HTTP are not, and a half
//! configuration refuses to start.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem).
fn self_signed(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    (
        cert.to_str().unwrap().to_string(),
        key.to_str().unwrap().to_string(),
    )
}

/// `curl` over HTTPS trusting `cert`: (status code, body), or None when no HTTP answer.
fn curl(cert: &str, args: &[&str]) -> Option<(u16, String)> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "--cacert",
            cert,
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .output()
        .expect("curl runs");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.parse().ok()?, body.to_string()))
}

/// `openssl s_client` with one protocol version: whether the handshake completed, and what
/// it printed.
fn handshake(addr: &str, version_flag: &str) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", addr, version_flag])
        // Let the client offer old versions at all (OpenSSL 3 refuses them at its default
        // security level): the refusal must come from the server.
        .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let done = text.contains("Cipher is ") && !text.contains("Cipher is (NONE)");
    (done, text)
}

#[test]
fn payd_serves_https_with_tls_1_2_and_1_3_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(tmp.path());
    let p = Payd::spawn_in(
        &tmp.path().join("data"),
        &[
            ("RONGPAY_ADMIN_TOKEN", ADMIN),
            ("RONGPAY_TLS_CERT_FILE", &cert),
            ("RONGPAY_TLS_KEY_FILE", &key),
        ],
    );
    let base = format!("https://{}", p.addr);
    let deadline = Instant::now() + Duration::from_secs(60);
    while curl(&cert, &[&format!("{base}/readyz")]).map(|r| r.0) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "payd never became ready over TLS"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A whole exchange over HTTPS: the operator creates a merchant, the merchant reads it.
    let auth = format!("Authorization: Bearer {ADMIN}");
    let (status, body) = curl(
        &cert,
        &[
            "-X",
            "POST",
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"name":"Over TLS"}"#,
            &format!("{base}/v1/merchants"),
        ],
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    let account = created["account_id"].as_str().unwrap();
    let merchant_auth = format!(
        "Authorization: Bearer {}",
        created["secret_key"].as_str().unwrap()
    );
    let (status, _) = curl(
        &cert,
        &[
            "-H",
            &merchant_auth,
            &format!("{base}/v1/accounts/{account}"),
        ],
    )
    .unwrap();
    assert_eq!(status, 200);

    // Not trusted without the certificate; no HTTP answer to plain HTTP on the TLS port.
    let untrusted = Command::new("curl")
        .args(["-sS", "--max-time", "5", &format!("{base}/healthz")])
        .output()
        .unwrap();
    assert!(!untrusted.status.success());
    let plain = try_request(&p.addr, "GET", "/healthz", &[], b"");
    assert!(
        plain.as_ref().map_or(true, |r| r.status != 200),
        "plain HTTP answered on the TLS port"
    );

    // TLS 1.3 and 1.2 complete; 1.1 and 1.0 are refused by the server.
    for (flag, expect) in [
        ("-tls1_3", true),
        ("-tls1_2", true),
        ("-tls1_1", false),
        ("-tls1", false),
    ] {
        let (done, text) = handshake(&p.addr, flag);
        assert_eq!(done, expect, "{flag}: {text}");
        if !expect {
            assert!(
                text.contains("protocol version") || text.contains("alert"),
                "{flag}: {text}"
            );
        }
    }
}

#[test]
fn half_a_tls_configuration_or_a_bad_file_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed(tmp.path());
    let run = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_payd"));
        cmd.args(["serve", "--data-dir"])
            .arg(tmp.path().join("data"))
            .args(["--listen", "127.0.0.1:1"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&[("RONGPAY_TLS_CERT_FILE", &cert)]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("tls_cert_file and tls_key_file go together"),
        "{err}"
    );
    let (code, err) = run(&[
        ("RONGPAY_TLS_CERT_FILE", &cert),
        ("RONGPAY_TLS_KEY_FILE", &cert),
    ]);
    assert_ne!(code, Some(0));
    assert!(err.contains("tls_key_file"), "{err}");
}
