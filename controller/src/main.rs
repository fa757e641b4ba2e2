//! `storefleet`: the controller (`serve`) and admin commands over the HTTP API. The demo and
//! the fleet simulator are `storefleet-sim`, never part of this binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use storefleet_controller::cli::{self, AdminCmd};
use storefleet_controller::config::{self, Config, DEFAULT_TOML};
use storefleet_support::http;
use tokio_util::sync::CancellationToken;

/// Storefleet controller and admin CLI.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    connect: cli::Connect,
    /// Admin commands: print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Run the controller.
    Serve {
        /// Use this external broker (mqtt://host:port) instead of the embedded one.
        #[arg(long)]
        mqtt_url: Option<String>,
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
    /// Copy this controller's SQLite database into an empty PostgreSQL database and verify
    /// the copy (rows and a checksum per table). Stop the controller first; afterwards set
    /// `[database] url` and start it again.
    MigrateDb {
        /// The PostgreSQL URL (postgres://user:password@host:5432/db), or @FILE to read it
        /// from a file (keeps the password out of the process list).
        #[arg(long)]
        to: String,
    },
    #[command(flatten)]
    Admin(AdminCmd),
}

fn parse_role(s: &str) -> Result<storefleet_controller::auth::Role, String> {
    storefleet_controller::auth::Role::parse(s)
        .ok_or_else(|| format!("{s:?}: expected viewer, engineer, dispatcher or admin"))
}

fn main() -> ExitCode {
    few_malloc_arenas();
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
    cli.connect.load()
}

/// glibc gives threads that allocate at the same time arenas of their own, up to eight per
/// core, and keeps what is freed in each. A replica's async and database threads then keep
/// much of its memory as freed pages. Tickets bench at 10,000 stores, one run each: 364
/// and 311 MB RSS for the two replicas with glibc's default, 214 and 72 MB with
/// `MALLOC_ARENA_MAX=2`, 258 and 240 MB with this call. Two arenas, unless the operator
/// set `MALLOC_ARENA_MAX`. The project's one `unsafe`: a
/// call into the C library that only sets a tuning value.
#[allow(unsafe_code)]
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only tunes the allocator; it is called first thing in main,
        // before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::GenerateConfig => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Cmd::CheckConfig => {
            let mut config = load(&cli)?;
            // Printed for people (and pasted into tickets): no database password.
            if !config.database.url.is_empty() {
                config.database.url = config.database_place();
            }
            print!("{}", toml::to_string_pretty(&config)?);
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
        Cmd::SetPassword { ref user, role } => {
            let config = load(&cli)?;
            let password = cli::users::stdin_line(&format!("new password for {user}"))?;
            let db = config.open_database()?;
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
        Cmd::MigrateDb { ref to } => {
            let config = load(&cli)?;
            anyhow::ensure!(
                config.database.url.is_empty(),
                "this controller already uses PostgreSQL ({}); migrate-db copies its SQLite database",
                config.database_place()
            );
            let url = match to.strip_prefix('@') {
                Some(file) => std::fs::read_to_string(file)
                    .map_err(|e| anyhow::anyhow!("{file}: {e}"))?
                    .trim()
                    .to_owned(),
                None => to.clone(),
            };
            let from = config.database_path();
            println!(
                "copying {} into {}",
                from.display(),
                storefleet_storage::postgres::place(&url)
            );
            let copied = storefleet_controller::db::copy::sqlite_to_postgres(
                &from,
                (&url, config.database_tls(&url)?),
                |t| {
                    println!(
                        "{:<28} {:>10} rows  checksum {}",
                        t.table, t.rows, t.checksum
                    );
                },
            )?;
            let rows: u64 = copied.iter().map(|t| t.rows).sum();
            println!(
                "done: {} tables, {rows} rows, each the same in both; now set [database] url and start the controller",
                copied.len()
            );
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
            let client = cli.connect.client()?;
            let Cmd::Admin(cmd) = cli.command else {
                unreachable!("matched above")
            };
            let out = runtime()?.block_on(cli::run(&client, cmd, cli.json))?;
            print!("{out}");
            Ok(())
        }
    }
}
