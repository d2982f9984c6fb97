//! The baseline: the ledger most teams would build instead, in PostgreSQL. One payment is
//! one ACID transaction (debit the payer if it has the funds, credit the merchant net of the
//! fee, insert a journal row), run by a PL/pgSQL function in one round trip, with
//! PostgreSQL's default durability (`fsync=on`, `synchronous_commit=on`).

use std::cell::Cell;
use std::rc::Rc;

use anyhow::Context;
use rand::Rng;
use tokio_postgres::{Client, NoTls, Statement};

use super::payd::{Mix, Scenario};
use super::report::Checks;
use super::{Outcome, Target};

const SCHEMA: &str = r#"
DROP TABLE IF EXISTS journal;
DROP TABLE IF EXISTS accounts;
CREATE TABLE accounts (id bigint PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE journal (
    id bigserial PRIMARY KEY,
    payer bigint NOT NULL,
    merchant bigint NOT NULL,
    amount bigint NOT NULL,
    fee bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION pay(p_payer bigint, p_merchant bigint, p_amount bigint, p_fee bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE accounts SET balance = balance - p_amount WHERE id = p_payer AND balance >= p_amount;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE accounts SET balance = balance + p_amount - p_fee WHERE id = p_merchant;
    INSERT INTO journal (payer, merchant, amount, fee) VALUES (p_payer, p_merchant, p_amount, p_fee);
    RETURN true;
END $$;
"#;

/// Payers' opening balance (cents), as for payd.
const FUNDS: i64 = 10_000_000_000;
/// Merchant ids start here; poor (always declining) payers after them.
const MERCHANT_BASE: i64 = 1_000_000_000;
const POOR_BASE: i64 = 2_000_000_000;
const POOR: i64 = 64;

#[derive(Clone, Debug)]
pub struct PgConfig {
    /// libpq-style connection string, e.g. `host=127.0.0.1 port=55432 user=postgres`.
    pub conn: String,
    pub scenario: Scenario,
    pub mix: Mix,
    pub accounts: usize,
    pub merchants: usize,
}

pub struct Pg {
    config: PgConfig,
    merchants: i64,
    succeeded: Cell<u64>,
    paid: Vec<Cell<i64>>,
    /// Payments whose answer never came: they may or may not have committed.
    unknown: Cell<u64>,
}

pub struct PgConn {
    client: Client,
    pay: Statement,
}

pub enum PgOp {
    Pay {
        payer: i64,
        merchant: i64,
        amount: i64,
    },
}

async fn connect(conn: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(conn, NoTls)
        .await
        .with_context(|| format!("connecting to PostgreSQL ({conn})"))?;
    tokio::task::spawn_local(async move {
        let _ = connection.await;
    });
    Ok(client)
}

impl Pg {
    /// Creates the schema and the accounts (payers funded, merchants and poor payers empty).
    pub async fn setup(config: PgConfig) -> anyhow::Result<Pg> {
        let client = connect(&config.conn).await?;
        client.batch_execute(SCHEMA).await?;
        let merchants = match config.scenario {
            Scenario::Hot => 1,
            _ => config.merchants.max(1) as i64,
        };
        client
            .execute(
                "INSERT INTO accounts SELECT g, $1 FROM generate_series(0::bigint, $2::bigint - 1) g",
                &[&FUNDS, &(config.accounts as i64)],
            )
            .await?;
        client
            .execute(
                "INSERT INTO accounts SELECT $1 + g, 0 FROM generate_series(0::bigint, $2::bigint - 1) g",
                &[&MERCHANT_BASE, &merchants],
            )
            .await?;
        client
            .execute(
                "INSERT INTO accounts SELECT $1 + g, 0 FROM generate_series(0::bigint, $2::bigint - 1) g",
                &[&POOR_BASE, &POOR],
            )
            .await?;
        client.batch_execute("VACUUM ANALYZE accounts").await?;
        let paid = (0..config.accounts).map(|_| Cell::new(0)).collect();
        Ok(Pg {
            config,
            merchants,
            succeeded: Cell::new(0),
            paid,
            unknown: Cell::new(0),
        })
    }

    /// Every acknowledged payment is a journal row, every payer's balance is what the
    /// answers imply, and the total is unchanged.
    pub async fn check(self: Rc<Self>) -> anyhow::Result<Checks> {
        let client = connect(&self.config.conn).await?;
        let mut checks = Checks {
            acknowledged: self.succeeded.get(),
            unknown_outcomes: self.unknown.get(),
            ..Checks::default()
        };
        let rows: i64 = client
            .query_one("SELECT count(*) FROM journal", &[])
            .await?
            .get(0);
        let rows = rows as u64;
        // Unknown outcomes may have committed: the journal may hold up to that many more.
        if rows < checks.acknowledged || rows > checks.acknowledged + checks.unknown_outcomes {
            checks.missing = checks.acknowledged.saturating_sub(rows);
            checks.notes.push(format!(
                "journal has {rows} rows for {} acknowledged payments",
                checks.acknowledged
            ));
        }
        checks.unknown_found = rows.saturating_sub(checks.acknowledged);
        checks.verified = rows.min(checks.acknowledged);
        let total_now: i64 = client
            .query_one(
                "SELECT (sum(balance) + (SELECT coalesce(sum(fee), 0) FROM journal))::bigint FROM accounts",
                &[],
            )
            .await?
            .get(0);
        checks.conserved = total_now == FUNDS * self.config.accounts as i64;
        if !checks.conserved {
            checks
                .notes
                .push(format!("balances plus fees sum to {total_now}"));
        }
        if checks.unknown_outcomes == 0 {
            let balances = client
                .query(
                    "SELECT id, balance FROM accounts WHERE id < $1 ORDER BY id",
                    &[&MERCHANT_BASE],
                )
                .await?;
            for row in balances {
                let (id, balance): (i64, i64) = (row.get(0), row.get(1));
                checks.accounts_checked += 1;
                let want = FUNDS - self.paid[id as usize].get();
                if balance != want {
                    checks.balance_mismatches += 1;
                    if checks.notes.len() < 20 {
                        checks.notes.push(format!(
                            "payer {id}: {balance} but the answers imply {want}"
                        ));
                    }
                }
            }
        }
        checks.passed = checks.missing == 0 && checks.balance_mismatches == 0 && checks.conserved;
        Ok(checks)
    }
}

impl Target for Pg {
    type Conn = PgConn;
    type Op = PgOp;

    async fn connect(&self) -> anyhow::Result<PgConn> {
        let client = connect(&self.config.conn).await?;
        let pay = client.prepare("SELECT pay($1, $2, $3, $4)").await?;
        Ok(PgConn { client, pay })
    }

    fn next_op(&self, _i: u64) -> PgOp {
        let mut rng = rand::rng();
        let merchant = MERCHANT_BASE + rng.random_range(0..self.merchants);
        let payer = if rng.random_range(0..100) < self.config.mix.decline {
            POOR_BASE + rng.random_range(0..POOR)
        } else {
            rng.random_range(0..self.config.accounts as i64)
        };
        PgOp::Pay {
            payer,
            merchant,
            amount: rng.random_range(100..=9_999),
        }
    }

    async fn exec(&self, conn: &mut Option<PgConn>, op: PgOp) -> Outcome {
        let PgOp::Pay {
            payer,
            merchant,
            amount,
        } = op;
        if conn.is_none() {
            match Target::connect(self).await {
                Ok(c) => *conn = Some(c),
                Err(_) => return Outcome::err("connect_error"),
            }
        }
        let c = conn.as_ref().expect("connected");
        // The same fee rule as payd's default merchant: 0.6 %, half up.
        let fee = (amount * 6 + 500) / 1000;
        match c
            .client
            .query_one(&c.pay, &[&payer, &merchant, &amount, &fee])
            .await
        {
            Ok(row) => {
                if row.get::<_, bool>(0) {
                    self.succeeded.set(self.succeeded.get() + 1);
                    if let Some(p) = self.paid.get(payer as usize) {
                        p.set(p.get() + amount);
                    }
                    Outcome::ok("succeeded")
                } else {
                    Outcome::ok("declined:insufficient_funds")
                }
            }
            Err(e) => {
                self.unknown.set(self.unknown.get() + 1);
                *conn = None;
                Outcome::err(format!(
                    "pg:{}",
                    e.code()
                        .map(|c| c.code().to_string())
                        .unwrap_or_else(|| "io".into())
                ))
            }
        }
    }
}
