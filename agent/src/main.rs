//! `storefleet-agent`: the store-gateway agent's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use storefleet_agent::config::{self, DEFAULT_TOML};
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
    /// Run the agent under its supervisor, which self-updates need: it starts the current
    /// version and puts the previous one back when an update fails its trial. The systemd
    /// unit runs this.
    Supervise,
    /// Print the default configuration, documented.
    GenerateConfig,
    /// Load and validate the configuration, then print it as it would be used.
    CheckConfig,
    /// Print the agent id and public key (making the key on first use).
    ShowId,
    /// Print the device catalog: the classes a `[[devices]]` table needs only an address
    /// for, how each is asked, and what it yields.
    Profiles,
    /// Sweep the store's subnets (those in `[discovery] subnets`, or the given ones inside
    /// them) for devices that answer SNMP, IPP or Modbus TCP, and say what each is.
    Discover {
        /// Subnets to sweep, as 192.168.1.0/24 (each inside a configured one); none: all
        /// configured ones.
        subnets: Vec<String>,
        /// Print the devices not configured yet as [[devices]] tables to add to the config.
        #[arg(long)]
        toml: bool,
    },
    /// Enroll with a token from `storefleet enroll-token create`: register this gateway's
    /// key with the controller, pin the controller's key, and write agent.d/50-enrollment.toml.
    Enroll {
        /// The enrollment token.
        token: String,
    },
    /// Maintenance routines: list them, run one now, or check routine files.
    #[command(subcommand)]
    Routine(RoutineCmd),
}

#[derive(Subcommand)]
enum RoutineCmd {
    /// The routines the running agent has loaded.
    List,
    /// Run a routine now through the running agent and print its record.
    Run {
        /// Routine name.
        name: String,
        /// Run even outside the routine's window.
        #[arg(long)]
        ignore_window: bool,
        /// Print the record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check routine files against this agent's config (parse, validate, allowed actions).
    Check {
        /// Routine files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

impl From<RoutineCmd> for storefleet_agent::routines::cli::Command {
    fn from(c: RoutineCmd) -> Self {
        use storefleet_agent::routines::cli::Command;
        match c {
            RoutineCmd::List => Command::List,
            RoutineCmd::Run {
                name,
                ignore_window,
                json,
            } => Command::Run {
                name,
                ignore_window,
                json,
            },
            RoutineCmd::Check { files } => Command::Check { files },
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    storefleet_support::shutdown::init_logging("info");
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            storefleet_support::shutdown::print_error("storefleet-agent", e.as_ref());
            ExitCode::FAILURE
        }
    }
}

/// Run as root (a technician's `sudo storefleet-agent enroll TOKEN` on a packaged gateway),
/// the key and the drop-in go to the user who owns the state directory, the service's.
fn give_to_state_owner(state_dir: &std::path::Path, files: &[PathBuf]) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let owner = std::fs::metadata(state_dir)?;
    if owner.uid() == 0 {
        return Ok(());
    }
    for f in files {
        std::os::unix::fs::chown(f, Some(owner.uid()), Some(owner.gid()))?;
    }
    Ok(())
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    let source = config::source(&cli.config);
    match cli.command.unwrap_or(Cmd::Run) {
        Cmd::GenerateConfig => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Cmd::Profiles => {
            print!("{}", config::describe_catalog());
            Ok(())
        }
        Cmd::CheckConfig => {
            let mut c = config::load(&source)?;
            // The effective config, with the one secret it may hold masked.
            if !c.controller.mqtt_password.is_empty() {
                "<set>".clone_into(&mut c.controller.mqtt_password);
            }
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
        Cmd::Discover { subnets, toml } => {
            let c = config::load(&source)?;
            let targets = c
                .discovery
                .targets(&subnets)
                .map_err(|e| anyhow::anyhow!(e))?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let found = rt.block_on(storefleet_agent::discover::sweep(
                &c.discovery,
                &c.snmp,
                &targets,
            ));
            use storefleet_agent::discover::write;
            if toml {
                print!("{}", write::devices_toml(&found, &c.devices, &c.discovery));
            } else {
                print!("{}", write::table(&found, &c.devices));
            }
            Ok(())
        }
        Cmd::Enroll { token } => {
            let c = config::load(&source)?;
            let dir = source
                .dropin_dir
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from(config::DROPIN_DIR));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let done = rt.block_on(storefleet_agent::enroll::enroll(&token, &c, &dir))?;
            give_to_state_owner(&c.agent.state_dir, &[c.key_path(), done.dropin.clone()])?;
            println!(
                "enrolled as {} in store {}; wrote {}\non a packaged gateway the service starts by itself now; elsewhere start `storefleet-agent supervise`",
                done.response.agent_id,
                done.response.store,
                done.dropin.display()
            );
            Ok(())
        }
        Cmd::Routine(cmd) => {
            let c = config::load(&source)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(storefleet_agent::routines::cli::run(cmd.into(), &c))
        }
        Cmd::Supervise => {
            let c = config::load(&source)?;
            let s = storefleet_agent::update::supervisor::Supervise {
                installed: std::env::current_exe()?,
                config: cli.config.clone(),
                state_dir: c.agent.state_dir.clone(),
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let code = rt.block_on(storefleet_agent::update::supervisor::run(&s));
            std::process::exit(code);
        }
        Cmd::Run => {
            if std::env::var_os(storefleet_agent::update::SUPERVISOR_ENV).is_some() {
                // A worker does not outlive its supervisor.
                let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let result = rt.block_on(async {
                let token = CancellationToken::new();
                tokio::spawn(storefleet_support::shutdown::on_signals(token.clone()));
                storefleet_agent::run(source, token).await
            });
            // A blocking sampler stuck in the kernel must not hold the exit.
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
            result?;
            if storefleet_agent::update::restart_requested() {
                std::process::exit(storefleet_agent::update::RESTART_CODE);
            }
            Ok(())
        }
    }
}
