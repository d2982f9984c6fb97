//! `channel-sim`: simulated banks and third-party channels for tests and development (see
//! `sims::channel` for the protocol and the control plane).
//!
//! ```sh
//! channel-sim --listen 127.0.0.1:9100 --channel bank_a --channel 'bank_b={"latency_ms":5,"error_rate":0.3}'
//! curl -X PUT 127.0.0.1:9100/_sim/channels/bank_a -d '{"down":true}' -H 'Content-Type: application/json'
//! ```

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Simulated payment channels on loopback")]
struct Cli {
    /// Address of the control plane (`/_sim/...`).
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: String,
    /// A channel to start with: `NAME` or `NAME={"latency_ms":…,…}` (repeatable).
    #[arg(long)]
    channel: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let initial = cli
        .channel
        .iter()
        .map(|spec| match spec.split_once('=') {
            None => Ok((spec.clone(), Default::default())),
            Some((name, json)) => serde_json::from_str(json)
                .map(|settings| (name.to_string(), settings))
                .map_err(|e| anyhow::anyhow!("--channel {spec}: {e}")),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    sims::channel::run(&cli.listen, initial)
}
