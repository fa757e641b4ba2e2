//! Reading the configuration: defaults, main file, drop-ins, environment.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::Config;

/// Prefix of environment variables that override config keys:
/// `STOREFLEET_AGENT__<SECTION>__<KEY>`, e.g. `STOREFLEET_AGENT__CONTROLLER__MQTT_URL`.
pub const ENV_PREFIX: &str = "STOREFLEET_AGENT__";

/// Errors from loading the configuration. Each names where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not valid TOML.
    #[error("{path}: not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key has a value of the wrong type or an unknown name.
    #[error("{origin}: key `{key}`: {message}")]
    Invalid {
        /// The file or environment variable the value came from.
        origin: String,
        /// Dotted key path.
        key: String,
        /// What was expected.
        message: String,
    },
    /// The values are well-typed but do not make sense together.
    #[error("invalid configuration: key `{key}`: {message}")]
    Validation {
        /// Dotted key path.
        key: String,
        /// What was expected.
        message: String,
    },
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The main file; `None` for defaults only.
    pub file: Option<PathBuf>,
    /// The drop-in directory (`agent.d` beside the main file by default).
    pub dropin_dir: Option<PathBuf>,
    /// Environment variables to apply (name, value).
    pub env: Vec<(String, String)>,
}

impl ConfigSource {
    /// The main file at `path`, its `agent.d/` drop-ins, and this process's environment.
    pub fn from_file(path: &Path) -> ConfigSource {
        ConfigSource {
            file: Some(path.to_owned()),
            dropin_dir: Some(path.parent().unwrap_or(Path::new(".")).join("agent.d")),
            env: std::env::vars()
                .filter(|(k, _)| k.starts_with(ENV_PREFIX))
                .collect(),
        }
    }
}

/// Loads and validates the configuration.
pub fn load(src: &ConfigSource) -> Result<Config, ConfigError> {
    let mut files = Vec::new();
    if let Some(f) = &src.file {
        files.push(f.clone());
    }
    if let Some(dir) = &src.dropin_dir {
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut dropins: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect();
                dropins.sort();
                files.extend(dropins);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ConfigError::Read {
                    path: dir.clone(),
                    source,
                })
            }
        }
    }

    let mut merged = Table::new();
    for path in &files {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: path.clone(),
                message: e.to_string().trim().to_owned(),
            })?;
        // Check the file on its own first, so that a bad value is reported with its file.
        typed(&table, &path.display().to_string())?;
        merge(&mut merged, table);
    }

    for (name, raw) in &src.env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            return Err(ConfigError::Invalid {
                origin: format!("environment variable {name}"),
                key: rest.to_lowercase(),
                message: format!("expected {ENV_PREFIX}<SECTION>__<KEY>"),
            });
        };
        let (section, key) = (section.to_lowercase(), key.to_lowercase());
        let mut one = Table::new();
        let mut inner = Table::new();
        inner.insert(key, env_value(raw));
        one.insert(section, Value::Table(inner));
        typed(&one, &format!("environment variable {name}"))?;
        merge(&mut merged, one);
    }

    let config = typed(&merged, "configuration")?;
    config.validate()?;
    Ok(config)
}

/// An environment value as TOML: numbers, booleans and arrays keep their type, anything
/// else is a string.
fn env_value(raw: &str) -> Value {
    format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_owned()))
}

fn typed(table: &Table, origin: &str) -> Result<Config, ConfigError> {
    let de = Value::Table(table.clone());
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::Invalid {
            origin: origin.to_owned(),
            key: if key == "." {
                "(top level)".into()
            } else {
                key
            },
            message: e.into_inner().to_string(),
        }
    })
}

/// Merges `over` into `base`: tables merge key by key, the `devices` array appends (so that
/// drop-ins can add devices), other values replace.
fn merge(base: &mut Table, over: Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (Some(Value::Array(b)), Value::Array(o)) if k == "devices" => b.extend(o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn env_values_keep_their_types() {
        assert_eq!(env_value("42"), Value::Integer(42));
        assert_eq!(env_value("true"), Value::Boolean(true));
        assert_eq!(env_value("mqtt://h:1"), Value::String("mqtt://h:1".into()));
    }

    #[test]
    fn merge_appends_devices_and_replaces_scalars() {
        let mut a: Table = "[sync]\ninflight = 4\n[[devices]]\nid = \"a\""
            .parse()
            .unwrap();
        let b: Table = "[sync]\ninflight = 8\n[[devices]]\nid = \"b\""
            .parse()
            .unwrap();
        merge(&mut a, b);
        assert_eq!(a["sync"]["inflight"].as_integer(), Some(8));
        assert_eq!(a["devices"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn parse_errors_are_reported_by_serde_path() {
        let t: Table = "[buffer]\nmax_bytes = \"lots\"".parse().unwrap();
        let e = typed(&t, "f.toml").unwrap_err().to_string();
        assert!(
            e.contains("f.toml") && e.contains("buffer.max_bytes"),
            "{e}"
        );
        let _ = Config::deserialize(Value::Table(Table::new())).unwrap();
    }
}
