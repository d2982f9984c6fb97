//! Batch transfers (`POST /v1/transfers/batch`): up to 8,190 account-to-account transfers in
//! one command, each applied atomically on its own with its own result, like TigerBeetle's
//! `create_transfers`.
//!
//! A transfer's ledger id is derived from the caller and the client's own id (SHA-256,
//! truncated to 128 bits), so a retried id is the same ledger transfer: `exists`, nothing
//! moves twice, across restarts and on any replica. The client's id and reference are kept in
//! the transfer's note on its journal entry ([`records::BatchTransferNote`]), written in the
//! same durable write: the writer keeps a group's notes in one record
//! ([`records::JournalNotes`]), so a transfer costs no key of its own besides its dedup key.

use std::borrow::Cow;

use engine::{AccountId, Currency, Reject, Timestamp, Transfer, TransferId, TransferKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::accounts::{check_text, parse_currency, parse_positive};
use crate::error::{Error, Result};
use crate::merchants::Caller;
use crate::platform::Platform;
use crate::records;

/// Transfers one batch may hold (TigerBeetle's batch size).
pub const BATCH_TRANSFERS_MAX: usize = 8_190;
/// Longest client id of a transfer, in bytes (visible ASCII).
pub const CLIENT_ID_LEN_MAX: usize = 64;

// The batch request (not a doc comment: it would become the schema's description). Its
// strings are borrowed from the request's body where they hold no escape (`Cow`): a batch
// of 8,190 transfers otherwise allocated and copied five strings a transfer that are only
// checked and parsed.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateBatch<'a> {
    /// 1 to 8,190 transfers, each applied on its own.
    #[serde(borrow)]
    pub transfers: Vec<CreateTransfer<'a>>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTransfer<'a> {
    /// The client's id: 1–64 visible ASCII characters, unique across the caller's batches.
    /// Checked per transfer (another id fails that transfer only, `invalid_parameter`), so
    /// the schema does not constrain it: a batch is refused whole only when malformed.
    #[serde(borrow)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: Cow<'a, str>,
    /// The account debited (a merchant: its own balance account only).
    #[serde(borrow)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub debit_account_id: Cow<'a, str>,
    #[serde(borrow)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub credit_account_id: Cow<'a, str>,
    /// Decimal string in major units, scale at most the currency's minor units.
    #[serde(borrow)]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0.01"))]
    pub amount: Cow<'a, str>,
    /// ISO 4217 code; both accounts must hold it.
    #[serde(borrow)]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "CNY"))]
    pub currency: Cow<'a, str>,
    // Owned: serde borrows a `Cow` only outside an `Option` (and few transfers carry one).
    pub reference: Option<String>,
}

/// What happened to one transfer of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    /// Applied now, durably.
    Created,
    /// Applied by an earlier request with the same id: nothing moved now.
    Exists,
    /// Refused: `code` says why; nothing moved.
    Failed,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferResult {
    pub id: String,
    pub status: TransferStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// The field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// The ledger's id of the transfer (`tr_…`), when it is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchView {
    /// One result per transfer, in the order sent.
    pub results: Vec<TransferResult>,
}

/// The ledger id of the client's transfer `client_id` sent by `caller`: one per caller and
/// id, stable across restarts and machines.
pub fn ledger_id(caller: &Caller, client_id: &str) -> TransferId {
    let mut h = Sha256::new();
    h.update(b"rongpay.batch_transfer.v1\0");
    match caller {
        Caller::Admin => h.update([0u8; 16]),
        Caller::Merchant(m) => h.update(m.id.to_be_bytes()),
    }
    h.update(client_id.as_bytes());
    let digest = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    TransferId(u128::from_be_bytes(id))
}

fn failed(id: &str, code: &'static str, param: Option<&str>) -> TransferResult {
    TransferResult {
        id: id.to_string(),
        status: TransferStatus::Failed,
        code: Some(code),
        param: param.map(str::to_string),
        transfer_id: None,
    }
}

fn from_error(id: &str, e: Error) -> TransferResult {
    match e {
        Error::Invalid { code, param, .. } => TransferResult {
            param,
            ..failed(id, code, None)
        },
        Error::NotFound { param, .. } => TransferResult {
            param,
            ..failed(id, "unknown_account", None)
        },
        _ => failed(id, "invalid_parameter", None),
    }
}

/// An account id of a transfer: well formed, and not one of the platform's own accounts
/// (those move only through payments, refunds and deposits).
fn account(
    text: &str,
    param: &'static str,
) -> std::result::Result<AccountId, (&'static str, &'static str)> {
    match AccountId::parse(text) {
        Some(id) if id.is_platform() => Err(("unknown_account", param)),
        Some(id) => Ok(id),
        None => Err(("invalid_parameter", param)),
    }
}

/// Checks one transfer of a batch; `Ok` is the ledger transfer and its note.
fn check(
    caller: &Caller,
    t: &CreateTransfer<'_>,
) -> std::result::Result<(Transfer, Vec<u8>), TransferResult> {
    let id: &str = &t.id;
    if id.is_empty() || id.len() > CLIENT_ID_LEN_MAX || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(failed(id, "invalid_parameter", Some("id")));
    }
    let debit = account(&t.debit_account_id, "debit_account_id")
        .map_err(|(code, param)| failed(id, code, Some(param)))?;
    let credit = account(&t.credit_account_id, "credit_account_id")
        .map_err(|(code, param)| failed(id, code, Some(param)))?;
    if let Caller::Merchant(m) = caller {
        // A merchant pays out of its own balance only; any other debit account is unknown
        // to it (as a read of it would be: 404, so ids cannot be probed).
        if m.account != debit {
            return Err(failed(id, "unknown_account", Some("debit_account_id")));
        }
    }
    if debit == credit {
        return Err(failed(id, "same_account", Some("credit_account_id")));
    }
    let currency: Currency = parse_currency(&t.currency).map_err(|e| from_error(id, e))?;
    let amount = parse_positive(&t.amount, currency, "amount").map_err(|e| from_error(id, e))?;
    check_text(&t.reference, "reference").map_err(|e| from_error(id, e))?;
    let ledger_id = ledger_id(caller, id);
    let transfer = Transfer::between(
        ledger_id,
        TransferKind::Transfer,
        debit,
        credit,
        currency,
        amount,
        Timestamp(0),
    );
    let note = records::Note::BatchTransfer(records::BatchTransferNote {
        transfer: ledger_id,
        client_id: id.to_string(),
        merchant: match caller {
            Caller::Admin => 0,
            Caller::Merchant(m) => m.id,
        },
        reference: t.reference.clone(),
    });
    Ok((transfer, note.to_bytes()))
}

/// Applies a batch for `caller`: every valid transfer is sent to the ledger together (they
/// share its rounds and group writes); the answer has one result per transfer, in order.
/// Refused whole only when the batch is empty or too large, or the ledger is overloaded.
pub async fn create_batch(
    state: &Platform,
    caller: &Caller,
    body: CreateBatch<'_>,
) -> Result<BatchView> {
    let n = body.transfers.len();
    if n == 0 || n > BATCH_TRANSFERS_MAX {
        return Err(Error::invalid(
            "invalid_parameter",
            format!("a batch holds 1 to {BATCH_TRANSFERS_MAX} transfers, not {n}"),
        )
        .with_param("transfers"));
    }
    let ledger = state.ledger()?;
    let mut results: Vec<Option<TransferResult>> = vec![None; n];
    let mut submitted = Vec::with_capacity(n);
    let mut index = Vec::with_capacity(n);
    let mut seen = std::collections::HashSet::with_capacity(n);
    for (i, t) in body.transfers.iter().enumerate() {
        match check(caller, t) {
            Err(result) => results[i] = Some(result),
            Ok(_) if !seen.insert(&*t.id) => {
                // The first of the batch with this id is the one applied.
                results[i] = Some(failed(&t.id, "duplicate_id_in_batch", Some("id")));
            }
            Ok((transfer, note)) => {
                index.push((i, transfer.id));
                submitted.push((transfer, note));
            }
        }
    }
    let outcomes = ledger.transfer_many(submitted).await?;
    for ((i, id), outcome) in index.into_iter().zip(outcomes) {
        let t = &body.transfers[i];
        let transfer_id = Some(id.text());
        results[i] = Some(match outcome {
            Ok(Ok(_)) => TransferResult {
                id: t.id.to_string(),
                status: TransferStatus::Created,
                code: None,
                param: None,
                transfer_id,
            },
            Ok(Err(Reject::DuplicateId)) => TransferResult {
                id: t.id.to_string(),
                status: TransferStatus::Exists,
                code: None,
                param: None,
                transfer_id,
            },
            Ok(Err(reject)) => TransferResult {
                transfer_id,
                ..failed(&t.id, reject.code(), None)
            },
            // Overload or a storage failure of this transfer alone: not applied; the client
            // may retry it (its id makes the retry safe).
            Err(e) => TransferResult {
                transfer_id,
                ..failed(
                    &t.id,
                    match Error::from(e) {
                        Error::Overloaded(_) => "overloaded",
                        Error::ShuttingDown => "shutting_down",
                        _ => "storage_error",
                    },
                    None,
                )
            },
        });
    }
    Ok(BatchView {
        results: results
            .into_iter()
            .map(|r| r.expect("every transfer has a result"))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings without escapes are borrowed from the body; an escaped one is decoded into
    /// its own, and reads the same either way.
    #[test]
    fn a_batch_borrows_its_plain_strings_and_decodes_escaped_ones() {
        let body = br#"{"transfers":[
            {"id":"plain-1","debit_account_id":"acct_1","credit_account_id":"acct_2","amount":"1.00","currency":"CNY","reference":"r"},
            {"id":"esc\u0061ped\"2","debit_account_id":"acct_1","credit_account_id":"acct_2","amount":"2.00","currency":"CNY"}
        ]}"#;
        let batch: CreateBatch<'_> = serde_json::from_slice(body).unwrap();
        let [plain, escaped] = &batch.transfers[..] else {
            panic!("two transfers");
        };
        assert!(matches!(plain.id, Cow::Borrowed("plain-1")));
        assert_eq!(plain.reference.as_deref(), Some("r"));
        assert!(matches!(plain.amount, Cow::Borrowed("1.00")));
        assert!(matches!(&escaped.id, Cow::Owned(id) if id == "escaped\"2"));
        assert_eq!(escaped.reference, None);
        // Unknown fields are still refused.
        let extra = br#"{"transfers":[{"id":"x","debit_account_id":"a","credit_account_id":"b","amount":"1","currency":"CNY","memo":"m"}]}"#;
        assert!(serde_json::from_slice::<CreateBatch<'_>>(extra).is_err());
    }
}
