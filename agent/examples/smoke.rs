//! End-to-end smoke run of an agent binary, possibly built for another architecture and
//! run under an emulator:
//!
//! ```text
//! cargo run -p storefleet-agent --example smoke -- --agent PATH [--runner "qemu-aarch64 -L /usr/aarch64-linux-gnu"] [--arch aarch64]
//! ```
//!
//! Against Mosquitto when `STOREFLEET_TEST_MQTT` is set, else the embedded broker: the
//! agent comes online, a point and an event posted to its ingest endpoint arrive signed,
//! its inventory names the expected architecture, a signed ping is answered, and SIGTERM
//! ends it cleanly with an offline presence. Exits non-zero on the first failure.

use std::path::PathBuf;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use storefleet_protocol::message::{Command, CommandAction, CommandStatus, PresenceState};
use storefleet_protocol::{now_ms, Direction, Envelope, Kind, Message, Topic, CONTROLLER_ID};
use storefleet_testkit::agent::{keys, post_json, AgentHome};
use storefleet_testkit::sink::Sink;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        println!("smoke: ok   {what}");
        Ok(())
    } else {
        Err(format!("smoke: FAILED {what}"))
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    match smoke().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn smoke() -> Result<(), String> {
    let agent = PathBuf::from(
        arg("--agent").ok_or("usage: smoke --agent PATH [--runner CMD] [--arch ARCH]")?,
    );
    let runner: Vec<String> = arg("--runner")
        .map(|r| r.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let arch = arg("--arch").unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let mqtt = match storefleet_testkit::external_mqtt() {
        Some(a) => a,
        None => {
            let a = ([127, 0, 0, 1], storefleet_testkit::free_port()).into();
            storefleet_testkit::broker::start_in_process(a);
            a
        }
    };
    println!(
        "smoke: agent {} (runner {:?}) against {mqtt}",
        agent.display(),
        runner
    );
    let mut home = AgentHome::new(&agent, mqtt, "");
    home.runner = runner;
    let sink = Sink::start(mqtt, keys(&home)).await;
    let mut proc = home.spawn();
    let id = home.id.clone();
    let limit = Duration::from_secs(60);
    check(
        sink.wait(limit, |s| s.presence.contains_key(&id)).await,
        "agent online (signed presence)",
    )?;

    let t = now_ms();
    let body = serde_json::json!({"device": "printer-1", "series": [{"metric": "paper.level_pct", "points": [{"t": t, "v": 42.0}]}]});
    check(
        matches!(
            post_json(proc.ingest, "/v1/telemetry", &body).await,
            Ok((200, _))
        ),
        "telemetry accepted",
    )?;
    let ev = serde_json::json!({"code": "app.smoke", "severity": "info", "message": "hello"});
    check(
        matches!(
            post_json(proc.ingest, "/v1/events", &ev).await,
            Ok((200, _))
        ),
        "event accepted",
    )?;
    let key = ("printer-1".to_owned(), "paper.level_pct".to_owned());
    check(
        sink.wait(limit, |s| {
            s.series.get(&key).is_some_and(|v| {
                v.iter()
                    .any(|r| r.t == t && (r.v - 42.0).abs() < f64::EPSILON)
            })
        })
        .await,
        "telemetry delivered and verified",
    )?;
    check(
        sink.wait(limit, |s| s.events.iter().any(|e| e.code == "app.smoke"))
            .await,
        "event delivered and verified",
    )?;
    check(
        sink.wait(limit, |s| {
            s.inventory.get(&id).is_some_and(|i| i.gateway.arch == arch)
        })
        .await,
        &format!("inventory reports arch {arch}"),
    )?;

    let o = MqttOptions::new(
        format!("smoke-ctl-{}", std::process::id()),
        mqtt.ip().to_string(),
        mqtt.port(),
    );
    let (ctl, mut el) = AsyncClient::new(o, 16);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let cmd = Envelope::new(
        CONTROLLER_ID,
        1,
        now_ms(),
        Message::Command(Command {
            id: "smoke-ping".into(),
            action: CommandAction::Ping,
        }),
    )
    .to(&id)
    .expires(now_ms() + 60_000)
    .seal(&home.controller)
    .map_err(|e| e.to_string())?;
    ctl.publish(
        Topic::format(&id, Direction::Down, Kind::Command),
        QoS::AtLeastOnce,
        false,
        cmd,
    )
    .await
    .map_err(|e| e.to_string())?;
    check(
        sink.wait(limit, |s| {
            s.results
                .iter()
                .any(|r| r.command_id == "smoke-ping" && r.status == CommandStatus::Ok)
        })
        .await,
        "signed ping answered",
    )?;

    check(proc.terminate().success(), "clean exit on SIGTERM")?;
    check(
        sink.wait(limit, |s| {
            s.presence[&id]
                .last()
                .is_some_and(|p| p.state == PresenceState::Offline)
        })
        .await,
        "offline presence on shutdown",
    )?;
    println!("smoke: passed");
    Ok(())
}
