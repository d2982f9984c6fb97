//! Channel statements (对账单, `../shared/FUNDS.md` "Reconciliation", issue #17): a
//! channel's own record of what it charged and refunded for one business date, in the two
//! layouts channels publish — Alipay's trade bill (业务明细, CSV with `#` header and totals
//! lines) and WeChat Pay's trade bill (backtick-prefixed fields, a totals header and line) —
//! written (for channel-sim) and parsed strictly (for payd): GBK or UTF-8 (with or without a
//! BOM), CRLF or LF; a file that does not parse, or whose totals disagree with its rows, is
//! refused with the line and the reason. Pure: bytes in, rows out.
//!
//! Amounts are CNY with exactly two decimals, as both channels print them; inside they are
//! minor units. A row's `amount` is what it moved for the merchant: a charge's amount, or a
//! refund's (positive); `fee` is the channel's service charge on it (a refund's is what the
//! channel returned of it).

use std::fmt::Write as _;

/// The layout of a statement file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Alipay 业务明细 (trade bill) CSV.
    Alipay,
    /// WeChat Pay 交易账单 (ALL).
    Wechat,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "alipay" => Some(Format::Alipay),
            "wechat" => Some(Format::Wechat),
            _ => None,
        }
    }
}

/// The bytes a statement is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// What both channels send by default.
    Gbk,
    Utf8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowKind {
    Charge,
    Refund,
}

/// One detail row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub kind: RowKind,
    /// The channel's trade number (支付宝交易号 / 微信订单号).
    pub channel_reference: String,
    /// Our request id for the charge (商户订单号), on its refunds too.
    pub out_trade_no: String,
    /// Our refund request id (退款批次号/请求号 / 商户退款单号), refunds only.
    pub out_refund_no: Option<String>,
    /// Minor units, > 0: the charge, or the refund.
    pub amount: i64,
    /// The channel's fee on the row, minor units ≥ 0 (on a refund: the part it returned).
    pub fee: i64,
    /// `yyyy-MM-dd HH:mm:ss` as the channel prints it.
    pub time: String,
    /// The goods' name as sent with the charge.
    pub subject: String,
}

/// A statement: whose, which date, and its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub format: Format,
    /// The merchant account at the channel (账号 / 商户号).
    pub account: String,
    /// `yyyy-MM-dd`.
    pub date: String,
    pub rows: Vec<Row>,
}

/// Why a file was refused: its line (1-based) and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct StatementError {
    pub line: usize,
    pub reason: String,
}

fn refuse<T>(line: usize, reason: impl Into<String>) -> Result<T, StatementError> {
    Err(StatementError {
        line,
        reason: reason.into(),
    })
}

/// `12.34` → 1234; exactly two decimals, an optional `-`.
pub fn parse_cents(text: &str) -> Option<i64> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (units, cents) = body.split_once('.')?;
    if units.is_empty()
        || units.len() > 13
        || cents.len() != 2
        || !units.bytes().all(|b| b.is_ascii_digit())
        || !cents.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let v = units.parse::<i64>().ok()? * 100 + cents.parse::<i64>().ok()?;
    Some(if neg { -v } else { v })
}

/// 1234 → `12.34`, -5 → `-0.05`.
pub fn cents(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        v.unsigned_abs() / 100,
        v.unsigned_abs() % 100
    )
}

/// The file's text: UTF-8 after a BOM, UTF-8 if it is valid UTF-8, else GBK.
pub fn decode(bytes: &[u8]) -> Result<String, StatementError> {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return match std::str::from_utf8(rest) {
            Ok(t) => Ok(t.to_string()),
            Err(e) => refuse(
                line_of(rest, e.valid_up_to()),
                "not valid UTF-8 after its BOM",
            ),
        };
    }
    if let Ok(t) = std::str::from_utf8(bytes) {
        return Ok(t.to_string());
    }
    match encoding_rs::GBK.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(t) => Ok(t.into_owned()),
        None => {
            // Find the first line GBK cannot read, to name it.
            let mut line = 1;
            for l in bytes.split(|b| *b == b'\n') {
                if encoding_rs::GBK
                    .decode_without_bom_handling_and_without_replacement(l)
                    .is_none()
                {
                    break;
                }
                line += 1;
            }
            refuse(line, "neither UTF-8 nor GBK")
        }
    }
}

fn line_of(bytes: &[u8], at: usize) -> usize {
    1 + bytes[..at].iter().filter(|b| **b == b'\n').count()
}

fn encode(text: &str, charset: Charset) -> Vec<u8> {
    match charset {
        Charset::Utf8 => text.as_bytes().to_vec(),
        Charset::Gbk => encoding_rs::GBK.encode(text).0.into_owned(),
    }
}

/// A CSV field as the channels write it: quoted when it holds a comma, a quote or a line
/// break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

const ALIPAY_COLUMNS: [&str; 25] = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
];
const ALIPAY_LIST: &str =
    "#-----------------------------------------业务明细列表----------------------------------------";
const ALIPAY_LIST_END: &str =
    "#-----------------------------------------业务明细列表结束------------------------------------";

const WECHAT_COLUMNS: [&str; 27] = [
    "交易时间",
    "公众账号ID",
    "商户号",
    "特约商户号",
    "设备号",
    "微信订单号",
    "商户订单号",
    "用户标识",
    "交易类型",
    "交易状态",
    "付款银行",
    "货币种类",
    "应结订单金额",
    "代金券金额",
    "微信退款单号",
    "商户退款单号",
    "退款金额",
    "充值券退款金额",
    "退款类型",
    "退款状态",
    "商品名称",
    "商户数据包",
    "手续费",
    "费率",
    "订单金额",
    "申请退款金额",
    "费率备注",
];
const WECHAT_TOTAL_COLUMNS: [&str; 7] = [
    "总交易单数",
    "应结订单总金额",
    "退款总金额",
    "充值券退款总金额",
    "手续费总金额",
    "订单总金额",
    "申请退款总金额",
];

/// `yyyy-MM-dd` → `yyyy年MM月dd日`.
fn chinese_date(date: &str) -> String {
    let mut p = date.splitn(3, '-');
    let (y, m, d) = (
        p.next().unwrap_or(""),
        p.next().unwrap_or(""),
        p.next().unwrap_or(""),
    );
    format!("{y}年{m}月{d}日")
}

/// Writes `s` as its channel does: CRLF line ends, in `charset`. `next_date` is the day
/// after (Alipay's end of range); `exported_at` the export time it prints.
pub fn write(s: &Statement, next_date: &str, exported_at: &str, charset: Charset) -> Vec<u8> {
    let mut out = String::new();
    let charges = s.rows.iter().filter(|r| r.kind == RowKind::Charge);
    let refunds = s.rows.iter().filter(|r| r.kind == RowKind::Refund);
    match s.format {
        Format::Alipay => {
            let _ = write!(
                out,
                "#支付宝业务明细查询\r\n#账号：[{}]\r\n#起始日期：[{} 00:00:00]   终止日期：[{} 00:00:00]\r\n{ALIPAY_LIST}\r\n{}\r\n",
                s.account,
                chinese_date(&s.date),
                chinese_date(next_date),
                ALIPAY_COLUMNS.join(",")
            );
            for r in &s.rows {
                let (kind, received, fee, refund_no) = match r.kind {
                    RowKind::Charge => ("交易", r.amount, -r.fee, String::new()),
                    RowKind::Refund => (
                        "退款",
                        -r.amount,
                        r.fee,
                        format!("{}\t", r.out_refund_no.as_deref().unwrap_or("")),
                    ),
                };
                let _ = write!(
                    out,
                    "{},{},{kind},{},{},{},,,,,,{},{},0.00,0.00,0.00,0.00,0.00,,0.00,0.00,{},{},0.00,\r\n",
                    field(&format!("{}\t", r.channel_reference)),
                    field(&format!("{}\t", r.out_trade_no)),
                    field(&r.subject),
                    r.time,
                    r.time,
                    cents(received),
                    cents(received),
                    field(&refund_no),
                    cents(fee),
                );
            }
            let sum = |rows: &mut dyn Iterator<Item = &Row>, sign: i64| {
                rows.fold((0usize, 0i64), |(n, a), r| (n + 1, a + sign * r.amount))
            };
            let (n, a) = sum(&mut charges.clone(), 1);
            let (m, b) = sum(&mut refunds.clone(), -1);
            let _ = write!(
                out,
                "{ALIPAY_LIST_END}\r\n#交易合计：{n}笔，商家实收共计：{}元\r\n#退款合计：{m}笔，商家实收共计：{}元\r\n#导出时间：[{exported_at}]\r\n",
                cents(a),
                cents(b)
            );
        }
        Format::Wechat => {
            let _ = write!(out, "{}\r\n", WECHAT_COLUMNS.join(","));
            let (mut settled, mut refunded, mut fees, mut ordered) = (0i64, 0i64, 0i64, 0i64);
            for r in &s.rows {
                let (status, due, refund_id, refund_no, refund, refund_status, fee) = match r.kind {
                    RowKind::Charge => (
                        "SUCCESS",
                        r.amount,
                        "0".to_string(),
                        "0".to_string(),
                        0,
                        "",
                        r.fee,
                    ),
                    RowKind::Refund => (
                        "REFUND",
                        0,
                        format!("50{}", r.channel_reference.trim_start_matches("42")),
                        r.out_refund_no.clone().unwrap_or_default(),
                        r.amount,
                        "SUCCESS",
                        -r.fee,
                    ),
                };
                settled += due;
                refunded += refund;
                fees += fee;
                ordered += due;
                let f = |t: &str| field(&format!("`{t}"));
                let cells = [
                    f(&r.time),
                    f("wx2421b1c4370ec43b"),
                    f(&s.account),
                    f("0"),
                    f(""),
                    f(&r.channel_reference),
                    f(&r.out_trade_no),
                    f("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
                    f("NATIVE"),
                    f(status),
                    f("OTHERS"),
                    f("CNY"),
                    f(&cents(due)),
                    f("0.00"),
                    f(&refund_id),
                    f(&refund_no),
                    f(&cents(refund)),
                    f("0.00"),
                    f(if refund > 0 { "ORIGINAL" } else { "" }),
                    f(refund_status),
                    f(&r.subject),
                    f(""),
                    f(&cents(fee)),
                    f("0.60%"),
                    f(&cents(due)),
                    f(&cents(refund)),
                    f(""),
                ];
                let _ = write!(out, "{}\r\n", cells.join(","));
            }
            let _ = write!(
                out,
                "{}\r\n`{},`{},`{},`0.00,`{},`{},`{}\r\n",
                WECHAT_TOTAL_COLUMNS.join(","),
                s.rows.len(),
                cents(settled),
                cents(refunded),
                cents(fees),
                cents(ordered),
                cents(refunded),
            );
        }
    }
    encode(&out, charset)
}

/// The file's lines with their 1-based numbers, line ends (CRLF or LF) removed; a
/// trailing empty line is not a line.
fn lines(text: &str) -> Vec<(usize, &str)> {
    let mut out: Vec<(usize, &str)> = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
        .collect();
    if out.last().is_some_and(|(_, l)| l.is_empty()) {
        out.pop();
    }
    out
}

/// One CSV record of one line (a real reader: quotes, escaped quotes).
fn record(line: usize, text: &str) -> Result<Vec<String>, StatementError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rec = csv::StringRecord::new();
    match reader.read_record(&mut rec) {
        Ok(true) => Ok(rec.iter().map(str::to_string).collect()),
        Ok(false) => refuse(line, "an empty line"),
        Err(e) => refuse(line, format!("not a CSV record: {e}")),
    }
}

/// Reads `lines` (numbered) as one CSV block with one reader, calling `f` with each
/// record and its line. A blank line is refused (the reader would skip it).
fn each_record(
    lines: &[(usize, &str)],
    mut f: impl FnMut(usize, &csv::StringRecord) -> Result<(), StatementError>,
) -> Result<(), StatementError> {
    if let Some((n, _)) = lines.iter().find(|(_, l)| l.is_empty()) {
        return refuse(*n, "an empty line");
    }
    let mut block = String::with_capacity(lines.iter().map(|(_, l)| l.len() + 1).sum());
    for (_, l) in lines {
        block.push_str(l);
        block.push('\n');
    }
    let line_of = |at: Option<&csv::Position>| {
        let i = at.map_or(1, |p| p.line() as usize).max(1);
        lines.get(i - 1).map_or(0, |l| l.0)
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(block.as_bytes());
    let mut rec = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut rec) {
            Ok(false) => return Ok(()),
            Ok(true) => f(line_of(rec.position()), &rec)?,
            Err(e) => {
                return refuse(line_of(e.position()), format!("not a CSV record: {e}"));
            }
        }
    }
}

fn amount(line: usize, column: &str, text: &str) -> Result<i64, StatementError> {
    parse_cents(text).map_or_else(
        || {
            refuse(
                line,
                format!("{column} {text:?} is not an amount with two decimals"),
            )
        },
        Ok,
    )
}

/// Parses a statement in `format`, strictly.
pub fn parse(bytes: &[u8], format: Format) -> Result<Statement, StatementError> {
    let text = decode(bytes)?;
    let lines = lines(&text);
    match format {
        Format::Alipay => parse_alipay(&lines),
        Format::Wechat => parse_wechat(&lines),
    }
}

/// `#账号：[X]` → X (the bracketed value after `label`).
fn bracketed<'a>(line: usize, text: &'a str, label: &str) -> Result<&'a str, StatementError> {
    text.strip_prefix(label)
        .and_then(|r| r.strip_prefix('['))
        .and_then(|r| r.split(']').next())
        .map_or_else(|| refuse(line, format!("expected {label}[…]")), Ok)
}

/// Line `i`, or a refusal: the file ends before `what`.
fn line_at<'a>(
    lines: &[(usize, &'a str)],
    i: usize,
    what: &str,
) -> Result<(usize, &'a str), StatementError> {
    match lines.get(i) {
        Some(l) => Ok(*l),
        None => refuse(
            lines.last().map_or(1, |l| l.0 + 1),
            format!("the file ends before {what} (truncated?)"),
        ),
    }
}

fn parse_alipay(lines: &[(usize, &str)]) -> Result<Statement, StatementError> {
    let mut at = 0;
    let mut next = |what: &str| {
        at += 1;
        line_at(lines, at - 1, what)
    };
    let (n, l) = next("its title")?;
    if l != "#支付宝业务明细查询" {
        return refuse(
            n,
            "not an Alipay trade bill: the first line must be #支付宝业务明细查询",
        );
    }
    let (n, l) = next("the account line")?;
    let account = bracketed(n, l, "#账号：")?.to_string();
    let (n, l) = next("the date range")?;
    let start = bracketed(n, l, "#起始日期：")?;
    let date = parse_chinese_date(start.split(' ').next().unwrap_or("")).map_or_else(
        || refuse(n, format!("the start date {start:?} is not a date")),
        Ok,
    )?;
    let (n, l) = next("the list's start")?;
    if l != ALIPAY_LIST {
        return refuse(n, "expected the 业务明细列表 line");
    }
    let (n, l) = next("the column header")?;
    if record(n, l)? != ALIPAY_COLUMNS {
        return refuse(n, "the column header is not the trade bill's 25 columns");
    }
    // The rows: every line up to the list's end, read by one CSV reader.
    let first = 5;
    let Some(list_end) = lines[first.min(lines.len())..]
        .iter()
        .position(|(_, l)| *l == ALIPAY_LIST_END)
        .map(|i| first + i)
    else {
        return refuse(
            lines.last().map_or(1, |l| l.0 + 1),
            "the file ends before the list's end (truncated?)",
        );
    };
    let mut rows = Vec::new();
    each_record(&lines[first..list_end], |n, f| {
        if f.get(0).is_some_and(|c| c.starts_with('#')) {
            return refuse(n, "a # line inside the list");
        }
        if f.len() != ALIPAY_COLUMNS.len() {
            return refuse(n, format!("{} fields, the header has 25", f.len()));
        }
        // Alipay ends its number fields with a TAB (so spreadsheets keep them as text).
        let id = |i: usize| f[i].trim_end_matches('\t').trim().to_string();
        let received = amount(n, ALIPAY_COLUMNS[12], &f[12])?;
        let fee = amount(n, ALIPAY_COLUMNS[22], &f[22])?;
        let (kind, out_refund_no) = match &f[2] {
            "交易" if received > 0 => (RowKind::Charge, None),
            "退款" if received < 0 => (RowKind::Refund, Some(id(21)).filter(|s| !s.is_empty())),
            other => {
                return refuse(
                    n,
                    format!("业务类型 {other:?} with 商家实收 {}", cents(received)),
                )
            }
        };
        if id(0).is_empty() || id(1).is_empty() {
            return refuse(n, "a row without 支付宝交易号 or 商户订单号");
        }
        rows.push(Row {
            kind,
            channel_reference: id(0),
            out_trade_no: id(1),
            out_refund_no,
            amount: received.abs(),
            fee: fee.abs(),
            time: f[5].to_string(),
            subject: f[3].to_string(),
        });
        Ok(())
    })?;
    let mut at = list_end + 1;
    let mut next = |what: &str| {
        at += 1;
        line_at(lines, at - 1, what)
    };
    // The totals: 交易合计 and 退款合计, each a count and a sum of 商家实收.
    let totals = |n: usize, l: &str, label: &str| -> Result<(usize, i64), StatementError> {
        let rest = l
            .strip_prefix(label)
            .map_or_else(|| refuse(n, format!("expected {label}…")), Ok)?;
        let (count, sum) = rest
            .split_once("笔，商家实收共计：")
            .map_or_else(|| refuse(n, "expected N笔，商家实收共计：X元"), Ok)?;
        let sum = sum
            .strip_suffix('元')
            .map_or_else(|| refuse(n, "the sum must end with 元"), Ok)?;
        let count = count
            .parse::<usize>()
            .map_or_else(|_| refuse(n, format!("{count:?} is not a count")), Ok)?;
        Ok((count, amount(n, "商家实收共计", sum)?))
    };
    let (n, l) = next("the 交易合计 line")?;
    let (count, sum) = totals(n, l, "#交易合计：")?;
    let charges: Vec<&Row> = rows.iter().filter(|r| r.kind == RowKind::Charge).collect();
    let charged: i64 = charges.iter().map(|r| r.amount).sum();
    if count != charges.len() || sum != charged {
        return refuse(
            n,
            format!(
                "交易合计 says {count} rows and {}; the list has {} and {}",
                cents(sum),
                charges.len(),
                cents(charged)
            ),
        );
    }
    let (n, l) = next("the 退款合计 line")?;
    let (count, sum) = totals(n, l, "#退款合计：")?;
    let refunds: Vec<&Row> = rows.iter().filter(|r| r.kind == RowKind::Refund).collect();
    let refunded: i64 = -refunds.iter().map(|r| r.amount).sum::<i64>();
    if count != refunds.len() || sum != refunded {
        return refuse(
            n,
            format!(
                "退款合计 says {count} rows and {}; the list has {} and {}",
                cents(sum),
                refunds.len(),
                cents(refunded)
            ),
        );
    }
    let (n, l) = next("the export time")?;
    bracketed(n, l, "#导出时间：")?;
    if let Some((n, _)) = lines.get(list_end + 4) {
        return refuse(*n, "lines after the export time");
    }
    Ok(Statement {
        format: Format::Alipay,
        account,
        date,
        rows,
    })
}

/// `2026年12月01日` → `2026-12-01`.
fn parse_chinese_date(text: &str) -> Option<String> {
    let (y, rest) = text.split_once('年')?;
    let (m, rest) = rest.split_once('月')?;
    let d = rest.strip_suffix('日')?;
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    (ok(y, 4) && ok(m, 2) && ok(d, 2)).then(|| format!("{y}-{m}-{d}"))
}

fn parse_wechat(lines: &[(usize, &str)]) -> Result<Statement, StatementError> {
    let Some(&(n, header)) = lines.first() else {
        return refuse(1, "an empty file");
    };
    if record(n, header)? != WECHAT_COLUMNS {
        return refuse(
            n,
            "not a WeChat Pay trade bill: the column header is not its 27 columns",
        );
    }
    let mut rows = Vec::new();
    let mut account = None::<String>;
    let mut date = None::<String>;
    let (mut settled, mut refunded, mut fees) = (0i64, 0i64, 0i64);
    // The rows: every line up to the totals header, read by one CSV reader.
    let i = lines
        .iter()
        .skip(1)
        .position(|(_, l)| l.starts_with(WECHAT_TOTAL_COLUMNS[0]))
        .map_or(lines.len(), |p| p + 1);
    each_record(&lines[1..i], |n, f| {
        if f.len() != WECHAT_COLUMNS.len() {
            return refuse(n, format!("{} fields, the header has 27", f.len()));
        }
        let mut v: [&str; WECHAT_COLUMNS.len()] = [""; WECHAT_COLUMNS.len()];
        for (c, x) in f.iter().enumerate() {
            match x.strip_prefix('`') {
                Some(t) => v[c] = t,
                None => return refuse(n, format!("{} is not prefixed with `", WECHAT_COLUMNS[c])),
            }
        }
        let due = amount(n, WECHAT_COLUMNS[12], v[12])?;
        let refund = amount(n, WECHAT_COLUMNS[16], v[16])?;
        let fee = amount(n, WECHAT_COLUMNS[22], v[22])?;
        settled += due;
        refunded += refund;
        fees += fee;
        let kind = match v[9] {
            "SUCCESS" if due > 0 && refund == 0 => RowKind::Charge,
            "REFUND" if refund > 0 => RowKind::Refund,
            other => {
                return refuse(
                    n,
                    format!(
                        "交易状态 {other:?} with 应结订单金额 {} and 退款金额 {}",
                        cents(due),
                        cents(refund)
                    ),
                )
            }
        };
        if v[5].is_empty() || v[6].is_empty() {
            return refuse(n, "a row without 微信订单号 or 商户订单号");
        }
        match &account {
            None => account = Some(v[2].to_string()),
            Some(a) if a != v[2] => return refuse(n, "rows of two 商户号"),
            Some(_) => {}
        }
        if date.is_none() {
            date = v[0].get(..10).map(str::to_string);
        }
        rows.push(Row {
            kind,
            channel_reference: v[5].to_string(),
            out_trade_no: v[6].to_string(),
            out_refund_no: (kind == RowKind::Refund).then(|| v[15].to_string()),
            amount: if kind == RowKind::Charge { due } else { refund },
            fee: fee.abs(),
            time: v[0].to_string(),
            subject: v[20].to_string(),
        });
        Ok(())
    })?;
    let (n, l) = line_at(lines, i, "its totals")?;
    if record(n, l)? != WECHAT_TOTAL_COLUMNS {
        return refuse(n, "the totals header is not 总交易单数,应结订单总金额,…");
    }
    let (n, l) = line_at(lines, i + 1, "its totals line")?;
    let t: Vec<String> = record(n, l)?
        .iter()
        .map(|x| x.strip_prefix('`').unwrap_or(x).to_string())
        .collect();
    if t.len() != WECHAT_TOTAL_COLUMNS.len() {
        return refuse(n, format!("{} totals, the header has 7", t.len()));
    }
    let count = t[0].parse::<usize>().map_or_else(
        |_| refuse(n, format!("总交易单数 {:?} is not a count", t[0])),
        Ok,
    )?;
    let said = (
        count,
        amount(n, "应结订单总金额", &t[1])?,
        amount(n, "退款总金额", &t[2])?,
        amount(n, "手续费总金额", &t[4])?,
    );
    if said != (rows.len(), settled, refunded, fees) {
        return refuse(
            n,
            format!(
                "the totals say {} rows, {} settled, {} refunded, {} fees; the rows add up to {}, {}, {}, {}",
                said.0,
                cents(said.1),
                cents(said.2),
                cents(said.3),
                rows.len(),
                cents(settled),
                cents(refunded),
                cents(fees)
            ),
        );
    }
    if let Some(&(n, _)) = lines.get(i + 2) {
        return refuse(n, "lines after the totals");
    }
    Ok(Statement {
        format: Format::Wechat,
        account: account.unwrap_or_default(),
        date: date.unwrap_or_default(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(format: Format) -> Statement {
        Statement {
            format,
            account: "2088102170000156".into(),
            date: "2026-12-01".into(),
            rows: vec![
                Row {
                    kind: RowKind::Charge,
                    channel_reference: "2026120122001456781000123401".into(),
                    out_trade_no: "pay_0190aa".into(),
                    out_refund_no: None,
                    amount: 10_000,
                    fee: 60,
                    time: "2026-12-01 10:00:01".into(),
                    subject: "龙井茶（特级）".into(),
                },
                Row {
                    kind: RowKind::Charge,
                    channel_reference: "2026120122001456781000123402".into(),
                    out_trade_no: "pay_0190ab".into(),
                    out_refund_no: None,
                    amount: 3_250,
                    fee: 20,
                    time: "2026-12-01 11:30:00".into(),
                    subject: "茶杯, 两只".into(),
                },
                Row {
                    kind: RowKind::Refund,
                    channel_reference: "2026120122001456781000123399".into(),
                    out_trade_no: "pay_018fff".into(),
                    out_refund_no: Some("re_0190ac".into()),
                    amount: 1_000,
                    fee: 6,
                    time: "2026-12-01 12:00:00".into(),
                    subject: "退款".into(),
                },
            ],
        }
    }

    #[test]
    fn both_layouts_round_trip_in_gbk_and_utf8() {
        for format in [Format::Alipay, Format::Wechat] {
            for charset in [Charset::Gbk, Charset::Utf8] {
                let s = sample(format);
                let bytes = write(&s, "2026-12-02", "2026年12月02日 09:12:34", charset);
                assert!(bytes.windows(2).any(|w| w == b"\r\n"), "CRLF");
                if charset == Charset::Gbk {
                    assert!(std::str::from_utf8(&bytes).is_err(), "GBK is not UTF-8");
                }
                let mut back = parse(&bytes, format).unwrap();
                if format == Format::Wechat {
                    // WeChat's bill names the merchant, not the date: the first row's day.
                    assert_eq!(back.date, "2026-12-01");
                    back.date = s.date.clone();
                }
                assert_eq!(back, s, "{format:?} {charset:?}");
                // With a BOM too.
                let mut bom = vec![0xEF, 0xBB, 0xBF];
                bom.extend(write(
                    &s,
                    "2026-12-02",
                    "2026年12月02日 09:12:34",
                    Charset::Utf8,
                ));
                assert_eq!(parse(&bom, format).unwrap().rows, s.rows);
            }
        }
    }

    #[test]
    fn the_alipay_layout_is_the_published_one() {
        let bytes = write(
            &sample(Format::Alipay),
            "2026-12-02",
            "2026年12月02日 09:12:34",
            Charset::Utf8,
        );
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "#支付宝业务明细查询");
        assert_eq!(lines[1], "#账号：[2088102170000156]");
        assert_eq!(
            lines[2],
            "#起始日期：[2026年12月01日 00:00:00]   终止日期：[2026年12月02日 00:00:00]"
        );
        assert!(lines[4].starts_with("支付宝交易号,商户订单号,业务类型,商品名称"));
        assert!(lines[5]
            .starts_with("2026120122001456781000123401\t,pay_0190aa\t,交易,龙井茶（特级）,"));
        assert!(lines[6].contains(",\"茶杯, 两只\","), "{}", lines[6]);
        assert!(lines[7].contains(",退款,") && lines[7].contains(",-10.00,-10.00,"));
        assert_eq!(lines[9], "#交易合计：2笔，商家实收共计：132.50元");
        assert_eq!(lines[10], "#退款合计：1笔，商家实收共计：-10.00元");
    }

    #[test]
    fn the_wechat_layout_is_the_published_one() {
        let bytes = write(&sample(Format::Wechat), "2026-12-02", "", Charset::Utf8);
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert!(lines[0]
            .starts_with("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号"));
        assert!(lines[1].starts_with("`2026-12-01 10:00:01,`wx2421b1c4370ec43b,`2088102170000156,"));
        assert_eq!(lines[4], WECHAT_TOTAL_COLUMNS.join(","));
        assert_eq!(lines[5], "`3,`132.50,`10.00,`0.00,`0.74,`132.50,`10.00");
    }

    fn replace_line(bytes: &[u8], n: usize, f: impl Fn(&str) -> String) -> Vec<u8> {
        let text = decode(bytes).unwrap();
        let mut lines: Vec<String> = text.split("\r\n").map(str::to_string).collect();
        lines[n - 1] = f(&lines[n - 1]);
        encode(&lines.join("\r\n"), Charset::Gbk)
    }

    #[test]
    fn altered_totals_truncation_and_bad_rows_are_refused_with_their_line() {
        let alipay = write(&sample(Format::Alipay), "2026-12-02", "x", Charset::Gbk);
        let e = parse(
            &replace_line(&alipay, 10, |l| l.replace("132.50", "132.51")),
            Format::Alipay,
        )
        .unwrap_err();
        assert_eq!(e.line, 10, "{e}");
        assert!(e.reason.contains("交易合计 says 2 rows and 132.51"), "{e}");
        let e = parse(
            &replace_line(&alipay, 6, |l| {
                l.replace(",100.00,100.00,", ",100.0,100.0,")
            }),
            Format::Alipay,
        )
        .unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        // Cut after its rows, and cut in the middle of a character.
        let text = decode(&alipay).unwrap();
        let cut: Vec<&str> = text.split("\r\n").take(8).collect();
        let e = parse(&encode(&cut.join("\r\n"), Charset::Gbk), Format::Alipay).unwrap_err();
        assert_eq!(e.line, 9, "{e}");
        assert!(e.reason.contains("truncated"), "{e}");
        let mid = alipay.iter().position(|b| *b >= 0x80).unwrap() + 1;
        assert!(parse(&alipay[..mid], Format::Alipay).is_err());
        assert!(parse(&alipay, Format::Wechat).is_err(), "the wrong layout");
        let mut extra = alipay.clone();
        extra.extend_from_slice(b"#more\r\n");
        let e = parse(&extra, Format::Alipay).unwrap_err();
        assert_eq!(
            (e.line, e.reason.as_str()),
            (13, "lines after the export time")
        );

        let wechat = write(&sample(Format::Wechat), "", "", Charset::Gbk);
        let e = parse(
            &replace_line(&wechat, 6, |l| l.replace("`0.74", "`0.75")),
            Format::Wechat,
        )
        .unwrap_err();
        assert_eq!(e.line, 6);
        assert!(e.reason.contains("0.75 fees"), "{e}");
        let e = parse(
            &replace_line(&wechat, 3, |l| l.replacen('`', "", 1)),
            Format::Wechat,
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let cut = decode(&wechat).unwrap();
        let cut: Vec<&str> = cut.split("\r\n").take(4).collect();
        let e = parse(cut.join("\r\n").as_bytes(), Format::Wechat).unwrap_err();
        assert!(e.reason.contains("truncated"), "{e}");
        // Bytes that are neither UTF-8 nor GBK.
        let mut bad = wechat.clone();
        bad.splice(0..0, [0xFF, 0xFF]);
        assert!(parse(&bad, Format::Wechat).is_err());
    }

    #[test]
    fn amounts_have_exactly_two_decimals() {
        assert_eq!(parse_cents("12.34"), Some(1234));
        assert_eq!(parse_cents("-0.05"), Some(-5));
        assert_eq!(parse_cents("0.00"), Some(0));
        for bad in [
            "12.3", "12", ".50", "1,000.00", "12.345", "+1.00", "", "1e2.00",
        ] {
            assert_eq!(parse_cents(bad), None, "{bad}");
        }
        assert_eq!(cents(-5), "-0.05");
        assert_eq!(cents(123_456), "1234.56");
    }

    proptest::proptest! {
        /// Whatever the rows (names with commas, quotes and full-width characters), a
        /// written statement parses back to itself in both layouts and both charsets.
        #[test]
        fn any_statement_round_trips(
            rows in proptest::collection::vec(
                (proptest::bool::ANY, 1i64..10_000_000, 0i64..10_000, "[a-z0-9_]{1,20}", "[茶杯a-z ,\"（）]{0,12}"),
                0..30,
            ),
            gbk in proptest::bool::ANY,
        ) {
            for format in [Format::Alipay, Format::Wechat] {
                let s = Statement {
                    format,
                    account: "1900000109".into(),
                    date: "2026-12-01".into(),
                    rows: rows
                        .iter()
                        .enumerate()
                        .map(|(i, (refund, amount, fee, no, subject))| Row {
                            kind: if *refund { RowKind::Refund } else { RowKind::Charge },
                            channel_reference: format!("4200{i:020}"),
                            out_trade_no: format!("pay_{no}"),
                            out_refund_no: refund.then(|| format!("re_{no}")),
                            amount: *amount,
                            fee: *fee,
                            time: "2026-12-01 08:00:00".into(),
                            subject: subject.clone(),
                        })
                        .collect(),
                };
                let charset = if gbk { Charset::Gbk } else { Charset::Utf8 };
                let mut back = parse(&write(&s, "2026-12-02", "t", charset), format).unwrap();
                if format == Format::Wechat {
                    back.date = s.date.clone();
                    if s.rows.is_empty() {
                        back.account = s.account.clone();
                    }
                }
                proptest::prop_assert_eq!(back, s);
            }
        }
    }
}
