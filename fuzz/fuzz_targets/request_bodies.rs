//! Every JSON request body payd takes, parsed as payd parses it (strict, the failing field
//! named, amounts refused as `invalid_amount`): never a panic, always a client error
//! (400) when refused, and no error message ever quotes a card number.
#![no_main]

use api::body::{parse, parse_sensitive};
use api::error::ApiError;
use api::routes::{accounts, cards, channels, merchants, payments, refunds};
use libfuzzer_sys::fuzz_target;

fn check<T>(what: &str, r: Result<T, ApiError>) {
    if let Err(e) = r {
        assert_eq!(e.status.as_u16(), 400, "{what}: {e}");
        assert!(
            !api::pan::contains(&e.message),
            "{what} quotes a card number: {e}"
        );
        assert!(
            !e.param.as_deref().is_some_and(api::pan::contains),
            "{what} names a card number as the field: {e:?}"
        );
        assert!(
            e.message.len() < 4096,
            "{what}: a {} byte message",
            e.message.len()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check(
        "payment",
        parse::<payments::CreatePayment>(data, &["amount"]),
    );
    check("review", parse::<payments::ReviewDecision>(data, &[]));
    check("refund", parse::<refunds::CreateRefund>(data, &["amount"]));
    check(
        "account",
        parse::<accounts::CreateAccount>(data, &["credit_limit"]),
    );
    check(
        "deposit",
        parse::<accounts::CreateDeposit>(data, &["amount"]),
    );
    check(
        "account update",
        parse::<accounts::UpdateAccount>(data, &[]),
    );
    check("merchant", parse::<merchants::CreateMerchant>(data, &[]));
    check(
        "merchant update",
        parse::<merchants::UpdateMerchant>(data, &[]),
    );
    check("rotate", parse::<merchants::Rotate>(data, &[]));
    check(
        "channel",
        parse::<channels::CreateChannel>(
            data,
            &["fee_fixed", "min_amount", "max_amount", "daily_limit"],
        ),
    );
    check(
        "channel update",
        parse::<channels::UpdateChannel>(
            data,
            &["fee_fixed", "min_amount", "max_amount", "daily_limit"],
        ),
    );
    check(
        "webhook endpoint",
        parse::<api::webhooks::SetEndpoint>(data, &[]),
    );
    check("card", parse_sensitive::<cards::CreateCard>(data));
});
