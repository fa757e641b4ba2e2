//! Broken configuration stops the agent at start with a message naming the file (or
//! variable), the key and what was expected; the shipped defaults load.

use std::process::Command;

use crate::common::{agent_home, AgentHome, AGENT};

fn run_with(home: &AgentHome, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(AGENT)
        .args([
            "--config",
            home.config_path().to_str().unwrap(),
            "check-config",
        ])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn home() -> AgentHome {
    agent_home(([127, 0, 0, 1], 1).into(), "")
}

#[test]
fn a_wrong_type_names_the_file_and_key() {
    let h = home();
    let text = std::fs::read_to_string(h.config_path()).unwrap();
    std::fs::write(
        h.config_path(),
        format!("{text}\n[buffer]\nmax_bytes = \"big\"\n"),
    )
    .unwrap();
    let (ok, err) = run_with(&h, &[]);
    assert!(!ok);
    assert!(
        err.contains("agent.toml") && err.contains("buffer.max_bytes") && err.contains("expected"),
        "{err}"
    );
}

#[test]
fn a_syntax_error_names_the_file_and_line() {
    let h = home();
    std::fs::write(h.config_path(), "[agent\nid = 1\n").unwrap();
    let (ok, err) = run_with(&h, &[]);
    assert!(!ok);
    assert!(
        err.contains("agent.toml") && err.contains("not valid TOML") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn a_bad_drop_in_is_named_and_validation_names_the_key() {
    let h = home();
    let d = h.dir.path().join("agent.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("50-typo.toml"), "[sync]\ninflihgt = 3\n").unwrap();
    let (ok, err) = run_with(&h, &[]);
    assert!(!ok);
    assert!(
        err.contains("50-typo.toml") && err.contains("inflihgt"),
        "{err}"
    );
    std::fs::write(d.join("50-typo.toml"), "[sync]\ninflight = 0\n").unwrap();
    let (ok, err) = run_with(&h, &[]);
    assert!(!ok);
    assert!(
        err.contains("sync.inflight") && err.contains("1 to 1024"),
        "{err}"
    );
}

#[test]
fn a_bad_environment_override_names_the_variable() {
    let h = home();
    let (ok, err) = run_with(&h, &[("STOREFLEET_AGENT__BUFFER__MAX_BYTES", "lots")]);
    assert!(!ok);
    assert!(
        err.contains("STOREFLEET_AGENT__BUFFER__MAX_BYTES") && err.contains("max_bytes"),
        "{err}"
    );
    let (ok, err) = run_with(&h, &[("STOREFLEET_AGENT__SYNC__INFLIGHT", "64")]);
    assert!(ok, "{err}");
}

#[test]
fn a_missing_config_file_is_named() {
    let out = Command::new(AGENT)
        .args(["--config", "/nonexistent/agent.toml", "run"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/agent.toml"), "{err}");
}

#[test]
fn generated_config_is_exactly_the_defaults() {
    let out = Command::new(AGENT).arg("generate-config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let parsed: storefleet_agent::config::Config = toml::from_str(&text).unwrap();
    assert_eq!(parsed, storefleet_agent::config::Config::default());
}
