//! Outbound TLS: the one rustls client configuration behind every call payd makes (merchants'
//! webhooks, the SMS gateway, the identity provider through reqwest; the channels through
//! [`crate::channels::http`]).
//!
//! - ring as the crypto provider (as payd's listener), TLS 1.3 and 1.2 only;
//! - trusted roots: Mozilla's, compiled in (`webpki-roots`), so the trust store does not
//!   depend on the machine's `ca-certificates`; plus the certificates of
//!   `outbound_tls_ca_file` (a PEM bundle), for a bank's private CA or a test's own;
//! - the server's name (or IP address) checked against its certificate, no way to turn that
//!   off; no client certificate (mutual TLS with a channel is not built yet);
//! - no ALPN: every outbound call is HTTP/1.1.
//!
//! Also the listener's side ([`server_config`]), which payd's HTTPS server and channel-sim
//! share.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The client configuration: Mozilla's roots plus those in `extra_roots` (PEM). The error
/// names the file and what is wrong with it.
pub fn client_config(extra_roots: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_roots {
        for cert in certificates(path, "outbound_tls_ca_file")? {
            roots.add(cert).map_err(|e| {
                format!(
                    "outbound_tls_ca_file {}: a certificate rustls cannot use as a root: {e}",
                    path.display()
                )
            })?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// TLS 1.3 and 1.2, both sides.
const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// ring, both sides (aws-lc's C build stays out of the tree).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file: at least one, every one parsed. The error names
/// `setting` and the file.
pub fn certificates(path: &Path, setting: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{setting} {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{setting} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{setting} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

/// A listener's TLS configuration (payd's own, with `tls_cert_file` and `tls_key_file`;
/// channel-sim's): `cert` a PEM chain, leaf first, `key` its PEM private key; ring, TLS 1.3
/// and 1.2 only. The error names the setting and the file.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    let chain = certificates(cert, "tls_cert_file")?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("tls_key_file {}: {e}", key.display()))?;
    rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls_cert_file / tls_key_file: {e}"))
}

/// reqwest over that configuration, to be finished by the caller (pool, timeouts): payd's
/// client of webhooks, SMS and identity checks, and the simulators' own.
pub fn reqwest_builder(config: rustls::ClientConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(config)
}

/// When `err` (or what caused it) is a TLS failure, "TLS handshake failed: " and what rustls
/// said ("invalid peer certificate: UnknownIssuer", "… certificate not valid for name …").
/// A TLS failure is a failed connection to the HTTP clients; this tells the merchant or
/// operator which one.
pub fn failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(format!("TLS handshake failed: {tls}"));
        }
        // An io::Error's `source` skips the error it wraps (a TLS stream wraps rustls's in
        // one or two of them): look inside it instead.
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// A reqwest error as said to an operator, without its URL: what rustls said when the TLS
/// handshake failed ("TLS handshake failed: invalid peer certificate: UnknownIssuer"),
/// reqwest's own words otherwise.
pub fn describe(err: reqwest::Error) -> String {
    failure(&err).unwrap_or_else(|| err.without_url().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_roots_build_a_client_and_a_bad_ca_file_is_named() {
        let config = client_config(None).unwrap();
        assert!(config.alpn_protocols.is_empty());
        // reqwest takes it as its backend (a version mismatch would make `build` fail).
        reqwest_builder(config).build().unwrap();

        let dir = std::env::temp_dir().join(format!("rongpay-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let err = client_config(Some(&missing)).unwrap_err();
        assert!(
            err.starts_with("outbound_tls_ca_file") && err.contains("missing.pem"),
            "{err}"
        );
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(Some(&empty)).unwrap_err();
        assert!(err.contains("no PEM certificate"), "{err}");
        let garbage = dir.join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = client_config(Some(&garbage)).unwrap_err();
        assert!(err.contains("garbage.pem"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_tls_failure_is_found_inside_the_errors_that_carry_it() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        // As a TLS stream hands it on, wrapped again: an io::Error in an io::Error.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let io = std::io::Error::other(io);
        #[derive(Debug, thiserror::Error)]
        #[error("connect")]
        struct Outer(#[source] std::io::Error);
        let outer = Outer(io);
        assert_eq!(
            failure(&outer).as_deref(),
            Some("TLS handshake failed: invalid peer certificate: UnknownIssuer")
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(failure(&Outer(refused)), None);
    }
}
