//! Reading the agent's configuration: defaults, main file, `agent.d/` drop-ins, environment.

use std::path::Path;

pub use storefleet_support::config::{ConfigError, ConfigSource};
use storefleet_support::config::{Layered, Layering};

use super::Config;

/// Prefix of environment variables that override config keys:
/// `STOREFLEET_AGENT__<SECTION>__<KEY>`, e.g. `STOREFLEET_AGENT__CONTROLLER__MQTT_URL`.
pub const ENV_PREFIX: &str = "STOREFLEET_AGENT__";

/// The drop-in directory's name, beside the main file.
pub const DROPIN_DIR: &str = "agent.d";

impl Layered for Config {
    /// `[[devices]]` in drop-ins add devices.
    const LAYERING: Layering<'static> = Layering {
        env_prefix: ENV_PREFIX,
        appended: &["devices"],
    };
    const DROPIN_DIR: &'static str = DROPIN_DIR;

    fn check(&self) -> Result<(), ConfigError> {
        self.validate()
    }
}

/// The main file at `path`, its `agent.d/` drop-ins, and this process's environment.
pub fn source(path: &Path) -> ConfigSource {
    Config::source(path)
}

/// Loads the configuration, sets up the devices of the catalog, and validates it.
pub fn load(src: &ConfigSource) -> Result<Config, ConfigError> {
    let mut config: Config = storefleet_support::config::load(src, Config::LAYERING)?;
    config.resolve_devices()?;
    config.validate()?;
    Ok(config)
}
