//! The on-disk record format, pinned: records written by format version 1 (committed in
//! `tests/fixtures/format_v1.hex`) must keep decoding to the same values, and today's encoder
//! must still produce them byte for byte. A change to any persisted type fails here first.
//!
//! Regenerate only for a deliberate new format version:
//! `RONGPAY_WRITE_FIXTURES=1 cargo test --release -p rongpay-storage --test format_fixtures`.

use engine::{
    Account, AccountId, AccountStatus, Currency, Effect, PaymentParties, Timestamp, Transfer,
    TransferId,
};
use storage::codec::{self, Kind};
use storage::schema::{AccountDelta, JournalGroup};
use storage::JournalEntry;

/// The committed fixture. The crate's directory is taken at run time (cargo sets it for the
/// test): a test binary reused from a shared target dir may have been built in another
/// checkout, whose compile-time path need not exist here.
fn fixture() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("tests/fixtures/format_v1.hex")
}

fn account() -> Account {
    Account {
        id: AccountId(0x0123_4567_89ab_cdef_0011_2233_4455_6677),
        currency: Currency::CNY,
        balance: -12_345,
        held: 600,
        credit_limit: 1_000_000,
        status: AccountStatus::Frozen,
        created_at: Timestamp(1_764_000_000_000_000_000),
    }
}

fn entry() -> JournalEntry {
    let parties = PaymentParties {
        payer: AccountId(7),
        merchant: AccountId(8),
        fee_account: AccountId(9),
    };
    JournalEntry {
        seq: 42,
        effects: vec![
            Effect::AccountCreated(Account {
                currency: Currency::KWD,
                ..account()
            }),
            Effect::Posted(Transfer::payment(
                TransferId(u128::MAX - 5),
                parties,
                Currency::CNY,
                10_000,
                60,
                Timestamp(99),
            )),
            Effect::StatusSet {
                account: AccountId(8),
                status: AccountStatus::Closed,
            },
        ],
    }
}

/// A group record (kind 6, store layout 3): the entry's effects, then none, then one.
fn group() -> JournalGroup {
    let effects = entry().effects;
    JournalGroup {
        first_seq: 42,
        entries: vec![effects.clone(), vec![], effects[..1].to_vec()],
    }
}

fn delta() -> AccountDelta {
    AccountDelta {
        balance: -(1i128 << 70),
        held: 5,
        status: Some(AccountStatus::Active),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn format_v1_records_still_decode_and_encode_identically() {
    let current = [
        ("journal_entry", codec::encode(Kind::Journal, &entry())),
        ("account", codec::encode(Kind::Account, &account())),
        ("account_delta", codec::encode(Kind::AccountDelta, &delta())),
        ("journal_group", codec::encode(Kind::JournalGroup, &group())),
    ];
    if std::env::var_os("RONGPAY_WRITE_FIXTURES").is_some() {
        let text: String = current
            .iter()
            .map(|(name, bytes)| format!("{name} {}\n", hex(bytes)))
            .collect();
        std::fs::write(fixture(), text).unwrap();
    }
    let text = std::fs::read_to_string(fixture()).expect("committed fixture");
    let fixture: Vec<(&str, Vec<u8>)> = text
        .lines()
        .map(|l| {
            let (name, h) = l.split_once(' ').unwrap();
            (name, unhex(h))
        })
        .collect();
    assert_eq!(fixture.len(), 4);
    assert_eq!(
        codec::decode::<JournalEntry>(Kind::Journal, &fixture[0].1),
        Ok(entry())
    );
    assert_eq!(
        codec::decode::<Account>(Kind::Account, &fixture[1].1),
        Ok(account())
    );
    assert_eq!(
        codec::decode::<AccountDelta>(Kind::AccountDelta, &fixture[2].1),
        Ok(delta())
    );
    assert_eq!(
        codec::decode::<JournalGroup>(Kind::JournalGroup, &fixture[3].1),
        Ok(group())
    );
    for ((name, bytes), (fixture_name, fixture_bytes)) in current.iter().zip(&fixture) {
        assert_eq!(name, fixture_name);
        assert_eq!(
            hex(bytes),
            hex(fixture_bytes),
            "{name} encodes differently from format v1"
        );
    }
}

/// The records of the layers above (`storage::records`), as written today: one of each
/// layout, every optional field set, so a change to any of them fails here.
fn aux_records() -> Vec<(&'static str, Vec<u8>)> {
    use storage::records::*;
    let payment = Payment {
        id: 0x0190_0000_0000_0000_0000_0000_0000_0001,
        merchant: 2,
        out_trade_no: "订单-1".into(),
        amount: 10_000,
        currency: 156,
        fee: 60,
        payer: AccountId(3),
        status: PaymentStatus::Succeeded,
        failure_code: Some("insufficient_funds".into()),
        description: Some("tea".into()),
        metadata: vec![("k".into(), "v".into())],
        refunded: 500,
        created_at_ns: 1_764_000_000_000_000_000,
        risk: Tail(Some(RiskRecord {
            score: 55,
            decision: 1,
            reasons: vec![("large_amount".into(), 55)],
            reviewed: Some((true, 99)),
        })),
        card: Tail(Some(CardPayment {
            token: 4,
            brand: "visa".into(),
            last4: "4242".into(),
            channel: Some((5, "bank_a".into())),
            request_id: Some("req_1".into()),
            channel_fee: 12,
            attempts: vec![("bank_a".into(), "succeeded".into())],
            excluded: vec![("bank_b".into(), "breaker_open".into())],
        })),
    };
    let merchant = Merchant {
        id: 2,
        name: "茶馆".into(),
        fee_rate_ppm: 6_000,
        key_sha256: [7; 32],
        account: AccountId(8),
        currency: 156,
        created_at_ns: 9,
        category: Tail(Some("food".into())),
        auth: Tail(MerchantAuth {
            require_signature: true,
            keys: vec![KeyEntry {
                sha256: [1; 32],
                created_at_ns: 10,
                expires_at_ns: Some(11),
            }],
            signing: vec![SigningEntry {
                number: 1,
                sealed: vec![1, 2, 3],
                created_at_ns: 12,
                expires_at_ns: None,
            }],
        }),
    };
    let channel = ChannelRecord {
        id: 5,
        number: 1,
        name: "bank_a".into(),
        endpoint: "http://127.0.0.1:9101".into(),
        currency: 156,
        bank_card: true,
        fee_rate_ppm: 3_000,
        fee_fixed_minor: 10,
        min_minor: 1,
        max_minor: 1_000_000,
        daily_limit_minor: 100_000_000,
        priority: 1,
        weight: 100,
        enabled: true,
        inflight_max: 64,
        created_at_ns: 13,
        notify_secret: None,
        notify_secret_sealed: Tail(Some(vec![9, 9])),
        position_low_water_minor: Tail(1_000),
    };
    vec![
        ("payment", encode(&payment)),
        ("merchant", encode(&merchant)),
        ("channel", encode(&channel)),
        (
            "refund",
            encode(&Refund {
                id: 14,
                payment: payment.id,
                out_refund_no: "r-1".into(),
                amount: 500,
                fee_part: 3,
                status: PaymentStatus::Processing,
                failure_code: None,
                reason: Some("returned".into()),
                created_at_ns: 15,
            }),
        ),
        (
            "card",
            encode(&Card {
                token: 4,
                merchant: 2,
                sealed: vec![4, 5, 6],
                brand: "visa".into(),
                bin: 424_242,
                last4: "4242".into(),
                exp_month: 12,
                exp_year: 2030,
                fingerprint: 16,
                created_at_ns: 17,
            }),
        ),
        (
            "account_meta",
            encode(&AccountMeta {
                owner: Some("alice".into()),
            }),
        ),
        (
            "deposit",
            encode(&Deposit {
                account: AccountId(3),
                amount: 100,
                reference: Some("wire 1".into()),
                created_at_ns: 18,
            }),
        ),
        (
            "batch_transfer",
            encode(&BatchTransfer {
                client_id: "payout-0001".into(),
                merchant: 2,
                reference: Some("June payout".into()),
                created_at_ns: 19,
            }),
        ),
        (
            "webhook_endpoint",
            encode(&Endpoint {
                url: "https://m.example/hook".into(),
                sealed_secret: vec![1],
                created_at_ns: 19,
            }),
        ),
        (
            "webhook_event",
            encode(&Event {
                id: 20,
                merchant: 2,
                kind: "payment.succeeded".into(),
                object_id: "pay_1".into(),
                payload: b"{}".to_vec(),
                created_at_ns: 21,
                status: EventStatus::Failed,
                attempts: 8,
                next_at_ns: 22,
                last_error: Some("HTTP 500".into()),
                delivered_at_ns: Some(23),
            }),
        ),
        (
            "sms",
            encode(&SmsRecord {
                id: 24,
                to: "+8613800138000".into(),
                template: "otp".into(),
                status: "delivered".into(),
                gateway_id: Some("gw_1".into()),
                error: None,
                created_at_ns: 25,
                receipt_at_ns: Some(26),
            }),
        ),
        (
            "otp",
            encode(&OtpRecord {
                id: 27,
                merchant: 2,
                phone: "+8613800138000".into(),
                purpose: "login".into(),
                code_mac: [3; 32],
                expires_at_ns: 28,
                attempts: 1,
                attempts_max: 5,
                verified_at_ns: Some(29),
                sms: 24,
            }),
        ),
        (
            "idempotency",
            encode(&IdemRecord {
                fingerprint: [2; 32],
                status: 201,
                body: b"{\"id\":1}".to_vec(),
            }),
        ),
        (
            "audit",
            encode(&AuditEntry {
                id: 30,
                at_ns: 31,
                actor: "admin:0123abcd".into(),
                source_ip: Some("127.0.0.1".into()),
                action: "merchant.create".into(),
                target: "mch_1".into(),
                before: None,
                after: Some("{}".into()),
            }),
        ),
        (
            "gl_dates",
            encode(&GlDates {
                business_date: engine::gl::BusinessDate(20_788),
                closed_through: Some(engine::gl::BusinessDate(20_787)),
            }),
        ),
    ]
}

/// Decodes a fixture line back into its record and encodes it again: identical bytes.
fn roundtrip(name: &str, bytes: &[u8]) -> Vec<u8> {
    use storage::records::*;
    fn again<T: bincode::Decode<()> + bincode::Encode>(bytes: &[u8]) -> Vec<u8> {
        encode(&decode::<T>(b"fixture", bytes).expect("decodes"))
    }
    match name {
        "payment" => again::<Payment>(bytes),
        "merchant" => again::<Merchant>(bytes),
        "channel" => again::<ChannelRecord>(bytes),
        "refund" => again::<Refund>(bytes),
        "card" => again::<Card>(bytes),
        "account_meta" => again::<AccountMeta>(bytes),
        "deposit" => again::<Deposit>(bytes),
        "batch_transfer" => again::<BatchTransfer>(bytes),
        "webhook_endpoint" => again::<Endpoint>(bytes),
        "webhook_event" => again::<Event>(bytes),
        "sms" => again::<SmsRecord>(bytes),
        "otp" => again::<OtpRecord>(bytes),
        "idempotency" => again::<IdemRecord>(bytes),
        "audit" => again::<AuditEntry>(bytes),
        "gl_dates" => again::<GlDates>(bytes),
        other => panic!("unknown fixture record {other}"),
    }
}

#[test]
fn aux_records_still_decode_and_encode_identically() {
    let path = fixture().with_file_name("aux_v1.hex");
    let current = aux_records();
    if std::env::var_os("RONGPAY_WRITE_FIXTURES").is_some() {
        let text: String = current
            .iter()
            .map(|(name, bytes)| format!("{name} {}\n", hex(bytes)))
            .collect();
        std::fs::write(&path, text).unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("committed fixture");
    let fixture: Vec<(&str, Vec<u8>)> = text
        .lines()
        .map(|l| {
            let (name, h) = l.split_once(' ').unwrap();
            (name, unhex(h))
        })
        .collect();
    assert_eq!(fixture.len(), current.len());
    for ((name, bytes), (fixture_name, fixture_bytes)) in current.iter().zip(&fixture) {
        assert_eq!(name, fixture_name);
        assert_eq!(
            hex(&roundtrip(name, fixture_bytes)),
            hex(fixture_bytes),
            "{name} from the fixture does not decode to what encodes back to it"
        );
        assert_eq!(
            hex(bytes),
            hex(fixture_bytes),
            "{name} encodes differently from the committed layout"
        );
    }
}
