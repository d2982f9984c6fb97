//! The general ledger's pure rules (issue #15; `../shared/FUNDS.md`, "General ledger" and
//! "Business date and day-end"): one module per concept, in Fineract's shape.
//!
//! - [`chart`]: the chart of accounts — every GL account's code, name, type and normal side,
//!   and the GL account of each platform role.
//! - [`date`]: the business date, a calendar day that only a day-end moves (not the clock).
//! - [`book`]: every GL account's running balance and each date's turnover, kept with the
//!   writes from the journal's legs.
//! - [`turnover`]: debit and credit turnover per GL account and currency, maintained with
//!   the postings, and the trial balance read from it in O(GL accounts).
//! - [`day_end`]: the day-end's checks (closing = opening + turnover, each day opens at the
//!   last close, control accounts = their sub-ledgers, trial balances balance) and the
//!   snapshot hash chained day to day.
//!
//! Sign convention, shared with [`crate::Account`]: a ledger account's balance is
//! credit-positive (a customer's balance of 100 is a liability of 100; customer funds at the
//! bank of −100 are an asset of 100), so a posting's positive amount is a credit and a
//! negative one a debit. The GL prints balances on each account's normal side.

pub mod book;
pub mod chart;
pub mod date;
pub mod day_end;
pub mod turnover;

pub use book::{BookError, GlBook};
pub use chart::{GlAccount, GlType};
pub use date::{BusinessDate, OpenPeriod};
pub use day_end::{check_day, snapshot_hash, AccountDay, CheckFailure, DayCheck};
pub use turnover::{TrialBalance, TrialBalanceRow, Turnover};
