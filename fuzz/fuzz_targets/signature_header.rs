//! The `Rongpay-Signature` header: parsing never panics, what parses has its parts within
//! bounds, and a header made by `sign` parses back and verifies (and fails with another
//! secret or another body).
#![no_main]

use api::secret::Secret;
use api::signing::{parse, sign, verify, NONCE_LEN_MAX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sig) = parse(text) {
        assert!(!sig.nonce.is_empty() && sig.nonce.len() <= NONCE_LEN_MAX);
        assert!(!sig.v1.is_empty() && sig.v1.len() <= 4);
        let secret = [Secret::new(b"ss_fuzz".to_vec())];
        // A forged header never verifies against a secret it was not made with.
        let _ = verify(&sig, sig.t, &secret, "POST", "/v1/payments", data);
    }
    // Whatever the input, as a nonce and body of a signed request: sign, parse, verify.
    let nonce: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != ',')
        .take(NONCE_LEN_MAX)
        .collect();
    if nonce.is_empty() {
        return;
    }
    let header = sign(
        b"ss_fuzz",
        1_800_000_000,
        &nonce,
        "POST",
        "/v1/payments",
        data,
    );
    let sig = parse(&header).expect("a header sign made parses");
    assert_eq!((sig.t, sig.nonce), (1_800_000_000, nonce.as_str()));
    let good = [Secret::new(b"ss_fuzz".to_vec())];
    let bad = [Secret::new(b"ss_other".to_vec())];
    assert!(verify(&sig, 1_800_000_000, &good, "POST", "/v1/payments", data).is_ok());
    assert!(verify(&sig, 1_800_000_000, &bad, "POST", "/v1/payments", data).is_err());
    assert!(verify(&sig, 1_800_000_000, &good, "GET", "/v1/payments", data).is_err());
});
