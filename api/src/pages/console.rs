//! The merchant console (`/console`, issue #19): a merchant's staff sign in with their phone
//! and a one-time code, search payments by `out_trade_no` or date, refund (refunder, admin),
//! see settlements and download each one's statement and the daily report as CSV, and manage
//! the webhook endpoint (admin). Same stack and protections as the checkout (`super`): no
//! script, our stylesheet only, a sealed session cookie, a form token on every post.
//! What staff and roles may do is `services::console`'s.

use actix_web::http::header::{HeaderValue, SET_COOKIE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use services::console::{self, Session, SignedIn};
use services::records::{Payment, PaymentStatus, StaffRole};

use super::{form, respond, same_site};
use crate::error::ApiError;
use crate::state::AppState;

const COOKIE_NAME: &str = "rp_console";

fn session(req: &HttpRequest, state: &AppState) -> Session {
    console::open_session(state, super::cookie_value(req, COOKIE_NAME))
}

fn cookie(state: &AppState, s: &Session) -> String {
    super::session_cookie(
        &state.settings.public_url,
        COOKIE_NAME,
        "/console",
        &console::seal_session(state, s),
        console::SESSION_NS / 1_000_000_000,
    )
}

fn with_cookie(mut r: HttpResponse, state: &AppState, s: &Session) -> HttpResponse {
    if let Ok(v) = HeaderValue::from_str(&cookie(state, s)) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

fn redirect(to: &str, state: &AppState, s: &Session) -> HttpResponse {
    respond(StatusCode::SEE_OTHER)
        .insert_header(("location", to.to_string()))
        .insert_header((SET_COOKIE, cookie(state, s)))
        .finish()
}

/// A page's status for a refusal (a page has no credentials to fix: 401 is 403 here).
fn status_of(e: &ApiError) -> StatusCode {
    match e.status {
        StatusCode::UNAUTHORIZED => StatusCode::FORBIDDEN,
        s => s,
    }
}

fn layout(
    title: &str,
    who: Option<(&SignedIn, &str)>,
    error: Option<&str>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — rongpay merchant console" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                header.top {
                    p.brand { "rongpay merchant console" }
                    @if let Some((w, csrf)) = who {
                        nav aria-label="Console" {
                            a href="/console/payments" { "Payments" }
                            a href="/console/settlements" { "Settlements" }
                            a href="/console/reports" { "Reports" }
                            a href="/console/webhooks" { "Webhooks and keys" }
                        }
                        p.who id="who" {
                            (w.merchant.name) " · " (w.staff.name) " (" (console::role_text(w.staff.role)) ")"
                        }
                        form method="post" action="/console/signout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button.secondary id="sign-out" type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some(e) = error { div.error id="error" role="alert" { (e) } }
                    (body)
                }
            }
        }
    }
}

fn message(e: &ApiError) -> String {
    match e.code {
        "csrf_token_invalid" | "cross_site_request" => {
            "This form has expired. The page was reloaded: please try again.".into()
        }
        "role_insufficient" => format!("{} Ask an admin of your merchant.", e.message),
        _ => e.message.clone(),
    }
}

/// The signed-in member, or the response that sends the browser to sign in.
fn member(state: &AppState, s: &Session) -> Result<SignedIn, Box<HttpResponse>> {
    match console::signed_in(state, s) {
        Ok(Some(w)) => Ok(w),
        Ok(None) => Err(Box::new(redirect("/console", state, s))),
        Err(e) => Err(Box::new(error_page(state, s, &e.into()))),
    }
}

fn error_page(state: &AppState, s: &Session, e: &ApiError) -> HttpResponse {
    let body = layout(
        "Something went wrong",
        None,
        Some(&message(e)),
        html! {
            p { a href="/console" { "Back to the console" } }
        },
    );
    with_cookie(super::html(status_of(e), body), state, s)
}

/// `GET /console/static/console.css`.
pub async fn stylesheet() -> HttpResponse {
    respond(StatusCode::OK)
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=300"))
        .body(include_str!("console.css"))
}

fn sign_in_page(state: &AppState, s: &Session, error: Option<&ApiError>) -> HttpResponse {
    let csrf = console::csrf_token(state, s);
    let body = if s.otp != 0 {
        html! {
            form method="post" action="/console/signin" {
                input type="hidden" name="csrf" value=(csrf);
                label for="code" { "The code sent to your phone" }
                input id="code" name="code" type="text" inputmode="numeric"
                    autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required;
                button id="sign-in" type="submit" { "Sign in" }
            }
            form method="post" action="/console/signout" {
                input type="hidden" name="csrf" value=(csrf);
                button.secondary id="start-over" type="submit" { "Start over" }
            }
        }
    } else {
        html! {
            form method="post" action="/console/code" {
                input type="hidden" name="csrf" value=(csrf);
                label for="merchant_id" { "Merchant ID" }
                input id="merchant_id" name="merchant_id" type="text" autocomplete="username"
                    placeholder="mch_…" required;
                label for="phone" { "Your phone number" }
                input id="phone" name="phone" type="tel" autocomplete="tel"
                    placeholder="+8613900000001" required;
                p.hint { "Staff of the merchant receive a one-time code by SMS." }
                button id="send-code" type="submit" { "Send code" }
            }
        }
    };
    let text = error.map(message);
    let status = error.map_or(StatusCode::OK, status_of);
    with_cookie(
        super::html(status, layout("Sign in", None, text.as_deref(), body)),
        state,
        s,
    )
}

#[utoipa::path(
    get,
    path = "/console",
    tag = "console",
    responses(crate::openapi::PageAnswers)
)]
/// `GET /console`.
pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(e) = state.serving() {
        let e = ApiError::from(e);
        return super::html(
            e.status,
            layout("Not ready", None, Some(&e.message), html! {}),
        );
    }
    let s = session(&req, &state);
    match console::signed_in(&state, &s) {
        Ok(Some(_)) => redirect("/console/payments", &state, &s),
        Ok(None) => sign_in_page(&state, &s, None),
        Err(e) => error_page(&state, &s, &e.into()),
    }
}

trait Csrf: serde::de::DeserializeOwned {
    fn csrf(&self) -> &str;
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CodeRequest {
    csrf: String,
    #[schema(example = "mch_0193a1b2c3d4e5f60718293a4b5c6d7e")]
    merchant_id: String,
    #[schema(example = "+8613900000001")]
    phone: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct SignInForm {
    csrf: String,
    code: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct TokenForm {
    csrf: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct RefundForm {
    csrf: String,
    /// The amount to refund (decimal, at the currency's scale).
    #[schema(example = "30.00")]
    amount: String,
    reason: Option<String>,
}

/// Makes a new credential of the merchant's.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct KeyForm {
    csrf: String,
    /// secret_key (API key, sk_…) or signing_secret (ss_…).
    #[schema(pattern = "^(secret_key|signing_secret)$")]
    kind: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct WebhookForm {
    csrf: String,
    #[schema(example = "https://shop.example/hooks/rongpay")]
    url: String,
}

macro_rules! csrf_form {
    ($($t:ty),*) => {$(impl Csrf for $t { fn csrf(&self) -> &str { &self.csrf } })*};
}
csrf_form!(
    CodeRequest,
    SignInForm,
    TokenForm,
    RefundForm,
    WebhookForm,
    KeyForm
);

/// A post's checks: serving, same site, the form, its token.
async fn accept<T: Csrf>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(Session, T), (Session, ApiError)> {
    let s = session(req, state);
    let checked = async {
        state.serving()?;
        same_site(req)?;
        let f: T = form(req, payload, state.limits.timeout).await?;
        console::check_csrf(state, &s, f.csrf())?;
        Ok::<T, ApiError>(f)
    }
    .await;
    match checked {
        Ok(f) => Ok((s, f)),
        Err(e) => Err((s, e)),
    }
}

fn ip(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

#[utoipa::path(post, path = "/console/code", tag = "console",
    request_body(content = CodeRequest, content_type = "application/x-www-form-urlencoded"),
    responses(crate::openapi::PageAnswers))]
/// Sends a staff member a sign-in code.
pub async fn send_code(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (s, f) = match accept::<CodeRequest>(&req, payload, &state).await {
        Ok(v) => v,
        Err((s, e)) => return sign_in_page(&state, &s, Some(&e)),
    };
    let phone: String = f
        .phone
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    match console::send_code(&state, &s, &f.merchant_id, &phone).await {
        Ok(next) => redirect("/console", &state, &next),
        Err(e) => sign_in_page(&state, &s, Some(&e.into())),
    }
}

#[utoipa::path(post, path = "/console/signin", tag = "console",
    request_body(content = SignInForm, content_type = "application/x-www-form-urlencoded"),
    responses(crate::openapi::PageAnswers))]
/// Checks the code and signs the staff member in.
pub async fn sign_in(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (s, f) = match accept::<SignInForm>(&req, payload, &state).await {
        Ok(v) => v,
        Err((s, e)) => return sign_in_page(&state, &s, Some(&e)),
    };
    match console::sign_in(&state, &s, &f.code, ip(&req)).await {
        Ok(next) => redirect("/console/payments", &state, &next),
        Err(e) => sign_in_page(&state, &s, Some(&e.into())),
    }
}

#[utoipa::path(post, path = "/console/signout", tag = "console",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(crate::openapi::PageAnswers))]
/// Signs out.
pub async fn sign_out(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    match accept::<TokenForm>(&req, payload, &state).await {
        Ok((s, _)) => redirect("/console", &state, &console::sign_out(&s)),
        Err((s, e)) => sign_in_page(&state, &s, Some(&e)),
    }
}

fn money(minor: i64, currency: u16) -> String {
    match engine::Currency::from_numeric(currency) {
        Some(c) => format!("{} {}", c.code(), engine::money::format_minor(minor, c)),
        None => minor.to_string(),
    }
}

fn status_text(s: PaymentStatus) -> &'static str {
    match s {
        PaymentStatus::Succeeded => "succeeded",
        PaymentStatus::Failed => "failed",
        PaymentStatus::Processing => "processing",
        PaymentStatus::Authorized => "authorized",
        PaymentStatus::Canceled => "canceled",
    }
}

#[derive(Deserialize, Default)]
struct SearchQuery {
    out_trade_no: Option<String>,
    date: Option<String>,
}

#[utoipa::path(get, path = "/console/payments", tag = "console",
    params(("out_trade_no" = Option<String>, Query, description = "the merchant's order number (its order's payments too)"),
           ("date" = Option<String>, Query, description = "business date (YYYY-MM-DD; default the open date)")),
    responses(crate::openapi::PageAnswers))]
/// `GET /console/payments?out_trade_no=…&date=…`.
pub async fn payments(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let s = session(&req, &state);
    let w = match member(&state, &s) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let q: SearchQuery = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let csrf = console::csrf_token(&state, &s);
    let found = console::search(
        &state,
        w.merchant.id,
        q.out_trade_no.as_deref(),
        q.date.as_deref(),
    );
    let (rows, more, order, error) = match found {
        Ok(f) => (f.payments, f.more, f.order, None),
        Err(e) => (Vec::new(), false, None, Some(ApiError::from(e))),
    };
    let body = html! {
        form.search method="get" action="/console/payments" role="search" {
            div {
                label for="out_trade_no" { "Order number (out_trade_no)" }
                input id="out_trade_no" name="out_trade_no" type="search"
                    value=(q.out_trade_no.clone().unwrap_or_default());
            }
            div {
                label for="date" { "Business date" }
                input id="date" name="date" type="date" value=(q.date.clone().unwrap_or_default());
            }
            button id="search" type="submit" { "Search" }
        }
        @if let Some(o) = &order {
            dl.facts id="order" {
                dt { "Order" } dd { (services::orders::order_id_text(o.id)) }
                dt { "Amount" } dd { (money(o.amount, o.currency)) }
                dt { "Status" } dd id="order-status" { (match o.status {
                    services::records::OrderStatus::Open => "open",
                    services::records::OrderStatus::Paid => "paid",
                    services::records::OrderStatus::Closed => "closed",
                }) }
                dt { "Open until" } dd { (services::records::time_text(o.expires_at_ns)) }
            }
        }
        table id="payments" {
            caption { (rows.len()) " payment(s)" @if more { ", more not shown" } }
            thead { tr { th scope="col" { "Order number" } th scope="col" { "Amount" } th scope="col" { "Refunded" } th scope="col" { "Status" } th scope="col" { "Created" } } }
            tbody {
                @for p in &rows {
                    tr data-payment=(services::payments::payment_id_text(p.id)) {
                        td { a href={ "/console/payments/" (services::payments::payment_id_text(p.id)) } { (p.out_trade_no) } }
                        td.n { (money(p.amount, p.currency)) }
                        td.n { (money(p.refunded, p.currency)) }
                        td { (status_text(p.status)) }
                        td { (services::records::time_text(p.created_at_ns)) }
                    }
                }
            }
        }
    };
    let text = error.as_ref().map(message);
    let status = error.as_ref().map_or(StatusCode::OK, status_of);
    with_cookie(
        super::html(
            status,
            layout("Payments", Some((&w, csrf.as_str())), text.as_deref(), body),
        ),
        &state,
        &s,
    )
}

async fn payment_page(
    state: &AppState,
    s: &Session,
    w: &SignedIn,
    id: &str,
    error: Option<&ApiError>,
) -> HttpResponse {
    let csrf = console::csrf_token(state, s);
    let p: Payment = match services::payments::load_visible(state, &w.caller(), id).await {
        Ok(p) => p,
        Err(e) => {
            let e = ApiError::from(e);
            let body = layout(
                "Payment not found",
                Some((w, csrf.as_str())),
                Some(&message(&e)),
                html! {},
            );
            return with_cookie(super::html(status_of(&e), body), state, s);
        }
    };
    let refunds = services::refunds::list(state, &w.caller(), id, || {})
        .await
        .map(|(v, _)| serde_json::to_value(v).unwrap_or_default())
        .unwrap_or_default();
    let refundable = p.status == PaymentStatus::Succeeded && p.refunded < p.amount;
    let body = html! {
        dl.facts id="payment" {
            dt { "Payment" } dd { (services::payments::payment_id_text(p.id)) }
            dt { "Order number" } dd id="out_trade_no" { (p.out_trade_no) }
            dt { "Amount" } dd id="amount" { (money(p.amount, p.currency)) }
            dt { "Fee" } dd { (money(p.fee, p.currency)) }
            dt { "Refunded" } dd id="refunded" { (money(p.refunded, p.currency)) }
            dt { "Status" } dd id="status" { (status_text(p.status)) }
            dt { "Created" } dd { (services::records::time_text(p.created_at_ns)) }
        }
        h2 { "Refunds" }
        table id="refunds" {
            thead { tr { th scope="col" { "Refund" } th scope="col" { "Amount" } th scope="col" { "Status" } th scope="col" { "Reason" } } }
            tbody {
                @for r in refunds.as_array().into_iter().flatten() {
                    tr {
                        td { (r["out_refund_no"].as_str().unwrap_or("")) }
                        td.n { (r["amount"].as_str().unwrap_or("")) }
                        td { (r["status"].as_str().unwrap_or("")) }
                        td { (r["reason"].as_str().unwrap_or("")) }
                    }
                }
            }
        }
        @if refundable && w.staff.role >= StaffRole::Refunder {
            form method="post" action={ "/console/payments/" (id) "/refund" } id="refund-form" {
                input type="hidden" name="csrf" value=(csrf);
                label for="refund-amount" { "Amount to refund" }
                input id="refund-amount" name="amount" type="text" inputmode="decimal" required;
                label for="reason" { "Reason (optional)" }
                input id="reason" name="reason" type="text" maxlength="256";
                button id="refund" type="submit" { "Refund" }
            }
        }
    };
    let text = error.map(message);
    let status = error.map_or(StatusCode::OK, status_of);
    with_cookie(
        super::html(
            status,
            layout("Payment", Some((w, csrf.as_str())), text.as_deref(), body),
        ),
        state,
        s,
    )
}

#[utoipa::path(get, path = "/console/payments/{id}", tag = "console",
    params(("id" = String, Path, description = "payment id (pay_…)")),
    responses(crate::openapi::PageAnswers))]
/// `GET /console/payments/{id}`.
pub async fn payment(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let s = session(&req, &state);
    match member(&state, &s) {
        Ok(w) => payment_page(&state, &s, &w, &path, None).await,
        Err(r) => *r,
    }
}

#[utoipa::path(post, path = "/console/payments/{id}/refund", tag = "console",
    request_body(content = RefundForm, content_type = "application/x-www-form-urlencoded"),
    params(("id" = String, Path, description = "payment id (pay_…)")),
    responses(crate::openapi::PageAnswers))]
/// (refunder, admin) Refunds part or all of a payment; audited as the staff member.
pub async fn refund(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let (s, f) = match accept::<RefundForm>(&req, payload, &state).await {
        Ok(v) => v,
        Err((s, e)) => {
            return match member(&state, &s) {
                Ok(w) => payment_page(&state, &s, &w, &path, Some(&e)).await,
                // Not signed in: the refusal itself, on the sign-in page.
                Err(_) => sign_in_page(&state, &s, Some(&e)),
            };
        }
    };
    let w = match member(&state, &s) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    if let Err(e) = w.require(StaffRole::Refunder) {
        return payment_page(&state, &s, &w, &path, Some(&e.into())).await;
    }
    let body = services::refunds::CreateRefund {
        amount: Some(f.amount.trim().to_string()),
        out_refund_no: console::out_refund_no(w.staff.id),
        reason: f.reason.filter(|r| !r.trim().is_empty()),
    };
    let done =
        services::refunds::create(&state.platform, &w.caller(), &path, body, None, || {}).await;
    match done {
        Ok(created) => {
            let after = match &created {
                services::refunds::Created::New(bytes) => {
                    serde_json::from_slice::<serde_json::Value>(bytes).unwrap_or_default()
                }
                services::refunds::Created::Existing(v) => {
                    serde_json::to_value(v).unwrap_or_default()
                }
            };
            let audit = services::audit::record(
                &state,
                &w.actor(ip(&req)),
                "console.refund",
                &path,
                None::<&()>,
                Some(&after),
            );
            if let Err(e) = services::audit::write(&state, audit).await {
                return payment_page(&state, &s, &w, &path, Some(&e.into())).await;
            }
            redirect(&format!("/console/payments/{}", path.as_str()), &state, &s)
        }
        Err(e) => payment_page(&state, &s, &w, &path, Some(&e.into())).await,
    }
}

#[utoipa::path(
    get,
    path = "/console/settlements",
    tag = "console",
    responses(crate::openapi::PageAnswers)
)]
/// `GET /console/settlements`.
pub async fn settlements(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let s = session(&req, &state);
    let w = match member(&state, &s) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let csrf = console::csrf_token(&state, &s);
    let list = services::settlement::list(&state, &w.caller(), None, None);
    let (rows, error) = match list {
        Ok(l) => (l.data, None),
        Err(e) => (Vec::new(), Some(ApiError::from(e))),
    };
    let body = html! {
        table id="settlements" {
            thead { tr { th scope="col" { "Batch" } th scope="col" { "Date" } th scope="col" { "Gross" } th scope="col" { "Refunds" } th scope="col" { "Fees" } th scope="col" { "Net" } th scope="col" { "Status" } th scope="col" { "Statement" } } }
            tbody {
                @if rows.is_empty() { tr { td colspan="8" { "No settlements yet." } } }
                @for b in &rows {
                    tr {
                        td { (b.id) } td { (b.date) } td.n { (b.gross) } td.n { (b.refunds) }
                        td.n { (b.fees) } td.n { (b.net) } td { (b.status) }
                        td { a href={ "/console/settlements/" (b.id) "/statement.csv" } download { "CSV" } }
                    }
                }
            }
        }
    };
    let text = error.as_ref().map(message);
    with_cookie(
        super::html(
            StatusCode::OK,
            layout(
                "Settlements",
                Some((&w, csrf.as_str())),
                text.as_deref(),
                body,
            ),
        ),
        &state,
        &s,
    )
}

fn csv(name: &str, body: String) -> HttpResponse {
    respond(StatusCode::OK)
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body)
}

#[utoipa::path(get, path = "/console/settlements/{id}/statement.csv", tag = "console",
    params(("id" = String, Path, description = "settlement batch id")),
    responses(
        (status = 200, description = "the batch's statement, as GET /v1/settlements/{id} with Accept: text/csv", content_type = "text/csv", body = String),
        (status = 303, description = "not signed in: to /console"),
        (status = 404, description = "no such batch of this merchant", content_type = "text/html", body = String)
    ))]
/// `GET /console/settlements/{id}/statement.csv`.
pub async fn statement(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let s = session(&req, &state);
    let w = match member(&state, &s) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    match services::settlement::statement_csv(&state, &w.caller(), &path) {
        Ok(text) => csv(&format!("{}.csv", path.as_str()), text),
        Err(e) => error_page(&state, &s, &e.into()),
    }
}

#[derive(Deserialize, Default)]
struct DateQuery {
    date: Option<String>,
}

#[utoipa::path(get, path = "/console/reports", tag = "console",
    params(("date" = Option<String>, Query, description = "business date (YYYY-MM-DD; default the open date)")),
    responses(crate::openapi::PageAnswers))]
/// `GET /console/reports?date=…`.
pub async fn reports(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let s = session(&req, &state);
    let w = match member(&state, &s) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let csrf = console::csrf_token(&state, &s);
    let q: DateQuery = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let report = services::reports::daily(&state, q.date.as_deref(), Some(w.merchant.id));
    let (report, error) = match report {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(ApiError::from(e))),
    };
    let body = html! {
        form.search method="get" action="/console/reports" {
            div {
                label for="date" { "Business date" }
                input id="date" name="date" type="date" value=(q.date.clone().unwrap_or_default());
            }
            button id="show" type="submit" { "Show" }
        }
        @if let Some(r) = &report {
            dl.facts id="report" {
                dt { "Date" } dd id="report-date" { (r.date) }
                dt { "Fees" } dd { (r.currency) " " (r.fees) }
                dt { "Net" } dd { (r.currency) " " (r.net) }
                dt { "Success rate" } dd { (r.success_rate.clone().unwrap_or_else(|| "–".into())) }
            }
            p { a.button id="download-daily" href={ "/console/reports/daily.csv?date=" (r.date) } download { "Download the daily report (CSV)" } }
        }
    };
    let text = error.as_ref().map(message);
    let status = error.as_ref().map_or(StatusCode::OK, status_of);
    with_cookie(
        super::html(
            status,
            layout("Reports", Some((&w, csrf.as_str())), text.as_deref(), body),
        ),
        &state,
        &s,
    )
}

#[utoipa::path(get, path = "/console/reports/daily.csv", tag = "console",
    params(("date" = Option<String>, Query, description = "business date (YYYY-MM-DD; default the open date)")),
    responses(
        (status = 200, description = "the merchant's daily report, as GET /v1/reports/daily with Accept: text/csv", content_type = "text/csv", body = String),
        (status = 303, description = "not signed in: to /console"),
        (status = 400, description = "a date that is not YYYY-MM-DD", content_type = "text/html", body = String)
    ))]
/// `GET /console/reports/daily.csv?date=…`: the same CSV as `GET /v1/reports/daily` with
/// `Accept: text/csv`, for the signed-in merchant.
pub async fn daily_csv(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let s = session(&req, &state);
    let w = match member(&state, &s) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let q: DateQuery = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    match services::reports::daily(&state, q.date.as_deref(), Some(w.merchant.id)) {
        Ok(r) => csv(&format!("daily-{}.csv", r.date), services::reports::csv(&r)),
        Err(e) => error_page(&state, &s, &e.into()),
    }
}

fn webhooks_page(
    state: &AppState,
    s: &Session,
    w: &SignedIn,
    error: Option<&ApiError>,
) -> HttpResponse {
    let csrf = console::csrf_token(state, s);
    let current = services::webhooks::endpoint(state, w.merchant.id).ok();
    let body = html! {
        p id="endpoint" {
            "Endpoint: "
            @if let Some(e) = &current { code { (e.url) } } @else { "none set" }
        }
        @if w.staff.role >= StaffRole::Admin {
            h2 { "Keys" }
            form method="post" action="/console/keys" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="kind" value="secret_key";
                p.hint { "A new API secret key (sk_…); the one in use keeps working for 24 hours." }
                button id="rotate-secret-key" type="submit" { "Make a new API secret key" }
            }
            form method="post" action="/console/keys" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="kind" value="signing_secret";
                p.hint { "A new request-signing secret (ss_…); the one in use keeps working for 24 hours." }
                button id="rotate-signing-secret" type="submit" { "Make a new signing secret" }
            }
            h2 { "Webhook endpoint" }
            form method="post" action="/console/webhooks" {
                input type="hidden" name="csrf" value=(csrf);
                label for="url" { "Endpoint URL (https)" }
                input id="url" name="url" type="url" required;
                p.hint { "Setting it makes a new signing secret; it is shown once." }
                button id="set-webhook" type="submit" { "Set endpoint" }
            }
        } @else {
            p.hint { "Only an admin of the merchant can change it." }
        }
    };
    let text = error.map(message);
    let status = error.map_or(StatusCode::OK, status_of);
    with_cookie(
        super::html(
            status,
            layout(
                "Webhooks and keys",
                Some((w, csrf.as_str())),
                text.as_deref(),
                body,
            ),
        ),
        state,
        s,
    )
}

/// An admin's post on the webhooks and keys page: its checks, then the member, who must be
/// an admin. `Err`: the page that says why.
async fn admin_post<T: Csrf>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(Session, SignedIn, T), Box<HttpResponse>> {
    let (s, f) = match accept::<T>(req, payload, state).await {
        Ok(v) => v,
        Err((s, e)) => {
            return Err(Box::new(match member(state, &s) {
                Ok(w) => webhooks_page(state, &s, &w, Some(&e)),
                // Not signed in: the refusal itself, on the sign-in page.
                Err(_) => sign_in_page(state, &s, Some(&e)),
            }));
        }
    };
    let w = member(state, &s)?;
    if let Err(e) = w.require(StaffRole::Admin) {
        return Err(Box::new(webhooks_page(state, &s, &w, Some(&e.into()))));
    }
    Ok((s, w, f))
}

#[utoipa::path(
    get,
    path = "/console/webhooks",
    tag = "console",
    responses(crate::openapi::PageAnswers)
)]
/// `GET /console/webhooks`.
pub async fn webhooks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let s = session(&req, &state);
    match member(&state, &s) {
        Ok(w) => webhooks_page(&state, &s, &w, None),
        Err(r) => *r,
    }
}

#[utoipa::path(post, path = "/console/webhooks", tag = "console",
    request_body(content = WebhookForm, content_type = "application/x-www-form-urlencoded"),
    responses(crate::openapi::PageAnswers))]
/// (admin) Sets the merchant's webhook endpoint; the new signing secret is shown once.
pub async fn set_webhook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (s, w, f) = match admin_post::<WebhookForm>(&req, payload, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match services::webhooks::set_endpoint(&state, w.merchant.id, f.url.trim().to_string()).await {
        Ok((endpoint, secret)) => {
            let audit = services::audit::record(
                &state,
                &w.actor(ip(&req)),
                "console.webhook_endpoint",
                &services::merchants::merchant_id_text(w.merchant.id),
                None::<&()>,
                Some(&serde_json::json!({ "url": endpoint.url })),
            );
            if let Err(e) = services::audit::write(&state, audit).await {
                return webhooks_page(&state, &s, &w, Some(&e.into()));
            }
            let csrf = console::csrf_token(&state, &s);
            let body = html! {
                p { "Endpoint set: " code { (endpoint.url) } }
                p { "Its signing secret (shown this once; keep it where your server reads it):" }
                p { code id="secret" { (secret) } }
                p { a href="/console/webhooks" { "Done" } }
            };
            with_cookie(
                super::html(
                    StatusCode::OK,
                    layout("Webhooks", Some((&w, csrf.as_str())), None, body),
                ),
                &state,
                &s,
            )
        }
        Err(e) => webhooks_page(&state, &s, &w, Some(&e.into())),
    }
}

#[utoipa::path(post, path = "/console/keys", tag = "console",
    request_body(content = KeyForm, content_type = "application/x-www-form-urlencoded"),
    responses(crate::openapi::PageAnswers))]
/// (admin) Makes a new API secret key or signing secret, shown once; the one in use keeps
/// working for 24 hours. Audited (as the rotation through the API is) as the staff member.
pub async fn rotate_key(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (s, w, f) = match admin_post::<KeyForm>(&req, payload, &state).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let kind = match f.kind.as_str() {
        "secret_key" => services::merchants::Credential::SecretKey,
        "signing_secret" => services::merchants::Credential::SigningSecret,
        _ => {
            let e = ApiError::invalid("invalid_parameter", "choose a key to make");
            return webhooks_page(&state, &s, &w, Some(&e));
        }
    };
    let rotated = services::merchants::rotate(
        &state,
        &w.actor(ip(&req)),
        &services::merchants::merchant_id_text(w.merchant.id),
        services::merchants::Rotate {
            overlap_seconds: Some(86_400),
        },
        kind,
        None,
    )
    .await;
    match rotated {
        Ok(r) => {
            let csrf = console::csrf_token(&state, &s);
            let body = html! {
                p { "Your new " (if f.kind == "secret_key" { "API secret key" } else { "signing secret" })
                    " (shown this once; the one in use keeps working for 24 hours):" }
                p { code id="new-secret" { (r.secret.unwrap_or_default()) } }
                p { a href="/console/webhooks" { "Done" } }
            };
            with_cookie(
                super::html(
                    StatusCode::OK,
                    layout("Webhooks and keys", Some((&w, csrf.as_str())), None, body),
                ),
                &state,
                &s,
            )
        }
        Err(e) => webhooks_page(&state, &s, &w, Some(&e.into())),
    }
}
