//! The card vault's cryptography: card data sealed with AES-256-GCM under the key from
//! config (`card_key`), and keyed fingerprints (HMAC-SHA256) so that equal cards can be
//! recognised — and request bodies holding card numbers fingerprinted — without an unkeyed
//! hash of a card number ever being stored.

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit};
use hmac::Mac;
use sha2::Digest;

const NONCE_LEN: usize = 12;

pub struct Vault {
    cipher: Aes256Gcm,
    mac_key: [u8; 32],
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(****)")
    }
}

/// A key in the form `card_key` takes: 64 hex digits (32 bytes).
pub fn check_key(text: &str) -> Result<[u8; 32], String> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("must be 64 hex digits (32 bytes)".into());
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(key)
}

/// A fresh random key in `card_key` form.
pub fn generate_key() -> String {
    format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    )
}

impl Vault {
    pub fn new(key_hex: &str) -> Result<Vault, String> {
        let key = check_key(key_hex)?;
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|e| e.to_string())?;
        // A separate key for fingerprints, derived so that neither use weakens the other.
        let mut h = sha2::Sha256::new();
        h.update(b"rongpay card fingerprint v1");
        h.update(key);
        Ok(Vault {
            cipher,
            mac_key: h.finalize().into(),
        })
    }

    /// `nonce || ciphertext || tag`; `context` (e.g. the token) is authenticated, so a sealed
    /// value moved to another record does not open.
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = aes_gcm::Nonce::from(nonce_bytes);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                aes_gcm::aead::Payload {
                    msg: plain,
                    aad: context,
                },
            )
            .expect("AES-GCM encryption of a small value cannot fail");
        [nonce_bytes.as_slice(), &sealed].concat()
    }

    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < NONCE_LEN {
            return Err("sealed value too short".into());
        }
        let (nonce_bytes, body) = sealed.split_at(NONCE_LEN);
        let nonce_array: [u8; NONCE_LEN] = nonce_bytes.try_into().expect("split at NONCE_LEN");
        self.cipher
            .decrypt(
                &aes_gcm::Nonce::from(nonce_array),
                aes_gcm::aead::Payload {
                    msg: body,
                    aad: context,
                },
            )
            .map_err(|_| "a sealed value does not open with this key".to_string())
    }

    /// HMAC-SHA256 of `data` under the fingerprint key.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.mac_key)
            .expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let v = Vault::new(&generate_key()).unwrap();
        let sealed = v.seal(b"4111111111111111", b"tok_1");
        assert!(!sealed.windows(16).any(|w| w == b"4111111111111111"));
        assert_eq!(v.open(&sealed, b"tok_1").unwrap(), b"4111111111111111");
        assert!(v.open(&sealed, b"tok_2").is_err());
        let other = Vault::new(&generate_key()).unwrap();
        assert!(other.open(&sealed, b"tok_1").is_err());
        assert_ne!(
            v.seal(b"x", b""),
            v.seal(b"x", b""),
            "fresh nonce each time"
        );
        assert_eq!(v.mac(b"a"), v.mac(b"a"));
        assert_ne!(v.mac(b"a"), other.mac(b"a"));
        assert!(Vault::new("abc").is_err());
        assert_eq!(format!("{v:?}"), "Vault(****)");
    }
}
