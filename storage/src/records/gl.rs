//! Records of the general ledger (issue #15).

use bincode::{Decode, Encode};
use engine::gl::BusinessDate;

/// The business date and the last closed one (`../shared/FUNDS.md`, "Business date and
/// day-end"): set on the first start from the wall clock in the configured time zone, then
/// moved only by a day-end. One record, under [`super::gl_dates_key`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct GlDates {
    pub business_date: BusinessDate,
    /// `None` before the first day-end.
    pub closed_through: Option<BusinessDate>,
}
