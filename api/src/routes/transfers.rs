//! `POST /v1/transfers/batch`: up to 8,190 transfers, one result each. The rules and the
//! flow: `services::transfers`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use services::transfers::BatchView;
pub use services::transfers::{CreateBatch, CreateTransfer, TransferResult, TransferStatus};

use crate::auth;
use crate::body;
use crate::error::ApiError;
use crate::idempotency;
use crate::state::AppState;

#[utoipa::path(post, path = "/v1/transfers/batch", tag = "transfers", request_body = CreateBatch,
    description = "Admin, or a merchant debiting its own balance account (payouts). 1 to 8,190 transfers; each is applied atomically on its own and gets its own result in the order sent: `created` (durable before this answer), `exists` (an earlier request applied this id: nothing moved now) or `failed` with a `code` (nothing moved). A transfer's `id` is the client's, unique per caller; the ledger's id (`transfer_id`) is derived from it. A malformed body, or an empty or oversized batch, is refused whole. The body limit is `batch_body_limit_bytes` (4 MiB by default).",
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255, description = "1-255 visible ASCII characters; replays the first answer; reused with another request: 422 idempotency_key_reused; while the first is in flight: 409. The transfers' own ids already make a retry safe: a retry after a crash may answer `exists` where the first answer said `created`")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "one result per transfer", body = BatchView),
        crate::openapi::CreateErrors
    ))]
pub async fn batch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = auth::caller(&req, &state)?;
    let raw = body::bytes(&req, payload, state.batch_limits).await?;
    // Parsed from the body kept here: the transfers' strings borrow from it.
    let body: CreateBatch<'_> = body::parse(&raw, &[])?;
    let idem = match idempotency::begin_answering(&req, &state, &caller, &raw, StatusCode::OK)? {
        idempotency::Begin::Replay(response) => return Ok(response),
        idempotency::Begin::Proceed(guard) => guard,
    };
    let view = services::transfers::create_batch(&state, &caller, body).await?;
    // A result is ≈ 90 bytes (the client's id, the status, the ledger's id): room for them
    // at once, where growing from 128 bytes copied the answer a dozen times.
    let mut answer = Vec::with_capacity(16 + 112 * view.results.len());
    serde_json::to_writer(&mut answer, &view).expect("a batch answer serializes");
    if let Some(guard) = &idem {
        // Written after the transfers (they are many units): the transfers' ids, not this
        // record, are what keeps a retry from moving money twice.
        services::idempotency::remember(&state, guard, &answer).await?;
    }
    Ok(idempotency::respond(StatusCode::OK, answer))
}
