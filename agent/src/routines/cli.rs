//! `storefleet-agent routine list|run|check`: talks to the running agent over its loopback
//! endpoint with the local token, or checks files offline against the config.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use storefleet_protocol::routine::RunRecord;
use storefleet_support::http::{send, Request};

use super::local_api::token_path;
use super::shell::Prepared;
use super::Routine;
use crate::config::Config;

/// A routine subcommand.
pub enum Command {
    /// List the loaded routines.
    List,
    /// Run one now.
    Run {
        /// Its name.
        name: String,
        /// Outside its window too.
        ignore_window: bool,
        /// Print JSON.
        json: bool,
    },
    /// Check files.
    Check {
        /// The files.
        files: Vec<PathBuf>,
    },
}

async fn call(
    config: &Config,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<serde_json::Value> {
    let token_file = token_path(&config.agent.state_dir);
    let token = std::fs::read_to_string(&token_file).with_context(|| {
        format!(
            "cannot read {} (is the agent running, and may this user read its state?)",
            token_file.display()
        )
    })?;
    let url = format!("http://{}{path}", config.ingest.listen);
    let r = send(
        Request {
            method,
            url: &url,
            headers: vec![("authorization", format!("Bearer {}", token.trim()))],
            body: body.map(|b| ("application/json", b)),
        },
        Duration::from_secs(4 * 3600),
    )
    .await
    .with_context(|| format!("agent at {} (is it running?)", config.ingest.listen))?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    if r.status != 200 {
        bail!(
            "{}",
            v.get("error")
                .and_then(|e| e.as_str())
                .map_or_else(|| format!("HTTP {}", r.status), str::to_owned)
        );
    }
    Ok(v)
}

/// The record as people read it.
pub fn describe(r: &RunRecord) -> String {
    let mut s = format!(
        "{} v{} ({}): {} in {} ms",
        r.routine,
        r.version,
        r.id,
        r.outcome.as_str(),
        r.finished_at - r.started_at
    );
    if !r.reason.is_empty() {
        let _ = write!(s, " - {}", r.reason);
    }
    for st in &r.steps {
        let _ = write!(
            s,
            "\n  {} {:?} {:?} x{} {} ms: {}",
            if st.ok { "ok  " } else { "FAIL" },
            st.kind,
            st.name,
            st.attempts,
            st.duration_ms,
            st.output.replace('\n', "\n      ")
        );
    }
    s
}

/// Runs the subcommand; a run that ends failed or escalated is an error (exit code 1).
pub async fn run(cmd: Command, config: &Config) -> anyhow::Result<()> {
    match cmd {
        Command::List => {
            let v = call(config, "GET", "/v1/routines", None).await?;
            let list = v["routines"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no routines loaded (put routine files in routines.d/)");
            }
            for r in list {
                println!(
                    "{:<28} v{:<3} {}",
                    r["name"].as_str().unwrap_or_default(),
                    r["version"],
                    r["description"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Run {
            name,
            ignore_window,
            json,
        } => {
            let body = serde_json::to_vec(&serde_json::json!({ "ignore_window": ignore_window }))?;
            let v = call(
                config,
                "POST",
                &format!("/v1/routines/{name}/run"),
                Some(body),
            )
            .await?;
            let record: RunRecord = serde_json::from_value(v.clone())
                .context("the agent's answer is not a run record")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{}", describe(&record));
            }
            if record.outcome.needs_a_person() {
                bail!("routine {} {}", record.routine, record.outcome.as_str());
            }
            Ok(())
        }
        Command::Check { files } => {
            let mut bad = 0;
            for f in &files {
                let origin = f.display().to_string();
                let r = std::fs::read_to_string(f)
                    .map_err(|e| format!("{origin}: {e}"))
                    .and_then(|t| Routine::parse(&t, &origin).map_err(|e| e.to_string()))
                    .and_then(|r| Prepared::new(r, &config.routines));
                match r {
                    Ok(p) => println!(
                        "{origin}: ok ({} v{}, {} steps)",
                        p.routine.name,
                        p.routine.version,
                        p.routine.steps.len()
                    ),
                    Err(e) => {
                        bad += 1;
                        println!("{e}");
                    }
                }
            }
            if bad > 0 {
                bail!("{bad} of {} routine file(s) refused", files.len());
            }
            Ok(())
        }
    }
}
