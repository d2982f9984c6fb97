//! `/v1/accounts`: create, read, deposit (admin).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use engine::money::format_minor;
use engine::{
    AccountId, AccountStatus, LiveAccount, PlatformRole, Timestamp, Transfer, TransferId,
    TransferKind,
};
use serde::{Deserialize, Serialize};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::records::{self, AccountMeta};
use crate::state::{new_id, now_ns, AppState};
use services::accounts::{
    check_text, ensure_platform_accounts_once, load, parse_currency, parse_non_negative,
    parse_positive, rejected, view, AccountView,
};

/// Opens an account.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// ISO 4217 alphabetic code.
    #[schema(example = "CNY", pattern = r"^[A-Z]{3}$")]
    currency: String,
    /// Free text, at most 256 bytes.
    #[schema(max_length = 64)]
    owner: Option<String>,
    /// How far below zero the balance may go (default "0").
    #[schema(example = "0.00", pattern = r"^[0-9]+(\.[0-9]+)?$", max_length = 40)]
    credit_limit: Option<String>,
}

/// Customer funds received for an account.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeposit {
    #[schema(example = "100.00", pattern = r"^[0-9]+(\.[0-9]+)?$", max_length = 40)]
    amount: String,
    #[schema(max_length = 64)]
    reference: Option<String>,
}

/// An account's lifecycle state as set by an operator.
#[derive(Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusName {
    /// Takes and gives money.
    Active,
    /// Refuses every posting (payments fail with `account_frozen`) until made active again.
    Frozen,
    /// Final; only an account with zero balance and nothing held or in flight can close.
    Closed,
}

/// Changes an account's status (admin).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    status: StatusName,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DepositView {
    id: String,
    account_id: String,
    amount: String,
    balance: String,
}

#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = CreateAccount, params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "account created", body = AccountView),
        crate::openapi::CreateErrors
    ))]
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (CreateAccount, _) =
        body::json(&req, payload, state.limits, &["credit_limit"]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let currency = parse_currency(&body.currency)?;
    let credit_limit = match &body.credit_limit {
        Some(text) => parse_non_negative(text, currency, "credit_limit")?,
        None => 0,
    };
    check_text(&body.owner, "owner")?;
    let ledger = state.ledger()?;
    let id = AccountId(new_id());
    // A new account's answer is known before it exists: render it first, so that the
    // idempotency record carrying it is written with the account.
    let fresh = LiveAccount::new(engine::Account::new(
        id,
        currency,
        credit_limit,
        Timestamp(0),
    ));
    let answer =
        serde_json::to_vec(&view(&fresh, body.owner.clone())).expect("an account view serializes");
    let meta = AccountMeta { owner: body.owner };
    let after: Option<serde_json::Value> = serde_json::from_slice(&answer).ok();
    let mut records = vec![
        (records::account_meta_key(id), records::encode(&meta)),
        crate::audit::record(
            &state,
            &req,
            "account.create",
            &id.to_string(),
            None::<&()>,
            after.as_ref(),
        ),
    ];
    records.extend(
        idem.as_ref()
            .map(|g| g.record(StatusCode::CREATED, &answer)),
    );
    ledger
        .create_account_with(id, currency, credit_limit, records)
        .await?
        .map_err(rejected)?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "account id (acct_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the account", body = AccountView),
        crate::openapi::ReadErrors
    ))]
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let live = load(&state, &path).await?;
    // A merchant sees its own balance account only; any other answers 404, like a missing one.
    if let auth::Caller::Merchant(m) = &caller {
        if m.account != live.account.id {
            return Err(ApiError::not_found(format!(
                "no account {:?}",
                path.as_str()
            )));
        }
    }
    respond(&state, &live)
}

/// `200` with the account and its owner text.
fn respond(state: &AppState, live: &LiveAccount) -> Result<HttpResponse, ApiError> {
    let meta: Option<AccountMeta> =
        records::read(state.store()?, &records::account_meta_key(live.account.id))?;
    Ok(HttpResponse::Ok().json(view(live, meta.and_then(|m| m.owner))))
}

#[utoipa::path(post, path = "/v1/accounts/{id}/deposits", tag = "accounts", request_body = CreateDeposit,
    params(("id" = String, Path, description = "account id (acct_…)"), ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409")),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "deposited", body = DepositView),
        (status = 404, description = "unknown account", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
pub async fn deposit(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::admin(&req, &state.admin_token)?;
    let (body, raw): (CreateDeposit, _) =
        body::json(&req, payload, state.limits, &["amount"]).await?;
    let idem = match idempotency::begin(&req, &state, &caller, &raw)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let live = load(&state, &path).await?;
    let account = live.account.id;
    let currency = live.account.currency;
    let amount = parse_positive(&body.amount, currency, "amount")?;
    check_text(&body.reference, "reference")?;
    let ledger = state.ledger()?;
    ensure_platform_accounts_once(&state, currency).await?;
    let id = TransferId(new_id());
    let funds = AccountId::platform(PlatformRole::CustomerFunds, currency.numeric());
    // `balance` is the account's balance as this request saw it plus the deposit: rendered
    // before the write so the idempotency record can carry the exact answer. Postings that
    // commit concurrently on the same account are not reflected in it.
    let balance_after = live.account.balance.checked_add(amount).ok_or_else(|| {
        ApiError::invalid("invalid_amount", "the balance would exceed the maximum")
            .with_param("amount")
    })?;
    let answer = serde_json::to_vec(&DepositView {
        id: format!("dep_{:032x}", id.0),
        account_id: account.to_string(),
        amount: format_minor(amount, currency),
        balance: format_minor(balance_after, currency),
    })
    .expect("a deposit view serializes");
    let record = records::Deposit {
        account,
        amount,
        reference: body.reference,
        created_at_ns: now_ns(),
    };
    let after: Option<serde_json::Value> = serde_json::from_slice(&answer).ok();
    let mut records = vec![
        (records::deposit_key(id), records::encode(&record)),
        crate::audit::record(
            &state,
            &req,
            "deposit.create",
            &account.to_string(),
            None::<&()>,
            after.as_ref(),
        ),
    ];
    records.extend(
        idem.as_ref()
            .map(|g| g.record(StatusCode::CREATED, &answer)),
    );
    let transfer = Transfer::between(
        id,
        TransferKind::Deposit,
        funds,
        account,
        currency,
        amount,
        Timestamp(0),
    );
    ledger
        .transfer_with(transfer, records)
        .await?
        .map_err(rejected)?;
    Ok(idempotency::respond(StatusCode::CREATED, answer))
}

#[utoipa::path(patch, path = "/v1/accounts/{id}", tag = "accounts", request_body = UpdateAccount,
    params(("id" = String, Path, description = "account id (acct_…)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the account with its new status", body = AccountView),
        (status = 404, description = "unknown account", body = crate::openapi::ErrorResponse),
        (status = 409, description = "closed, or not empty when closing", body = crate::openapi::ErrorResponse),
        crate::openapi::CreateErrors
    ))]
pub async fn update(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth::admin(&req, &state.admin_token)?;
    let (body, _): (UpdateAccount, _) = body::json(&req, payload, state.limits, &[]).await?;
    let before = load(&state, &path).await?;
    let id = before.account.id;
    let before_status = format!("{:?}", before.account.status).to_lowercase();
    if id.is_platform() {
        return Err(ApiError::invalid(
            "invalid_parameter",
            "the platform's own accounts always stay active",
        )
        .with_param("status"));
    }
    let status = match body.status {
        StatusName::Active => AccountStatus::Active,
        StatusName::Frozen => AccountStatus::Frozen,
        StatusName::Closed => AccountStatus::Closed,
    };
    // Durable (a journal entry) before the answer, like every other change of the ledger.
    state
        .ledger()?
        .set_status(id, status)
        .await?
        .map_err(rejected)?;
    // After the status entry (it is a journal entry of its own).
    crate::audit::write(
        &state,
        crate::audit::record(
            &state,
            &req,
            "account.update",
            &id.to_string(),
            Some(&serde_json::json!({ "status": before_status })),
            Some(&serde_json::json!({ "status": format!("{status:?}").to_lowercase() })),
        ),
    )
    .await?;
    respond(&state, &load(&state, &path).await?)
}
