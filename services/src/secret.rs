//! `Secret<T>`: a value that must never reach a log, an error or `Debug` output (tokens,
//! keys, signing secrets in memory). `Debug` and `Display` print a mask; the value is read
//! only through [`Secret::expose`], which makes every use visible in review. Its memory is
//! overwritten when dropped (`zeroize`).

use serde::Deserialize;
use zeroize::Zeroize;

#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret<T: Zeroize = String>(T);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    /// The value itself: for comparing, hashing, keying a cipher — never for printing.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl<T: Zeroize> std::fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("****")
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_mask_and_expose_reads() {
        let s = Secret::new("sk_live_hunter2".to_string());
        assert_eq!(format!("{s:?}"), "Secret(****)");
        assert_eq!(format!("{s}"), "****");
        assert_eq!(format!("{:#?}", Some(&s)), "Some(\n    Secret(****),\n)");
        assert_eq!(s.expose(), "sk_live_hunter2");
        let bytes = Secret::new(b"whsec_0123".to_vec());
        assert_eq!(format!("{bytes:?}"), "Secret(****)");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            key: Secret,
        }
        let h = Holder {
            key: Secret::new("adm_topsecret".into()),
        };
        assert!(!format!("{h:?}").contains("topsecret"));
    }
}
