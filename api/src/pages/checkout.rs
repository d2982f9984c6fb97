//! The checkout page (`GET /checkout/{id}`, the order's `checkout_url`) and its forms: send a
//! sign-in code, sign in, sign out, pay. The flows are `services::checkout`'s; this renders
//! them, keeps the session in its cookie and maps refusals to messages on the page.
//!
//! After a post the browser is sent back to the page (303), so a reload never posts again;
//! a refusal is shown on the page the post answers (with the status of the refusal).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use services::checkout::{self, Choice, NewCard, Options, Outcome, Page, Session, Stage};

use super::{form, respond, same_site};
use crate::error::ApiError;
use crate::state::AppState;

const COOKIE: &str = "rp_checkout";

fn session(req: &HttpRequest, state: &AppState) -> Session {
    checkout::open_session(state, super::cookie_value(req, COOKIE))
}

/// The `Set-Cookie` value of session `s` (the checkout's paths only).
fn cookie(state: &AppState, s: &Session) -> String {
    super::session_cookie(
        &state.settings.public_url,
        COOKIE,
        "/checkout",
        &checkout::seal_session(state, s),
        checkout::SESSION_NS / 1_000_000_000,
    )
}

/// A message for the customer, from a refusal.
fn message(e: &ApiError) -> String {
    match e.code {
        "order_already_paid" => {
            "This order has already been paid. Nothing more was charged.".into()
        }
        "order_closed" => "This order was closed by the merchant. Nothing was charged.".into(),
        "order_expired" => "This order has expired. Nothing was charged.".into(),
        "order_payment_in_progress" => {
            "A payment of this order is still being processed. Reload the page in a moment.".into()
        }
        "csrf_token_invalid" | "cross_site_request" => {
            "This form has expired. The page was reloaded: please try again.".into()
        }
        "not_signed_in" => "Your sign-in has expired. Sign in again.".into(),
        "otp_not_sent" => "Ask for a code first.".into(),
        "rate_limited" => "Too many tries. Wait a minute and try again.".into(),
        _ => {
            let mut m = e.message.clone();
            if let Some(first) = m.get(..1) {
                let upper = first.to_uppercase();
                m.replace_range(..1, &upper);
            }
            if !m.ends_with('.') {
                m.push('.');
            }
            m
        }
    }
}

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/checkout/static/checkout.css";
            }
            body { main { (body) } }
        }
    }
}

fn hidden_csrf(p: &Page) -> Markup {
    html! { input type="hidden" name="csrf" value=(p.csrf); }
}

fn stage(p: &Page) -> Markup {
    let action = |what: &str| format!("/checkout/{}/{what}", p.order_id);
    match &p.stage {
        Stage::Phone => html! {
            h1 { "Sign in to pay" }
            form method="post" action=(action("code")) {
                (hidden_csrf(p))
                label for="phone" { "Phone number" }
                input id="phone" name="phone" type="tel" autocomplete="tel" inputmode="tel"
                    placeholder="+8613800138000" required;
                p.hint { "We send a one-time code to this number by SMS." }
                button id="send-code" type="submit" { "Send code" }
            }
        },
        Stage::Code { phone } => html! {
            h1 { "Enter your code" }
            form method="post" action=(action("signin")) {
                (hidden_csrf(p))
                label for="code" { "Code sent to " (phone) }
                input id="code" name="code" type="text" autocomplete="one-time-code"
                    inputmode="numeric" pattern="[0-9]{6}" maxlength="6" required;
                button id="sign-in" type="submit" { "Sign in" }
            }
            form method="post" action=(action("signout")) {
                (hidden_csrf(p))
                button.secondary id="other-phone" type="submit" { "Use another number" }
            }
        },
        Stage::Pay(o) => pay_forms(p, o, &action("pay"), &action("signout")),
    }
}

fn pay_forms(p: &Page, o: &Options, pay: &str, signout: &str) -> Markup {
    let amount = format!("{} {}", p.currency, p.amount);
    html! {
        h1 { "Choose how to pay" }
        p.who {
            "Signed in as "
            @if let Some(name) = &o.name { (name) " · " }
            (o.phone)
        }
        @if let Some(balance) = &o.balance {
            form.method method="post" action=(pay) {
                (hidden_csrf(p))
                input type="hidden" name="method" value="balance";
                h2 { "Balance" }
                p.hint { "Available: " (p.currency) " " (balance) }
                @if !o.coupons.is_empty() {
                    label for="coupon" { "Coupon" }
                    select id="coupon" name="coupon_id" {
                        option value="" { "No coupon" }
                        @for (id, name, discount) in &o.coupons {
                            option value=(id) { (name) " (−" (discount) ")" }
                        }
                    }
                }
                button id="pay-balance" type="submit" { "Pay " (amount) " from balance" }
            }
        }
        @if let Some(credit) = &o.credit {
            form.method method="post" action=(pay) {
                (hidden_csrf(p))
                input type="hidden" name="method" value="credit";
                h2 { "Credit line" }
                p.hint { "Available: " (p.currency) " " (credit) }
                button id="pay-credit" type="submit" { "Pay " (amount) " on credit" }
            }
        }
        @for (token, label) in &o.cards {
            form.method method="post" action=(pay) {
                (hidden_csrf(p))
                input type="hidden" name="method" value="saved_card";
                input type="hidden" name="card_token" value=(token);
                h2 { "Saved card" }
                button.card type="submit" { "Pay " (amount) " with " (label) }
            }
        }
        form.method method="post" action=(pay) autocomplete="off" {
            (hidden_csrf(p))
            input type="hidden" name="method" value="new_card";
            h2 { "New bank card" }
            label for="card_number" { "Card number" }
            input id="card_number" name="card_number" type="text" inputmode="numeric"
                autocomplete="cc-number" pattern="[0-9 ]{12,23}" required;
            div.row {
                div {
                    label for="exp_month" { "Expiry month" }
                    input id="exp_month" name="exp_month" type="text" inputmode="numeric"
                        autocomplete="cc-exp-month" placeholder="MM" pattern="[0-9]{1,2}" required;
                }
                div {
                    label for="exp_year" { "Expiry year" }
                    input id="exp_year" name="exp_year" type="text" inputmode="numeric"
                        autocomplete="cc-exp-year" placeholder="YYYY" pattern="[0-9]{4}" required;
                }
            }
            label for="holder" { "Name on card" }
            input id="holder" name="holder" type="text" autocomplete="cc-name" maxlength="64" required;
            button id="pay-card" type="submit" { "Pay " (amount) " with this card" }
        }
        form method="post" action=(signout) {
            (hidden_csrf(p))
            button.secondary id="sign-out" type="submit" { "Sign out" }
        }
    }
}

fn render(p: &Page, error: Option<&str>) -> Markup {
    let return_link = p.order.return_url.as_deref();
    let body = html! {
        header {
            p.merchant id="merchant" { (p.merchant_name) }
            p.amount id="amount" { (p.currency) " " (p.amount) }
            @if let Some(d) = &p.order.description { p.desc { (d) } }
        }
        @if let Some(e) = error {
            div.error id="error" role="alert" { (e) }
        }
        @match p.status {
            "paid" => {
                section.ok id="result" role="status" {
                    h1 { "Paid" }
                    p { "Thank you. Your payment of " (p.currency) " " (p.amount) " to "
                        (p.merchant_name) " is complete." }
                    @if let Some(id) = &p.payment_id { p.hint { "Payment " (id) } }
                }
                @if let Some(url) = return_link {
                    a.button id="return" href=(url) { "Return to " (p.merchant_name) }
                }
            },
            "open" => { (stage(p)) },
            other => {
                section.error id="result" role="status" {
                    h1 { @if other == "expired" { "This order has expired" } @else { "This order is closed" } }
                    p { "Nothing was charged." }
                }
                @if let Some(url) = return_link {
                    a.button id="return" href=(url) { "Return to " (p.merchant_name) }
                }
            },
        }
        footer {
            "Order " (p.order_id)
            @if p.status == "open" { " · open until " (p.expires_at) }
        }
    };
    layout(&format!("Pay {} — {}", p.merchant_name, p.amount), body)
}

fn not_found_page(e: &ApiError) -> HttpResponse {
    let body = layout(
        "Order not found",
        html! {
            h1 { "Order not found" }
            div.error role="alert" { (message(e)) }
        },
    );
    super::html(e.status, body)
}

/// Renders the page for `s` (a fresh cookie with it), with `error` shown.
async fn page_with(
    state: &AppState,
    id: &str,
    s: &Session,
    error: Option<&ApiError>,
) -> HttpResponse {
    match checkout::page(state, id, s).await {
        Ok(p) => {
            // A page has no credentials to fix: a form token that does not check out or an
            // ended sign-in is forbidden, not unauthenticated.
            let status = error.map_or(StatusCode::OK, |e| match e.status {
                StatusCode::UNAUTHORIZED => StatusCode::FORBIDDEN,
                s => s,
            });
            let text = error.map(message);
            let mut r = super::html(status, render(&p, text.as_deref()));
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&cookie(state, s)) {
                r.headers_mut()
                    .insert(actix_web::http::header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => not_found_page(&ApiError::from(e)),
    }
}

fn back_to(id: &str, state: &AppState, s: &Session) -> HttpResponse {
    respond(StatusCode::SEE_OTHER)
        .insert_header(("location", format!("/checkout/{id}")))
        .insert_header((actix_web::http::header::SET_COOKIE, cookie(state, s)))
        .finish()
}

#[utoipa::path(get, path = "/checkout/{id}", tag = "checkout",
    params(("id" = String, Path, description = "order id (ord_…)")),
    responses(crate::openapi::PageAnswers))]
/// `GET /checkout/{id}`.
pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    if let Err(e) = state.serving() {
        return not_found_page(&e.into());
    }
    let s = session(&req, &state);
    page_with(&state, &path, &s, None).await
}

/// `GET /checkout/static/checkout.css`.
pub async fn stylesheet() -> HttpResponse {
    respond(StatusCode::OK)
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=300"))
        .body(include_str!("checkout.css"))
}

/// A post's common checks: serving, same site, the form read, its token. `Err`: the page
/// to answer with.
async fn accept<T: DeserializeCsrf>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    id: &str,
) -> Result<(Session, T), HttpResponse> {
    if let Err(e) = state.serving() {
        return Err(not_found_page(&e.into()));
    }
    let s = session(req, state);
    let checked = async {
        same_site(req)?;
        let f: T = form(req, payload, state.limits.timeout).await?;
        let order = services::records::parse_id(id, "ord_")
            .ok_or_else(|| ApiError::not_found(format!("no order {id:?}")))?;
        checkout::check_csrf(state, &s, order, f.csrf())?;
        Ok::<T, ApiError>(f)
    }
    .await;
    match checked {
        Ok(f) => Ok((s, f)),
        Err(e) => Err(page_with(state, id, &s, Some(&e)).await),
    }
}

trait DeserializeCsrf: serde::de::DeserializeOwned {
    fn csrf(&self) -> &str;
}

/// Sends a sign-in code.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PhoneForm {
    /// The page's form token.
    csrf: String,
    /// E.164 (spaces and dashes are dropped).
    #[schema(example = "+8613800138000")]
    phone: String,
}

/// Checks the code.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct CodeForm {
    csrf: String,
    #[schema(example = "042917")]
    code: String,
}

/// A form with only the page's token (sign out).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PlainForm {
    csrf: String,
}

/// The pay form. `Debug` is not derived: it may hold a card number.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PayForm {
    csrf: String,
    /// balance, credit, saved_card or new_card.
    #[schema(pattern = "^(balance|credit|saved_card|new_card)$")]
    method: String,
    coupon_id: Option<String>,
    card_token: Option<String>,
    card_number: Option<String>,
    exp_month: Option<String>,
    exp_year: Option<String>,
    holder: Option<String>,
}

impl DeserializeCsrf for PhoneForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
impl DeserializeCsrf for CodeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
impl DeserializeCsrf for PlainForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
impl DeserializeCsrf for PayForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[utoipa::path(post, path = "/checkout/{id}/code", tag = "checkout", request_body(content = PhoneForm, content_type = "application/x-www-form-urlencoded"),
    params(("id" = String, Path, description = "order id (ord_…)")),
    responses(crate::openapi::PageAnswers))]
/// `POST /checkout/{id}/code`: sends a sign-in code.
pub async fn send_code(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let (s, f) = match accept::<PhoneForm>(&req, payload, &state, &path).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let phone: String = f
        .phone
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    match checkout::send_code(&state, &path, &s, &phone).await {
        Ok(s) => back_to(&path, &state, &s),
        Err(e) => page_with(&state, &path, &s, Some(&e.into())).await,
    }
}

#[utoipa::path(post, path = "/checkout/{id}/signin", tag = "checkout", request_body(content = CodeForm, content_type = "application/x-www-form-urlencoded"),
    params(("id" = String, Path, description = "order id (ord_…)")),
    responses(crate::openapi::PageAnswers))]
/// `POST /checkout/{id}/signin`: checks the code.
pub async fn sign_in(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let (s, f) = match accept::<CodeForm>(&req, payload, &state, &path).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match checkout::sign_in(&state, &path, &s, &f.code).await {
        Ok(s) => back_to(&path, &state, &s),
        Err(e) => page_with(&state, &path, &s, Some(&e.into())).await,
    }
}

#[utoipa::path(post, path = "/checkout/{id}/signout", tag = "checkout", request_body(content = PlainForm, content_type = "application/x-www-form-urlencoded"),
    params(("id" = String, Path, description = "order id (ord_…)")),
    responses(crate::openapi::PageAnswers))]
/// `POST /checkout/{id}/signout`.
pub async fn sign_out(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    match accept::<PlainForm>(&req, payload, &state, &path).await {
        Ok((s, _)) => back_to(&path, &state, &checkout::sign_out(&s)),
        Err(r) => r,
    }
}

fn choice(f: PayForm) -> Result<Choice, ApiError> {
    let field = |v: Option<String>, name: &'static str| {
        v.map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::invalid("parameter_missing", format!("{name} is missing")))
    };
    Ok(match f.method.as_str() {
        "balance" => Choice::Balance {
            coupon: f.coupon_id.filter(|c| !c.is_empty()),
        },
        "credit" => Choice::Credit,
        "saved_card" => Choice::SavedCard {
            token: field(f.card_token, "the card")?,
        },
        "new_card" => {
            let number: String = field(f.card_number, "the card number")?
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let month = field(f.exp_month, "the expiry month")?
                .parse::<u8>()
                .map_err(|_| {
                    ApiError::invalid("invalid_parameter", "the expiry month must be 1 to 12")
                })?;
            let year = field(f.exp_year, "the expiry year")?
                .parse::<u16>()
                .map_err(|_| {
                    ApiError::invalid("invalid_parameter", "the expiry year must be four digits")
                })?;
            Choice::NewCard(NewCard {
                number: services::cards::CardNumber(number),
                exp_month: month,
                exp_year: year,
                holder: field(f.holder, "the name on the card")?,
            })
        }
        _ => {
            return Err(ApiError::invalid(
                "invalid_parameter",
                "choose a way to pay",
            ))
        }
    })
}

#[utoipa::path(post, path = "/checkout/{id}/pay", tag = "checkout", request_body(content = PayForm, content_type = "application/x-www-form-urlencoded"),
    params(("id" = String, Path, description = "order id (ord_…)")),
    responses(crate::openapi::PageAnswers))]
/// `POST /checkout/{id}/pay`: one payment attempt of the order.
pub async fn pay(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let (s, f) = match accept::<PayForm>(&req, payload, &state, &path).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let choice = match choice(f) {
        Ok(c) => c,
        Err(e) => return page_with(&state, &path, &s, Some(&e)).await,
    };
    let ip = req.peer_addr().map(|a| a.ip().to_string());
    match checkout::pay(&state.platform, &path, &s, choice, ip).await {
        Ok(Outcome::Succeeded { .. } | Outcome::Processing { .. }) => back_to(&path, &state, &s),
        Ok(Outcome::Failed { code }) => {
            let e = ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                crate::error::ErrorType::InvalidRequestError,
                "payment_failed",
                checkout::failure_text(&code),
            );
            page_with(&state, &path, &s, Some(&e)).await
        }
        Err(e) => page_with(&state, &path, &s, Some(&e.into())).await,
    }
}
