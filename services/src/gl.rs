//! The general ledger's flows (issue #15; `../shared/FUNDS.md`, "Business date and day-end",
//! "General ledger"). The rules are `engine::gl`; this module keeps the business date.
//!
//! The business date is not the wall clock: the first start sets it to the wall-clock date
//! in the configured time zone (`timezone`, `Asia/Shanghai` unless set; never the machine's
//! own zone), and from then on only a day-end moves it. It is one durable record
//! ([`storage::records::GlDates`]).

use std::time::SystemTime;

use engine::gl::BusinessDate;
use serde::Serialize;
use storage::records::{self, GlDates};

use crate::error::{Error, Result};
use crate::platform::Platform;

/// The time zone called `name` in payd's own copy of the tz database.
pub fn time_zone(name: &str) -> std::result::Result<jiff::tz::TimeZone, String> {
    jiff::tz::db()
        .get(name)
        .map_err(|_| format!("unknown time zone {name:?} (an IANA name such as Asia/Shanghai)"))
}

/// The calendar date at `now` in `zone`; an error only for a clock outside 1970..=9999.
pub fn date_in(
    zone: &jiff::tz::TimeZone,
    now: SystemTime,
) -> std::result::Result<BusinessDate, String> {
    let at = jiff::Timestamp::try_from(now)
        .map_err(|e| format!("the clock reads outside jiff's range: {e}"))?;
    let date = zone.to_datetime(at).date();
    let (year, month, day) = (
        i32::from(date.year()),
        u32::try_from(date.month()).unwrap_or(0),
        u32::try_from(date.day()).unwrap_or(0),
    );
    BusinessDate::from_ymd(year, month, day)
        .ok_or_else(|| format!("the clock reads {date}, outside 1970..=9999"))
}

/// The ledger's dates; written at the first start (from the wall clock in `zone`), durable
/// before payd is ready, so every later start reads the same.
pub async fn ensure_dates(
    ledger: &actors::Ledger,
    store: &storage::Store,
    zone: &jiff::tz::TimeZone,
) -> std::result::Result<GlDates, String> {
    let key = records::gl_dates_key();
    if let Some(dates) = records::read::<GlDates>(store, &key).map_err(|e| e.to_string())? {
        return Ok(dates);
    }
    let dates = GlDates {
        business_date: date_in(zone, SystemTime::now())?,
        closed_through: None,
    };
    ledger
        .write_records(vec![(key, records::encode(&dates))])
        .await
        .map_err(|e| e.to_string())?;
    Ok(dates)
}

/// The business date and the last closed one, as `GET /v1/gl/business_date` answers them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatesView {
    /// The open business date, `YYYY-MM-DD`.
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-01", format = "date"))]
    pub business_date: String,
    /// The last closed business date; null before the first day-end.
    #[cfg_attr(feature = "openapi", schema(example = "2026-11-30", format = "date"))]
    pub closed_through: Option<String>,
}

/// The business date now.
pub fn dates(state: &Platform) -> Result<DatesView> {
    let store = state.store()?;
    let dates = records::read::<GlDates>(store, &records::gl_dates_key())?
        .ok_or_else(|| Error::Storage("the business date record is missing".into()))?;
    Ok(DatesView {
        business_date: dates.business_date.to_string(),
        closed_through: dates.closed_through.map(|d| d.to_string()),
    })
}
