//! `storefleet-dev`: development peers. For now, the embedded MQTT broker as a process.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

/// Storefleet development peers.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the embedded MQTT broker (rumqttd) until killed.
    Broker {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:1883")]
        listen: SocketAddr,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STOREFLEET_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match Cli::parse().command {
        Cmd::Broker { listen } => {
            eprintln!("storefleet-dev: MQTT broker listening on {listen}");
            storefleet_testkit::broker::run_blocking(listen).map_err(anyhow::Error::msg)?;
            Ok(())
        }
    }
}
