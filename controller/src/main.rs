//! `storefleet`: the controller (`serve`), the one-command demo (`demo`), and admin commands
//! over the HTTP API.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use storefleet_controller::cli::{self, AdminCmd, CliError, Client};
use storefleet_controller::config::{self, Config, DEFAULT_TOML};
use storefleet_support::http;
use tokio_util::sync::CancellationToken;

/// Storefleet controller and admin CLI.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Main configuration file; drop-ins are read from `controller.d/` beside it.
    #[arg(
        long,
        short,
        env = "STOREFLEET_CONFIG",
        default_value = "/etc/storefleet/controller.toml"
    )]
    config: PathBuf,
    /// Admin commands: the API's URL (default: the config's public URL).
    #[arg(long, env = "STOREFLEET_URL", global = true)]
    url: Option<String>,
    /// Admin commands: the API token (default: the state directory's admin-token file).
    #[arg(long, env = "STOREFLEET_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Admin commands: trust the controller whose TLS key has this pin (sha256//BASE64, as
    /// `storefleet tls-pin` prints it on the controller); default: the pin of the config's
    /// certificate when it is readable here, and the system's CAs.
    #[arg(long, env = "STOREFLEET_TLS_PIN", global = true)]
    tls_pin: Option<String>,
    /// Admin commands: trust the CAs in this PEM file instead of the system's.
    #[arg(long, env = "STOREFLEET_CA_FILE", global = true)]
    ca_file: Option<PathBuf>,
    /// Admin commands: print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the controller.
    Serve {
        /// Use this external broker (mqtt://host:port) instead of the embedded one.
        #[arg(long)]
        mqtt_url: Option<String>,
    },
    /// Run everything on one machine with a simulated fleet: embedded broker, controller,
    /// web UI, and N simulated stores running the real agent code.
    #[cfg(feature = "sim")]
    Demo {
        /// Number of simulated stores.
        #[arg(long, default_value_t = 50)]
        stores: usize,
        /// Where the web UI and API listen.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: std::net::SocketAddr,
        /// Where the embedded broker listens (default: a free loopback port).
        #[arg(long)]
        mqtt: Option<std::net::SocketAddr>,
        /// Keep the demo's state here (default: a temporary directory removed at exit).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Run only the simulated stores, against a running controller (--url, --token).
    #[cfg(feature = "sim")]
    Simulate {
        /// Number of simulated stores.
        #[arg(long, default_value_t = 50)]
        stores: usize,
        /// Where the agents keep their state.
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// Print the default configuration, documented.
    GenerateConfig,
    /// Load and validate the configuration, then print it as it would be used.
    CheckConfig,
    /// Print the pin of the certificate the API serves (sha256//BASE64), for admin CLIs on
    /// other machines (--tls-pin) and for curl (--pinnedpubkey).
    TlsPin,
    /// Set a user's password (creating the user), directly in the database, on the
    /// controller's machine: how the first admin gets back in. Other sessions of the user
    /// end. Over the API: `storefleet users`.
    SetPassword {
        /// User name.
        user: String,
        /// The role: for a new user (default viewer), or a new role for an existing one.
        #[arg(long, value_parser = parse_role)]
        role: Option<storefleet_controller::auth::Role>,
    },
    #[command(flatten)]
    Admin(AdminCmd),
}

fn parse_role(s: &str) -> Result<storefleet_controller::auth::Role, String> {
    storefleet_controller::auth::Role::parse(s)
        .ok_or_else(|| format!("{s:?}: expected viewer, engineer, dispatcher or admin"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    storefleet_support::shutdown::init_logging(
        "info,storefleet_agent=warn,rumqttd=warn,rumqttc=warn",
    );
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            storefleet_support::shutdown::print_error("storefleet", e.as_ref());
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn load(cli: &Cli) -> Result<Config, config::ConfigError> {
    config::load(&config::source(&cli.config))
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::GenerateConfig => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Cmd::CheckConfig => {
            print!("{}", toml::to_string_pretty(&load(&cli)?)?);
            Ok(())
        }
        Cmd::TlsPin => {
            let config = load(&cli)?;
            anyhow::ensure!(
                config.http.tls,
                "http.tls is off: the API serves no certificate"
            );
            let path = config.tls_cert_path();
            let pin = http::Pin::of_pem_file(&path)
                .map_err(|e| anyhow::anyhow!("{e} (the controller makes it on its first start)"))?;
            println!("{pin}");
            Ok(())
        }
        Cmd::Serve { ref mqtt_url } => {
            let mut config = load(&cli)?;
            if let Some(url) = mqtt_url {
                config.mqtt.url.clone_from(url);
                config.validate()?;
            }
            runtime()?.block_on(async {
                let token = CancellationToken::new();
                tokio::spawn(storefleet_support::shutdown::on_signals(token.clone()));
                let running = storefleet_controller::server::start(config, token).await?;
                running.wait().await;
                anyhow::Ok(())
            })
        }
        #[cfg(feature = "sim")]
        Cmd::Demo {
            stores,
            http,
            mqtt,
            ref state_dir,
        } => demo(stores, http, mqtt, state_dir.clone()),
        #[cfg(feature = "sim")]
        Cmd::Simulate {
            stores,
            ref state_dir,
        } => {
            let client = admin_client(&cli)?;
            let dir = state_dir.clone();
            runtime()?.block_on(async {
                let token = CancellationToken::new();
                tokio::spawn(storefleet_support::shutdown::on_signals(token.clone()));
                let tracker = tokio_util::task::TaskTracker::new();
                let opts = storefleet_controller::sim::Options::new(stores, dir, client);
                storefleet_controller::sim::start(opts, token.clone(), &tracker).await?;
                println!("{stores} simulated stores running; Ctrl-C stops them");
                token.cancelled().await;
                tracker.close();
                let _ =
                    tokio::time::timeout(std::time::Duration::from_secs(10), tracker.wait()).await;
                anyhow::Ok(())
            })
        }
        Cmd::SetPassword { ref user, role } => {
            let config = load(&cli)?;
            let password = cli::users::stdin_line(&format!("new password for {user}"))?;
            let db = storefleet_controller::db::open(&config.database_path(), true)?;
            let user = user.clone();
            runtime()?.block_on(db.write(move |c| {
                storefleet_controller::auth::set_user(
                    c,
                    &user,
                    &password,
                    role,
                    storefleet_protocol::now_ms(),
                )
            }))?;
            println!("password set");
            Ok(())
        }
        Cmd::Admin(cli::AdminCmd::Release {
            cmd: cli::release::ReleaseCmd::Keygen { ref out },
        }) => {
            // Made where releases are built: no controller needed.
            print!("{}", cli::release::keygen(out)?);
            Ok(())
        }
        Cmd::Admin(_) => {
            let client = admin_client(&cli)?;
            let Cmd::Admin(cmd) = cli.command else {
                unreachable!("matched above")
            };
            let out = runtime()?.block_on(cli::run(&client, cmd, cli.json))?;
            print!("{out}");
            Ok(())
        }
    }
}

/// The API client for admin commands: `--url`/`--token`, else the config's URL and the
/// state directory's token file.
fn admin_client(cli: &Cli) -> Result<Client, CliError> {
    let config = if cli.url.is_none() || cli.token.is_none() || cli.tls_pin.is_none() {
        load_quiet(&cli.config)
    } else {
        None
    };
    let base = cli
        .url
        .clone()
        .or_else(|| config.as_ref().map(Config::public_url))
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let token = match cli.token.clone() {
        Some(t) => t,
        None => {
            let path = config
                .as_ref()
                .map_or_else(|| PathBuf::from("admin-token"), Config::admin_token_path);
            std::fs::read_to_string(&path)
                .map(|t| t.trim().to_owned())
                .map_err(|e| CliError::NoToken(format!("{}: {e}", path.display())))?
        }
    };
    let mut trust = match &cli.tls_pin {
        Some(pin) => http::Trust::pinned(pin).map_err(|e| CliError::Http(e.into()))?,
        // On the controller's machine: the certificate it serves.
        None => http::Trust {
            pin: config
                .as_ref()
                .filter(|c| c.http.tls)
                .and_then(|c| http::Pin::of_pem_file(&c.tls_cert_path()).ok()),
            ca_file: PathBuf::new(),
        },
    };
    if let Some(ca) = &cli.ca_file {
        trust.ca_file.clone_from(ca);
    }
    Ok(Client { base, token, trust })
}

/// The config if it loads (admin commands work without one, given --url and --token).
fn load_quiet(path: &std::path::Path) -> Option<Config> {
    config::load(&config::source(path)).ok()
}

/// Reads a new password from the first line of stdin (no echo control: pipe it in or type it).
#[cfg(feature = "sim")]
fn demo(
    stores: usize,
    http: std::net::SocketAddr,
    mqtt: Option<std::net::SocketAddr>,
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
        let tracker = tokio_util::task::TaskTracker::new();
        let url = format!("http://{}", running.http);
        // The demo's own API token: from this start, or from the state kept by an earlier run.
        let api_token = match &running.first_login {
            Some(f) => f.api_token.clone(),
            None => std::fs::read_to_string(running.state.config.admin_token_path())?.trim().to_owned(),
        };
        let password = match &running.first_login {
            Some(f) => f.password.clone(),
            None => std::fs::read_to_string(running.state.config.controller.state_dir.join("admin-password"))?.trim().to_owned(),
        };
        println!("Starting {stores} simulated stores...");
        let opts = storefleet_controller::sim::Options::new(stores, dir.join("agents"), Client::new(url.clone(), api_token));
        storefleet_controller::sim::start(opts, token.clone(), &tracker).await?;
        println!("\nStorefleet demo is running.\n  web UI:  {url}/\n  login:   admin / {password}\n  API:     {url}/api/v1/openapi.json\n  broker:  {}\n  state:   {}\nPress Ctrl-C to stop.", running.mqtt_url, dir.display());
        token.cancelled().await;
        tracker.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), tracker.wait()).await;
        running.wait().await;
        anyhow::Ok(())
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}
