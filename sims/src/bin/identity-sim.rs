//! `identity-sim`: a simulated identity (name/number match) service for tests and development
//! (see `sims::identity` for the protocol and the control plane).
//!
//! ```sh
//! identity-sim --listen 127.0.0.1:9300 --key idv_dev_key_0123456789
//! curl -X PUT 127.0.0.1:9300/_sim/settings -d '{"down": true}' -H 'content-type: application/json'
//! ```

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Simulated identity verification service on loopback")]
struct Cli {
    /// Address of the service and its control plane.
    #[arg(long, default_value = "127.0.0.1:9300")]
    listen: String,
    /// The API key payd must send: payd's `identity_key`.
    #[arg(long, env = "IDENTITY_SIM_KEY")]
    key: String,
    /// Delay before each answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of checks answered 503 (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Numbers nobody added are `no_record` (default: they match any name).
    #[arg(long)]
    strict: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    sims::identity::run(
        &cli.listen,
        cli.key,
        sims::identity::Settings {
            down: false,
            latency_ms: cli.latency_ms,
            fail_rate: cli.fail_rate,
            strict: cli.strict,
        },
    )
}
