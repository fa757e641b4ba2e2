//! Reading a layered configuration: compiled-in defaults (the type's `Default`), the main
//! file, sorted `*.toml` drop-ins, then environment variables `<PREFIX><SECTION>__<KEY>`.
//!
//! Each layer is type-checked on its own before it is merged, so that a bad value is reported
//! with the file or variable it came from. Validation of the merged result (values that do
//! not make sense together) belongs to the caller, which reports it as
//! [`ConfigError::Validation`].

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::{Table, Value};

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

impl ConfigError {
    /// A validation error for `key`.
    pub fn validation(key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Validation {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The main file; `None` for defaults only.
    pub file: Option<PathBuf>,
    /// The drop-in directory, e.g. `agent.d` beside the main file.
    pub dropin_dir: Option<PathBuf>,
    /// Environment variables to apply (name, value).
    pub env: Vec<(String, String)>,
}

impl ConfigSource {
    /// The main file at `path`, the drop-ins in `dropin_name` beside it, and the variables of
    /// this process's environment that start with `env_prefix`.
    pub fn from_file(path: &Path, dropin_name: &str, env_prefix: &str) -> ConfigSource {
        ConfigSource {
            file: Some(path.to_owned()),
            dropin_dir: Some(path.parent().unwrap_or(Path::new(".")).join(dropin_name)),
            env: std::env::vars()
                .filter(|(k, _)| k.starts_with(env_prefix))
                .collect(),
        }
    }
}

/// How a configuration type is layered.
#[derive(Debug, Clone, Copy)]
pub struct Layering<'a> {
    /// Prefix of environment variables: `<PREFIX><SECTION>__<KEY>` sets `section.key`.
    pub env_prefix: &'a str,
    /// Top-level arrays that drop-ins extend instead of replacing (e.g. `devices`).
    pub appended: &'a [&'a str],
}

/// A configuration type loaded in layers, with its own validation.
pub trait Layered: DeserializeOwned {
    /// How it is layered.
    const LAYERING: Layering<'static>;
    /// The drop-in directory's name, beside the main file.
    const DROPIN_DIR: &'static str;

    /// Checks values that must make sense together.
    fn check(&self) -> Result<(), ConfigError>;

    /// The main file at `path`, its drop-ins, and this process's environment.
    fn source(path: &Path) -> ConfigSource {
        ConfigSource::from_file(path, Self::DROPIN_DIR, Self::LAYERING.env_prefix)
    }

    /// Loads the layers of `src` and checks the result.
    fn load_checked(src: &ConfigSource) -> Result<Self, ConfigError> {
        let config: Self = load(src, Self::LAYERING)?;
        config.check()?;
        Ok(config)
    }
}

/// Loads the layers of `src` into `T` (not validated: that is the caller's).
pub fn load<T: DeserializeOwned>(
    src: &ConfigSource,
    layering: Layering<'_>,
) -> Result<T, ConfigError> {
    let env_prefix = layering.env_prefix;
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
        typed::<T>(&table, &path.display().to_string())?;
        merge(&mut merged, table, layering.appended);
    }

    for (name, raw) in &src.env {
        let Some(rest) = name.strip_prefix(env_prefix) else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            return Err(ConfigError::Invalid {
                origin: format!("environment variable {name}"),
                key: rest.to_lowercase(),
                message: format!("expected {env_prefix}<SECTION>__<KEY>"),
            });
        };
        let (section, key) = (section.to_lowercase(), key.to_lowercase());
        let mut one = Table::new();
        let mut inner = Table::new();
        inner.insert(key, env_value(raw));
        one.insert(section, Value::Table(inner));
        typed::<T>(&one, &format!("environment variable {name}"))?;
        merge(&mut merged, one, layering.appended);
    }

    typed(&merged, "configuration")
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

fn typed<T: DeserializeOwned>(table: &Table, origin: &str) -> Result<T, ConfigError> {
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

/// Merges `over` into `base`: tables merge key by key, the `appended` top-level arrays
/// extend (so that drop-ins can add entries), other values replace.
fn merge(base: &mut Table, over: Table, appended: &[&str]) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o, &[]),
            (Some(Value::Array(b)), Value::Array(o)) if appended.contains(&k.as_str()) => {
                b.extend(o);
            }
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
        merge(&mut a, b, &["devices"]);
        assert_eq!(a["sync"]["inflight"].as_integer(), Some(8));
        assert_eq!(a["devices"].as_array().unwrap().len(), 2);
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        buffer: BufferPart,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct BufferPart {
        max_bytes: u64,
    }

    #[test]
    fn parse_errors_are_reported_by_serde_path() {
        let t: Table = "[buffer]\nmax_bytes = \"lots\"".parse().unwrap();
        let e = typed::<Sample>(&t, "f.toml").unwrap_err().to_string();
        assert!(
            e.contains("f.toml") && e.contains("buffer.max_bytes"),
            "{e}"
        );
        let s: Sample = typed(&Table::new(), "x").unwrap();
        assert_eq!(s.buffer.max_bytes, 0);
    }

    #[test]
    fn environment_overrides_files_and_names_the_variable() {
        let src = ConfigSource {
            file: None,
            dropin_dir: None,
            env: vec![("T__BUFFER__MAX_BYTES".into(), "7".into())],
        };
        let l = Layering {
            env_prefix: "T__",
            appended: &[],
        };
        let s: Sample = load(&src, l).unwrap();
        assert_eq!(s.buffer.max_bytes, 7);
        let bad = ConfigSource {
            env: vec![("T__BUFFER__MAX_BYTES".into(), "many".into())],
            ..src
        };
        let e = load::<Sample>(&bad, l).unwrap_err().to_string();
        assert!(
            e.contains("T__BUFFER__MAX_BYTES") && e.contains("buffer.max_bytes"),
            "{e}"
        );
    }
}
