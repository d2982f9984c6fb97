//! API objects persisted in the store's `aux` column family, written in the same durable
//! write as the effects they describe. Framed and checksummed by `storage::codec`.

use bincode::{Decode, Encode};
use engine::{AccountId, TransferId};
use storage::codec::{self, Kind};
use storage::Store;

use crate::error::ApiError;

/// What the ledger does not know about an account.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AccountMeta {
    pub owner: Option<String>,
}

/// A confirmed top-up.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Deposit {
    pub account: AccountId,
    pub amount: i64,
    pub reference: Option<String>,
    pub created_at_ns: u64,
}

pub fn account_meta_key(id: AccountId) -> Vec<u8> {
    [b"am".as_slice(), &id.to_be_bytes()].concat()
}

pub fn deposit_key(id: TransferId) -> Vec<u8> {
    [b"dp".as_slice(), &id.to_be_bytes()].concat()
}

pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    codec::encode(Kind::Aux, value)
}

/// Reads and decodes a record; a record that does not decode is a storage fault (503), not a
/// client error.
pub fn read<T: Decode<()>>(store: &Store, key: &[u8]) -> Result<Option<T>, ApiError> {
    match store.aux(key)? {
        None => Ok(None),
        Some(bytes) => codec::decode(Kind::Aux, &bytes)
            .map(Some)
            .map_err(|e| ApiError::unavailable(format!("a stored record does not decode: {e}"))),
    }
}
