//! `storefleet-sim`: the one-command demo (`demo`: controller, embedded broker, web UI and a
//! simulated fleet in one process) and the simulated stores alone against a running
//! controller (`run`). Never installed on a production controller: the `storefleet` binary
//! and its package do not contain the agent or the simulator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use storefleet_controller::cli::Connect;
use storefleet_controller::client::Client;
use storefleet_controller::config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Storefleet fleet simulator and demo.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run everything on one machine with a simulated fleet: embedded broker, controller,
    /// web UI, and N simulated stores running the real agent code.
    Demo {
        /// Number of simulated stores.
        #[arg(long, default_value_t = 50)]
        stores: usize,
        /// Where the web UI and API listen.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// Where the embedded broker listens (default: a free loopback port).
        #[arg(long)]
        mqtt: Option<SocketAddr>,
        /// Keep the demo's state here (default: a temporary directory removed at exit).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Run only the simulated stores, against a running controller (found as the admin CLI
    /// finds it: --url, --token, --tls-pin, or the controller's config on this machine).
    Run {
        /// Number of simulated stores.
        #[arg(long, default_value_t = 50)]
        stores: usize,
        /// Where the agents keep their state.
        #[arg(long)]
        state_dir: PathBuf,
        #[command(flatten)]
        connect: Connect,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    storefleet_support::shutdown::init_logging(
        "info,storefleet_agent=warn,rumqttd=warn,rumqttc=warn",
    );
    let result = match cli.command {
        Cmd::Demo {
            stores,
            http,
            mqtt,
            state_dir,
        } => demo(stores, http, mqtt, state_dir),
        Cmd::Run {
            stores,
            state_dir,
            connect,
        } => run(stores, state_dir, &connect),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            storefleet_support::shutdown::print_error("storefleet-sim", e.as_ref());
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Waits for Ctrl-C, then gives the simulated agents 10 s to stop.
async fn until_stopped(token: &CancellationToken, tracker: &TaskTracker) {
    token.cancelled().await;
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await;
}

fn run(stores: usize, dir: PathBuf, connect: &Connect) -> anyhow::Result<()> {
    let client = connect.client()?;
    runtime()?.block_on(async {
        let token = CancellationToken::new();
        tokio::spawn(storefleet_support::shutdown::on_signals(token.clone()));
        let tracker = TaskTracker::new();
        let opts = storefleet_sim::Options::new(stores, dir, client);
        storefleet_sim::start(opts, token.clone(), &tracker).await?;
        println!("{stores} simulated stores running; Ctrl-C stops them");
        until_stopped(&token, &tracker).await;
        anyhow::Ok(())
    })
}

fn demo(
    stores: usize,
    http: SocketAddr,
    mqtt: Option<SocketAddr>,
    state_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (dir, temporary) = match state_dir {
        Some(d) => (d, false),
        None => (
            std::env::temp_dir().join(format!("storefleet-demo-{}", std::process::id())),
            true,
        ),
    };
    let mut config = Config::default();
    config.controller.state_dir = dir.join("controller");
    config.http.listen = http;
    // On loopback, for a browser without a certificate warning.
    config.http.tls = false;
    config.mqtt.listen = mqtt.unwrap_or(([127, 0, 0, 1], 0).into());
    config.database.synchronous = "normal".into();
    let rt = runtime()?;
    let result = rt.block_on(async {
        let token = CancellationToken::new();
        tokio::spawn(storefleet_support::shutdown::on_signals(token.clone()));
        let running = storefleet_controller::server::start(config, token.clone()).await?;
        let url = format!("http://{}", running.http);
        let state = &running.state.config.controller.state_dir;
        // The demo's own API token and password: from this start, or kept by an earlier run.
        let token_file = running.state.config.admin_token_path();
        let (api_token, password) = match &running.first_login {
            Some(f) => (f.api_token.clone(), f.password.clone()),
            None => (
                read_trimmed(&token_file)?,
                read_trimmed(&state.join("admin-password"))?,
            ),
        };
        println!("Starting {stores} simulated stores...");
        let client = Client::new(url.clone(), api_token);
        let mut opts = storefleet_sim::Options::new(stores, dir.join("agents"), client);
        // The demo's UPSes answer SNMP: the agents read them through their real probe.
        opts.device_protocols = true;
        let tracker = TaskTracker::new();
        storefleet_sim::start(opts, token.clone(), &tracker).await?;
        println!(
            "\nStorefleet demo is running.\n  web UI:  {url}/\n  login:   admin / {password}\n  API:     {url}/api/v1/openapi.json\n  broker:  {}\n  state:   {}\n  CLI:     cargo run -q -p storefleet-controller -- --url {url} --token \"$(cat {})\" stores\n           (or `storefleet --url ...` where the package is installed)\nPress Ctrl-C to stop.",
            running.mqtt_url,
            dir.display(),
            token_file.display()
        );
        until_stopped(&token, &tracker).await;
        running.wait().await;
        anyhow::Ok(())
    });
    rt.shutdown_timeout(Duration::from_secs(5));
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn read_trimmed(path: &std::path::Path) -> std::io::Result<String> {
    std::fs::read_to_string(path).map(|s| s.trim().to_owned())
}
