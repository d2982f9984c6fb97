//! Integers in JSON bodies, as JSON Schema defines them: a number with no fractional part,
//! so `220` and `220.0` are the same integer (the OpenAPI document says `type: integer`,
//! and a client or a generator may write either). serde's integer types refuse `220.0`;
//! fields use these instead:
//!
//! ```ignore
//! #[serde(deserialize_with = "services::json_int::int")] exp_month: u8,
//! #[serde(default, deserialize_with = "services::json_int::opt_int")] weight: Option<u32>,
//! ```
//!
//! A fractional number, one out of the type's range, or a float beyond 2^53 (where f64 is
//! no longer exact) is refused, with the same kind of message serde gives.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

/// Largest float taken as an integer: every integer up to it is exact in an f64.
const FLOAT_EXACT_MAX: f64 = 9_007_199_254_740_992.0;

struct IntVisitor<T>(PhantomData<T>);

impl<T: TryFrom<i128>> Visitor<'_> for IntVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `u8`, `u32`, … as serde's own integer visitors say it.
        f.write_str(std::any::type_name::<T>())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(i128::from(v)).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(i128::from(v)).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if v.fract() != 0.0 || !v.is_finite() {
            return Err(E::invalid_type(Unexpected::Float(v), &self));
        }
        if v.abs() > FLOAT_EXACT_MAX {
            return Err(E::invalid_value(Unexpected::Float(v), &self));
        }
        // Exact: integral and within ±2^53.
        T::try_from(v as i128).map_err(|_| E::invalid_value(Unexpected::Float(v), &self))
    }
}

/// An integer field that also takes an integral float (`220.0`).
pub fn int<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
    d.deserialize_i64(IntVisitor(PhantomData))
}

struct Int<T>(T);

impl<'de, T: TryFrom<i128>> Deserialize<'de> for Int<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        int(d).map(Int)
    }
}

/// An optional integer field (with `#[serde(default)]`): absent or `null` is `None`.
pub fn opt_int<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
    Ok(Option::<Int<T>>::deserialize(d)?.map(|i| i.0))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        #[serde(deserialize_with = "super::int")]
        month: u8,
        #[serde(default, deserialize_with = "super::opt_int")]
        weight: Option<u32>,
        #[serde(default, deserialize_with = "super::opt_int")]
        amount: Option<i64>,
    }

    fn parse(json: &str) -> Result<Body, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn integral_floats_are_integers_and_nothing_else_is() {
        let b = parse(r#"{"month": 12.0, "weight": 220.0, "amount": -5.0}"#).unwrap();
        assert_eq!((b.month, b.weight, b.amount), (12, Some(220), Some(-5)));
        let b = parse(r#"{"month": 1}"#).unwrap();
        assert_eq!((b.weight, b.amount), (None, None));
        assert_eq!(
            parse(r#"{"month": 1, "weight": null}"#).unwrap().weight,
            None
        );
        let e = parse(r#"{"month": 1.5}"#).unwrap_err();
        assert!(
            e.contains("invalid type: floating point `1.5`, expected u8"),
            "{e}"
        );
        let e = parse(r#"{"month": 256}"#).unwrap_err();
        assert!(
            e.contains("invalid value: integer `256`, expected u8"),
            "{e}"
        );
        let e = parse(r#"{"month": -1}"#).unwrap_err();
        assert!(
            e.contains("invalid value: integer `-1`, expected u8"),
            "{e}"
        );
        let e = parse(r#"{"month": "1"}"#).unwrap_err();
        assert!(e.contains("invalid type: string \"1\", expected u8"), "{e}");
        // Beyond 2^53 a float is not exact: refused rather than rounded.
        let e = parse(r#"{"month": 1, "amount": 9007199254740993.0}"#).unwrap_err();
        assert!(e.contains("invalid value"), "{e}");
        assert!(parse(r#"{"month": 1, "amount": 9007199254740992.0}"#).is_ok());
        assert!(parse(r#"{"month": 1, "amount": 1e300}"#).is_err());
    }
}
