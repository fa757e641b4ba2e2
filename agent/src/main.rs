//! `storefleet-agent`: the store-gateway agent's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use storefleet_agent::config::{self, ConfigSource, DEFAULT_TOML};
use tokio_util::sync::CancellationToken;

/// Storefleet store-gateway agent.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Main configuration file; drop-ins are read from `agent.d/` beside it.
    #[arg(
        long,
        short,
        env = "STOREFLEET_AGENT_CONFIG",
        default_value = "/etc/storefleet/agent.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the agent (the default).
    Run,
    /// Print the default configuration, documented.
    GenerateConfig,
    /// Load and validate the configuration, then print it as it would be used.
    CheckConfig,
    /// Print the agent id and public key (making the key on first use).
    ShowId,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STOREFLEET_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("storefleet-agent: error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    let source = ConfigSource::from_file(&cli.config);
    match cli.command.unwrap_or(Cmd::Run) {
        Cmd::GenerateConfig => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Cmd::CheckConfig => {
            let c = config::load(&source)?;
            print!("{}", toml::to_string_pretty(&c)?);
            Ok(())
        }
        Cmd::ShowId => {
            let c = config::load(&source)?;
            let key = storefleet_agent::identity::load_or_create(&c.key_path())?;
            let id = storefleet_agent::identity::agent_id(&c.agent.id, &key.public_key());
            println!(
                "agent_id = {id}\npublic_key = {}",
                key.public_key().to_base64()
            );
            Ok(())
        }
        Cmd::Run => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let result = rt.block_on(async {
                let token = CancellationToken::new();
                tokio::spawn(signals(token.clone()));
                storefleet_agent::run(source, token).await
            });
            // A blocking sampler stuck in the kernel must not hold the exit.
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
            result?;
            Ok(())
        }
    }
}

/// First SIGTERM or SIGINT: graceful stop. Second: exit at once.
async fn signals(token: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("Cannot install signal handlers");
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("Signal received; stopping (send again to exit at once)");
    token.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    std::process::exit(130);
}
