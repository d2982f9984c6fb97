//! `channel-sim`: simulated banks and third-party channels for tests and development (see
//! `sims::channel` for the protocol and the control plane).
//!
//! ```sh
//! channel-sim --listen 127.0.0.1:9100 --channel bank_a --channel 'bank_b={"latency_ms":5,"error_rate":0.3}'
//! curl -X PUT 127.0.0.1:9100/_sim/channels/bank_a -d '{"down":true}' -H 'Content-Type: application/json'
//! channel-sim --tls-cert cert.pem --tls-key key.pem --channel bank_a   # channels on https://
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
    /// Serve every channel over HTTPS with this PEM certificate chain (leaf first), with
    /// `--tls-key`; the control plane stays plain HTTP.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
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
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => Some(sims::channel::server_tls(cert, key)?),
        _ => None,
    };
    sims::channel::run(&cli.listen, initial, tls)
}
