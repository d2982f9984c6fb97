//! Daily reports (issue #15; `../shared/FUNDS.md`, "Reports"): per business date, for the
//! platform and per merchant — payments by status, method and channel, fees, refunds, net,
//! success rate. The open date's report is computed when asked; a closed date's is frozen
//! by its day-end (step `report`) and never changes.
//!
//! A payment or refund belongs to the business date it was created on (its
//! `business_date`, stamped from the ledger's open period), so a date's report is the same
//! whenever it is read. Records are scanned by their time-ordered ids over the date's wall
//! clock span (from the previous day-end's switch to this one's, a minute either side) and
//! kept by their business date.

use std::collections::BTreeMap;

use engine::gl::BusinessDate;
use engine::money::format_minor;
use engine::Currency;
use serde::{Deserialize, Serialize};
use storage::records::{self, Payment, PaymentStatus, Refund};

use crate::error::{Error, Result};
use crate::platform::Platform;

/// A count and an amount under a key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Line {
    #[cfg_attr(feature = "openapi", schema(example = "succeeded"))]
    pub key: String,
    pub count: u64,
    #[cfg_attr(feature = "openapi", schema(example = "1024.50"))]
    pub amount: String,
}

/// `GET /v1/reports/daily`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DailyReport {
    #[cfg_attr(feature = "openapi", schema(example = "2026-12-01", format = "date"))]
    pub date: String,
    #[cfg_attr(feature = "openapi", schema(example = "CNY"))]
    pub currency: String,
    /// The merchant reported on; null for the whole platform.
    pub merchant_id: Option<String>,
    /// Payments by status (`succeeded`, `failed`, `processing`).
    pub payments: Vec<Line>,
    /// Succeeded payments by method (`balance`, `card`).
    pub by_method: Vec<Line>,
    /// Succeeded card payments by channel.
    pub by_channel: Vec<Line>,
    /// Refunds by status.
    pub refunds: Vec<Line>,
    /// Platform fees on the succeeded payments, net of the fee returned by refunds.
    pub fees: String,
    /// What channels charged on the succeeded card payments.
    pub channel_fees: String,
    /// Profit sharing: shares of the succeeded payments split off to receivers, net of what
    /// succeeded refunds took back (reports frozen before splits read 0).
    #[serde(default = "zero")]
    pub splits: String,
    /// Shares received as a split receiver, net of what refunds took back.
    #[serde(default = "zero")]
    pub splits_received: String,
    /// Succeeded payments − their fees − succeeded refunds + the fee part they returned −
    /// splits + splits received: what the date left the merchant(s).
    pub net: String,
    /// Succeeded ÷ (succeeded + failed), four decimals; null with neither.
    pub success_rate: Option<String>,
    /// Read from the closed date's frozen report.
    pub frozen: bool,
}

fn zero() -> String {
    "0".to_string()
}

#[derive(Default)]
struct Sums {
    payments: BTreeMap<&'static str, (u64, i128)>,
    by_method: BTreeMap<String, (u64, i128)>,
    by_channel: BTreeMap<String, (u64, i128)>,
    refunds: BTreeMap<&'static str, (u64, i128)>,
    fees: i128,
    channel_fees: i128,
    refunded: i128,
    refunded_fees: i128,
    /// Shares split off (net of take-backs), and received.
    splits: i128,
    splits_received: i128,
}

fn status(s: PaymentStatus) -> &'static str {
    match s {
        PaymentStatus::Succeeded => "succeeded",
        PaymentStatus::Failed => "failed",
        PaymentStatus::Processing => "processing",
        PaymentStatus::Authorized => "authorized",
        PaymentStatus::Canceled => "canceled",
    }
}

impl Sums {
    fn payment(&mut self, p: &Payment) {
        let slot = self.payments.entry(status(p.status)).or_default();
        slot.0 += 1;
        slot.1 += i128::from(p.amount);
        if p.status != PaymentStatus::Succeeded {
            return;
        }
        let method = if p.card.0.is_some() {
            "card"
        } else {
            "balance"
        };
        let slot = self.by_method.entry(method.to_string()).or_default();
        slot.0 += 1;
        slot.1 += i128::from(p.amount);
        self.fees += i128::from(p.fee);
        self.splits += i128::from(p.split_total());
        if let Some(card) = &p.card.0 {
            self.channel_fees += i128::from(card.channel_fee);
            if let Some((_, name)) = &card.channel {
                let slot = self.by_channel.entry(name.clone()).or_default();
                slot.0 += 1;
                slot.1 += i128::from(p.amount);
            }
        }
    }

    fn refund(&mut self, r: &Refund) {
        let slot = self.refunds.entry(status(r.status)).or_default();
        slot.0 += 1;
        slot.1 += i128::from(r.amount);
        if r.status == PaymentStatus::Succeeded {
            self.refunded += i128::from(r.amount);
            self.refunded_fees += i128::from(r.fee_part);
            self.splits -= r.split_parts.0.iter().map(|v| i128::from(*v)).sum::<i128>();
        }
    }

    fn report(
        &self,
        date: BusinessDate,
        currency: Currency,
        merchant: Option<u128>,
    ) -> DailyReport {
        let money = |v: i128| format_minor(v, currency);
        let lines = |m: &mut dyn Iterator<Item = (String, (u64, i128))>| -> Vec<Line> {
            m.map(|(key, (count, amount))| Line {
                key,
                count,
                amount: money(amount),
            })
            .collect()
        };
        let succeeded = self.payments.get("succeeded").copied().unwrap_or_default();
        let failed = self.payments.get("failed").map_or(0, |s| s.0);
        let decided = succeeded.0 + failed;
        DailyReport {
            date: date.to_string(),
            currency: currency.code().to_string(),
            merchant_id: merchant.map(crate::merchants::merchant_id_text),
            payments: lines(&mut self.payments.iter().map(|(k, v)| (k.to_string(), *v))),
            by_method: lines(&mut self.by_method.iter().map(|(k, v)| (k.clone(), *v))),
            by_channel: lines(&mut self.by_channel.iter().map(|(k, v)| (k.clone(), *v))),
            refunds: lines(&mut self.refunds.iter().map(|(k, v)| (k.to_string(), *v))),
            fees: money(self.fees - self.refunded_fees),
            channel_fees: money(self.channel_fees),
            splits: money(self.splits),
            splits_received: money(self.splits_received),
            net: money(
                succeeded.1 - self.fees - self.refunded + self.refunded_fees - self.splits
                    + self.splits_received,
            ),
            success_rate: (decided > 0).then(|| {
                // Exact to four decimals, rounded half up, in integers.
                let bp = (u128::from(succeeded.0) * 20_000 / u128::from(decided)).div_ceil(2);
                format!("{}.{:04}", bp / 10_000, bp % 10_000)
            }),
            frozen: false,
        }
    }
}

/// A stored record: key and value.
type Record = (Vec<u8>, Vec<u8>);
/// Called with each record of a scan; `false` stops it.
type RecordFn<'a> = dyn FnMut(&[u8], &[u8]) -> storage::Result<bool> + 'a;

/// The wall-clock span whose records may belong to `date`: from the previous day-end's
/// switch (or the start) to this date's (or now), a minute either side.
pub(crate) fn span(store: &storage::Store, date: BusinessDate) -> Result<(u64, u64)> {
    const MARGIN_NS: u64 = 60_000_000_000;
    let start = match date.minus_days(1) {
        Some(prev) => crate::day_end::load(store, prev)?
            .map_or(0, |d| d.started_at_ns.saturating_sub(MARGIN_NS)),
        None => 0,
    };
    let end = crate::day_end::load(store, date)?
        .map_or(u64::MAX, |d| d.started_at_ns.saturating_add(MARGIN_NS));
    Ok((start, end))
}

/// The first id created at or after `ns` (ids carry their creation millisecond on top).
pub(crate) fn id_from(ns: u64) -> u128 {
    engine::ids::time_ordered_id(ns / 1_000_000, 0)
}

/// Every merchant's sums of `date`, and the platform's (key `None`), in `currency`.
fn sums(
    store: &storage::Store,
    date: BusinessDate,
    currency: Currency,
) -> Result<BTreeMap<Option<u128>, Sums>> {
    let (start, end) = span(store, date)?;
    let mut out: BTreeMap<Option<u128>, Sums> = BTreeMap::new();
    out.entry(None).or_default();
    // Each payment's merchant and its split receivers, for its refunds.
    let mut payment_merchant: BTreeMap<u128, (u128, Vec<u128>)> = BTreeMap::new();
    let scan = |prefix: &[u8], f: &mut RecordFn<'_>| {
        let from = [prefix, &id_from(start).to_be_bytes()].concat();
        let mut stop = false;
        store.for_each_aux_with_prefix_from(prefix, &from, usize::MAX, |k, v| {
            if stop {
                return Ok(());
            }
            let id = records::id_after(k, prefix).unwrap_or(0);
            if id >= id_from(end) && end != u64::MAX {
                stop = true;
                return Ok(());
            }
            if !f(k, v)? {
                stop = true;
            }
            Ok(())
        })
    };
    scan(records::prefix::PAYMENT, &mut |k, v| {
        let p: Payment = records::decode(k, v)?;
        let receivers = p.splits.0.iter().map(|s| s.merchant).collect();
        payment_merchant.insert(p.id, (p.merchant, receivers));
        if p.business_date.0 == Some(date) && p.currency == currency.numeric() {
            out.entry(None).or_default().payment(&p);
            out.entry(Some(p.merchant)).or_default().payment(&p);
            if p.status == PaymentStatus::Succeeded {
                for s in &p.splits.0 {
                    out.entry(None).or_default().splits_received += i128::from(s.amount);
                    out.entry(Some(s.merchant)).or_default().splits_received +=
                        i128::from(s.amount);
                }
            }
        }
        Ok(true)
    })?;
    scan(records::prefix::REFUND, &mut |k, v| {
        let r: Refund = records::decode(k, v)?;
        if r.business_date.0 != Some(date) {
            return Ok(true);
        }
        let merchant = match payment_merchant.get(&r.payment) {
            Some(m) => Some(m.clone()),
            None => records::read::<Payment>(store, &records::payment_key(r.payment))?
                .filter(|p| p.currency == currency.numeric())
                .map(|p| (p.merchant, p.splits.0.iter().map(|s| s.merchant).collect())),
        };
        if let Some((m, receivers)) = merchant {
            out.entry(None).or_default().refund(&r);
            out.entry(Some(m)).or_default().refund(&r);
            if r.status == PaymentStatus::Succeeded {
                for (receiver, part) in receivers.iter().zip(&r.split_parts.0) {
                    out.entry(None).or_default().splits_received -= i128::from(*part);
                    out.entry(Some(*receiver)).or_default().splits_received -= i128::from(*part);
                }
            }
        }
        Ok(true)
    })?;
    Ok(out)
}

/// Freezes `date`'s reports (the day-end's `report` step): the platform's and each
/// merchant's with activity. Answers the records to write and a summary.
pub fn freeze(
    store: &storage::Store,
    date: BusinessDate,
    currency: Currency,
) -> Result<(Vec<Record>, String)> {
    let all = sums(store, date, currency)?;
    let mut recs = Vec::with_capacity(all.len());
    for (merchant, s) in &all {
        let mut report = s.report(date, currency, *merchant);
        report.frozen = true;
        let json = serde_json::to_vec(&report).expect("a report serializes");
        recs.push((
            records::daily_report_key(date, merchant.unwrap_or(0)),
            records::encode(&json),
        ));
    }
    let platform = all
        .get(&None)
        .map(|s| s.payments.values().map(|(c, _)| c).sum::<u64>())
        .unwrap_or(0);
    Ok((
        recs,
        format!(
            "{} merchant report(s), {platform} payment(s) on {date}",
            all.len() - 1
        ),
    ))
}

/// The report of `date` (the open date unless given) for `merchant` (the platform when
/// `None`): frozen once the date is closed and its day-end reached this step, computed
/// otherwise.
pub fn daily(state: &Platform, date: Option<&str>, merchant: Option<u128>) -> Result<DailyReport> {
    let store = state.store()?;
    let currency = state.settings.currency;
    let period = state.period()?;
    let date = match date {
        None => period.open,
        Some(text) => crate::gl::parse_date(text, "date")?,
    };
    let key = records::daily_report_key(date, merchant.unwrap_or(0));
    // A shelved date's reports are in its record segment (`crate::shelf`).
    if let Some(bytes) = crate::shelf::read_dated::<Vec<u8>>(store, date, &key)? {
        return serde_json::from_slice(&bytes)
            .map_err(|e| Error::Storage(format!("a frozen report does not parse: {e}")));
    }
    let frozen_day = crate::day_end::load(store, date)?.is_some_and(|d| {
        d.steps
            .iter()
            .any(|s| s.name == "report" && s.status == records::DayEndStatus::Done)
    });
    let all = sums(store, date, currency)?;
    let mut report = match all.get(&merchant) {
        Some(s) => s.report(date, currency, merchant),
        None => Sums::default().report(date, currency, merchant),
    };
    // A closed date's report with nothing for this merchant is final too.
    report.frozen = frozen_day;
    Ok(report)
}

/// The report as CSV: `section,key,count,amount` rows, then the totals.
pub fn csv(r: &DailyReport) -> String {
    let mut out = String::from("section,key,count,amount\n");
    let mut rows = |section: &str, lines: &[Line]| {
        for l in lines {
            out.push_str(&format!(
                "{section},{},{},{}\n",
                csv_field(&l.key),
                l.count,
                l.amount
            ));
        }
    };
    rows("payments", &r.payments);
    rows("by_method", &r.by_method);
    rows("by_channel", &r.by_channel);
    rows("refunds", &r.refunds);
    out.push_str(&format!("fees,,,{}\n", r.fees));
    out.push_str(&format!("channel_fees,,,{}\n", r.channel_fees));
    out.push_str(&format!("splits,,,{}\n", r.splits));
    out.push_str(&format!("splits_received,,,{}\n", r.splits_received));
    out.push_str(&format!("net,,,{}\n", r.net));
    out.push_str(&format!(
        "success_rate,,,{}\n",
        r.success_rate.as_deref().unwrap_or("")
    ));
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180); a leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does not run it.
pub(crate) fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}
