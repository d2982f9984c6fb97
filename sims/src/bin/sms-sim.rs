//! `sms-sim`: a simulated SMS gateway for tests and development (see `sims::sms` for the
//! protocol and the control plane).
//!
//! ```sh
//! sms-sim --listen 127.0.0.1:9200 --key sms_dev_key_0123456789
//! curl 127.0.0.1:9200/_sim/messages
//! ```

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Simulated SMS gateway on loopback")]
struct Cli {
    /// Address of the gateway and its control plane.
    #[arg(long, default_value = "127.0.0.1:9200")]
    listen: String,
    /// The API key payd must send (and signs receipts with): payd's `sms_gateway_key`.
    #[arg(long, env = "SMS_SIM_KEY")]
    key: String,
    /// Share of messages whose receipt says failed (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Delay before each delivery receipt.
    #[arg(long, default_value_t = 50)]
    receipt_delay_ms: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    sims::sms::run(
        &cli.listen,
        cli.key,
        sims::sms::Settings {
            down: false,
            fail_rate: cli.fail_rate,
            receipt_delay_ms: cli.receipt_delay_ms,
        },
    )
}
