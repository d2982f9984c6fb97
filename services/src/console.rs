//! The merchant console (issue #19): a merchant's staff sign in with their phone and a
//! one-time code and work on the merchant's own data — payments and orders (search by
//! `out_trade_no` and date), refunds (the refunder and admin roles), settlements and their
//! statements, the daily report, the webhook endpoint (admin). The pages are the HTTP layer's
//! (`api::pages::console`); this module knows staff, sessions and what each role may do.
//!
//! Staff are added by the operator or by the merchant itself through the API (`POST
//! /v1/merchants/{id}/staff`), one per phone and merchant, each a `viewer`, `refunder` or
//! `admin`. A session is sealed into its cookie like the checkout's
//! ([`crate::checkout::seal_value`]); it names the merchant and the staff member, and every
//! step reads the member again, so a disabled member or a lowered role takes effect at once.
//! Every console action that changes something is audited as `staff:<id>` of the merchant.

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::audit::Actor;
use crate::merchants::{merchant_id_text, parse_merchant_id, Caller};
use crate::notifications::otp::{self, CreateOtp, VerifyOtp};
use crate::notifications::{check_phone, mask_phone};
use crate::platform::{new_id, now_ns, Platform};
use crate::records::{self, Merchant, Payment, Staff, StaffRole};
use crate::{Error, Result};

/// How long a console session lasts in all, and a sign-in.
pub const SESSION_NS: u64 = 8 * 3600 * 1_000_000_000;
pub const SIGNED_IN_NS: u64 = 2 * 3600 * 1_000_000_000;
const SEAL_CONTEXT: &[u8] = b"console-session";
const PURPOSE: &str = "console";
/// Most staff members per merchant, and most payments one search answers.
pub const STAFF_MAX: usize = 200;
pub const SEARCH_MAX: usize = 200;

pub fn staff_id_text(id: u128) -> String {
    engine::ids::prefixed_hex("stf_", id)
}

pub fn role_text(r: StaffRole) -> &'static str {
    match r {
        StaffRole::Viewer => "viewer",
        StaffRole::Refunder => "refunder",
        StaffRole::Admin => "admin",
    }
}

fn parse_role(text: &str) -> Result<StaffRole> {
    match text {
        "viewer" => Ok(StaffRole::Viewer),
        "refunder" => Ok(StaffRole::Refunder),
        "admin" => Ok(StaffRole::Admin),
        _ => Err(Error::invalid(
            "invalid_parameter",
            "role must be viewer, refunder or admin",
        )
        .with_param("role")),
    }
}

/// `POST /v1/merchants/{id}/staff`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateStaff {
    #[cfg_attr(
        feature = "openapi",
        schema(example = "王芳", min_length = 1, max_length = 64)
    )]
    pub name: String,
    /// E.164: where the sign-in codes go. One staff member per phone and merchant.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "+8613900000001", pattern = r"^\+[0-9]{8,15}$")
    )]
    pub phone: String,
    /// viewer (sees and downloads), refunder (also refunds) or admin (also manages the
    /// webhook endpoint).
    #[cfg_attr(feature = "openapi", schema(pattern = "^(viewer|refunder|admin)$"))]
    pub role: String,
}

/// `PATCH /v1/merchants/{id}/staff/{staff_id}`.
#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateStaff {
    #[cfg_attr(feature = "openapi", schema(pattern = "^(viewer|refunder|admin)$"))]
    pub role: Option<String>,
    /// false: the member can no longer sign in, and a session of theirs ends at its next step.
    pub active: Option<bool>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StaffView {
    id: String,
    merchant_id: String,
    name: String,
    /// Masked.
    phone: String,
    role: &'static str,
    active: bool,
    created_at: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StaffList {
    data: Vec<StaffView>,
}

pub fn staff_view(s: &Staff) -> StaffView {
    StaffView {
        id: staff_id_text(s.id),
        merchant_id: merchant_id_text(s.merchant),
        name: s.name.clone(),
        phone: mask_phone(&s.phone),
        role: role_text(s.role),
        active: s.active,
        created_at: records::time_text(s.created_at_ns),
    }
}

/// Adds a staff member to `merchant` (as `actor`), durably with its phone index and audit
/// entry.
pub async fn add_staff(
    state: &Platform,
    actor: &Actor,
    merchant: &Merchant,
    body: CreateStaff,
) -> Result<StaffView> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(
            Error::invalid("invalid_parameter", "name must be 1 to 64 characters")
                .with_param("name"),
        );
    }
    crate::pan::refuse(name, "name")?;
    check_phone(&body.phone, "phone")?;
    let role = parse_role(&body.role)?;
    let store = state.store()?;
    let mac = crate::customers::phone_mac(state, &body.phone);
    let _turn = crate::platform::take_turn(&state.order_turns, merchant.id).await;
    if records::read::<u128>(store, &records::staff_by_phone_key(merchant.id, &mac))?.is_some() {
        return Err(Error::conflict(
            "duplicate_staff_phone",
            "this merchant already has a staff member with that phone",
        )
        .with_param("phone"));
    }
    let mut count = 0;
    let prefix = records::staff_prefix(merchant.id);
    store.for_each_aux_with_prefix_from(&prefix, &prefix, STAFF_MAX + 1, |_, _| {
        count += 1;
        Ok(())
    })?;
    if count >= STAFF_MAX {
        return Err(Error::conflict(
            "too_many_staff",
            format!("a merchant has at most {STAFF_MAX} staff members"),
        ));
    }
    let s = Staff {
        id: new_id(),
        merchant: merchant.id,
        name: name.to_string(),
        phone: body.phone,
        role,
        active: true,
        created_at_ns: now_ns(),
        created_by: actor.name.clone(),
        extra: records::Tail(()),
    };
    let v = staff_view(&s);
    state
        .ledger()?
        .write_records(vec![
            (records::staff_key(merchant.id, s.id), records::encode(&s)),
            (
                records::staff_by_phone_key(merchant.id, &mac),
                records::encode(&s.id),
            ),
            crate::audit::record(
                state,
                actor,
                "staff.create",
                &staff_id_text(s.id),
                None::<&()>,
                Some(&v),
            ),
        ])
        .await?;
    Ok(v)
}

/// The staff of `merchant`.
pub fn list_staff(state: &Platform, merchant: u128) -> Result<StaffList> {
    let store = state.store()?;
    let prefix = records::staff_prefix(merchant);
    let mut data = Vec::new();
    store.for_each_aux_with_prefix_from(&prefix, &prefix, STAFF_MAX, |k, v| {
        data.push(staff_view(&records::decode::<Staff>(k, v)?));
        Ok(())
    })?;
    Ok(StaffList { data })
}

fn load_staff(state: &Platform, merchant: u128, id: u128) -> Result<Option<Staff>> {
    records::read(state.store()?, &records::staff_key(merchant, id))
}

/// Changes a staff member's role or active flag (as `actor`), audited.
pub async fn update_staff(
    state: &Platform,
    actor: &Actor,
    merchant: u128,
    id_text: &str,
    body: UpdateStaff,
) -> Result<StaffView> {
    let not_found = || Error::not_found(format!("no staff member {id_text:?}"));
    let id = records::parse_id(id_text, "stf_").ok_or_else(not_found)?;
    let _turn = crate::platform::take_turn(&state.order_turns, merchant).await;
    let mut s = load_staff(state, merchant, id)?.ok_or_else(not_found)?;
    let before = staff_view(&s);
    if let Some(r) = &body.role {
        s.role = parse_role(r)?;
    }
    if let Some(a) = body.active {
        s.active = a;
    }
    let after = staff_view(&s);
    state
        .ledger()?
        .write_records(vec![
            (records::staff_key(merchant, s.id), records::encode(&s)),
            crate::audit::record(
                state,
                actor,
                "staff.update",
                &staff_id_text(s.id),
                Some(&before),
                Some(&after),
            ),
        ])
        .await?;
    Ok(after)
}

/// A console session (sealed into its cookie).
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Session {
    pub nonce: u128,
    /// The merchant signing in or signed in at (0: none).
    pub merchant: u128,
    /// The staff member a code was sent to or who signed in (0: none).
    pub staff: u128,
    /// The code awaiting its check (0: none).
    pub otp: u128,
    pub signed_in_until_ns: u64,
    pub expires_at_ns: u64,
}

/// The session in cookie value `value`, or a new one.
pub fn open_session(state: &Platform, value: Option<&str>) -> Session {
    let now = now_ns();
    value
        .and_then(|v| crate::checkout::open_value::<Session>(state, SEAL_CONTEXT, v))
        .filter(|s| now < s.expires_at_ns)
        .unwrap_or_else(|| Session {
            nonce: rand::random(),
            expires_at_ns: now.saturating_add(SESSION_NS),
            ..Session::default()
        })
}

pub fn seal_session(state: &Platform, s: &Session) -> String {
    crate::checkout::seal_value(state, SEAL_CONTEXT, s)
}

/// The form token of session `s`.
pub fn csrf_token(state: &Platform, s: &Session) -> String {
    let mac = state
        .master
        .mac(&[b"console-csrf\0".as_slice(), &s.nonce.to_be_bytes()].concat());
    records::hex(&mac[..16])
}

pub fn check_csrf(state: &Platform, s: &Session, token: &str) -> Result<()> {
    crate::checkout::check_token(&csrf_token(state, s), token)
}

/// Who is signed in: the staff member (active, read now) and their merchant.
pub struct SignedIn {
    pub staff: Staff,
    pub merchant: Merchant,
}

impl SignedIn {
    /// The merchant as the API's flows see their caller.
    pub fn caller(&self) -> Caller {
        Caller::Merchant(Box::new(self.merchant.clone()))
    }

    /// The audit actor of this staff member's actions.
    pub fn actor(&self, source_ip: Option<String>) -> Actor {
        Actor {
            name: format!(
                "staff:{}@{}",
                staff_id_text(self.staff.id),
                merchant_id_text(self.merchant.id)
            ),
            source_ip,
        }
    }

    /// Refuses unless the member's role is at least `role`.
    pub fn require(&self, role: StaffRole) -> Result<()> {
        if self.staff.role >= role {
            Ok(())
        } else {
            Err(Error::Unauthenticated {
                code: "role_insufficient",
                message: format!(
                    "this needs the {} role; you are a {}",
                    role_text(role),
                    role_text(self.staff.role)
                ),
            })
        }
    }
}

/// The signed-in member of session `s`, if the sign-in holds and the member is active.
pub fn signed_in(state: &Platform, s: &Session) -> Result<Option<SignedIn>> {
    if s.staff == 0 || now_ns() >= s.signed_in_until_ns {
        return Ok(None);
    }
    let Some(staff) = load_staff(state, s.merchant, s.staff)?.filter(|m| m.active) else {
        return Ok(None);
    };
    let Some(merchant) =
        records::read::<Merchant>(state.store()?, &records::merchant_key(s.merchant))?
    else {
        return Ok(None);
    };
    Ok(Some(SignedIn { staff, merchant }))
}

/// Sends a sign-in code to `phone` if it is an active staff member's of merchant
/// `merchant_text`. The answer is the same either way (no probing who is staff where).
pub async fn send_code(
    state: &Platform,
    s: &Session,
    merchant_text: &str,
    phone: &str,
) -> Result<Session> {
    check_phone(phone, "phone")?;
    let merchant = parse_merchant_id(merchant_text.trim()).unwrap_or(0);
    let mac = crate::customers::phone_mac(state, phone);
    let staff =
        records::read::<u128>(state.store()?, &records::staff_by_phone_key(merchant, &mac))?
            .map(|id| load_staff(state, merchant, id))
            .transpose()?
            .flatten()
            .filter(|m| m.active);
    let mut next = Session {
        merchant,
        staff: 0,
        otp: u128::MAX,
        signed_in_until_ns: 0,
        ..s.clone()
    };
    if let Some(m) = staff {
        let r = otp::create(
            state,
            merchant,
            CreateOtp {
                phone: phone.to_string(),
                purpose: Some(PURPOSE.to_string()),
            },
        )
        .await?;
        next.staff = m.id;
        next.otp = r.id;
    }
    Ok(next)
}

/// Checks the code; audited as the member's sign-in.
pub async fn sign_in(
    state: &Platform,
    s: &Session,
    code: &str,
    source_ip: Option<String>,
) -> Result<Session> {
    if s.otp == 0 {
        return Err(Error::invalid("otp_not_sent", "ask for a code first"));
    }
    if s.staff == 0 || s.otp == u128::MAX {
        // No such member: refused like a wrong code, without a code to check.
        return Err(Error::invalid("otp_incorrect", "the code is not right").with_param("code"));
    }
    otp::verify(
        state,
        s.merchant,
        VerifyOtp {
            id: format!("otp_{:032x}", s.otp),
            code: code.trim().to_string(),
        },
    )
    .await?;
    let now = now_ns();
    let next = Session {
        otp: 0,
        signed_in_until_ns: now.saturating_add(SIGNED_IN_NS),
        expires_at_ns: s.expires_at_ns.max(now.saturating_add(SIGNED_IN_NS)),
        ..s.clone()
    };
    if let Some(who) = signed_in(state, &next)? {
        crate::audit::write(
            state,
            crate::audit::record(
                state,
                &who.actor(source_ip),
                "console.sign_in",
                &staff_id_text(who.staff.id),
                None::<&()>,
                None::<&()>,
            ),
        )
        .await?;
    }
    Ok(next)
}

pub fn sign_out(s: &Session) -> Session {
    Session {
        nonce: s.nonce,
        expires_at_ns: s.expires_at_ns,
        ..Session::default()
    }
}

/// What a console search found.
pub struct Found {
    /// Newest first, at most [`SEARCH_MAX`].
    pub payments: Vec<Payment>,
    /// More payments than shown.
    pub more: bool,
    /// The order with the `out_trade_no` searched for, if any.
    pub order: Option<records::Order>,
}

/// The merchant's payments with `out_trade_no` (and the order with it, and that order's
/// payments), or created on business date `date`.
pub fn search(
    state: &Platform,
    merchant: u128,
    out_trade_no: Option<&str>,
    date: Option<&str>,
) -> Result<Found> {
    if let Some(otn) = out_trade_no.map(str::trim).filter(|t| !t.is_empty()) {
        let mut payments: Vec<Payment> = crate::payments::by_out_trade_no(state, merchant, otn)?
            .into_iter()
            .collect();
        // An order's payments (`ord_…-n`) are found by the order's out_trade_no too.
        let order = find_order(state, merchant, otn)?;
        if let Some(o) = &order {
            for n in 1..=o.attempts {
                let otn = format!("{}-{n}", crate::orders::order_id_text(o.id));
                payments.extend(crate::payments::by_out_trade_no(state, merchant, &otn)?);
            }
        }
        return Ok(Found {
            payments,
            more: false,
            order,
        });
    }
    let store = state.store()?;
    let period = state.period()?;
    let date = match date.map(str::trim).filter(|d| !d.is_empty()) {
        None => period.open,
        Some(text) => crate::gl::parse_date(text, "date")?,
    };
    let (start, end) = crate::reports::span(store, date)?;
    let prefix = records::prefix::PAYMENT;
    let from = [prefix, &crate::reports::id_from(start).to_be_bytes()].concat();
    let stop_at = crate::reports::id_from(end);
    let mut out = Vec::new();
    let mut more = false;
    let mut done = false;
    store.for_each_aux_with_prefix_from(prefix, &from, usize::MAX, |k, v| {
        if done {
            return Ok(());
        }
        let id = records::id_after(k, prefix).unwrap_or(0);
        if id >= stop_at && end != u64::MAX {
            done = true;
            return Ok(());
        }
        let p: Payment = records::decode(k, v)?;
        if p.merchant == merchant && p.business_date.0 == Some(date) {
            if out.len() == SEARCH_MAX {
                more = true;
                done = true;
            } else {
                out.push(p);
            }
        }
        Ok(())
    })?;
    out.reverse();
    Ok(Found {
        payments: out,
        more,
        order: None,
    })
}

/// The merchant's order with `out_trade_no`, if any.
fn find_order(
    state: &Platform,
    merchant: u128,
    out_trade_no: &str,
) -> Result<Option<records::Order>> {
    let store = state.store()?;
    let Some(id) = records::read::<u128>(
        store,
        &records::order_by_out_trade_no_key(merchant, out_trade_no),
    )?
    else {
        return Ok(None);
    };
    records::read(store, &records::order_key(id))
}

/// A new refund's `out_refund_no` from the console.
pub fn out_refund_no(staff: u128) -> String {
    format!("console-{:08x}-{:016x}", staff as u32, new_id() as u64)
}
