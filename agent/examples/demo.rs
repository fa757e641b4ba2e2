//! The agent on one machine with no setup: `cargo run -p storefleet-agent --example demo`.
//!
//! Starts the embedded MQTT broker, a verifying sink standing in for the controller (it
//! comes in Step 2), and the agent itself with a few devices to probe: a "receipt printer"
//! that goes down and comes back every 30 s, a "fridge sensor" read by an exec probe, and
//! the gateway's own metrics. Prints what arrives every 5 seconds; Ctrl-C stops it.

use std::time::Duration;

use storefleet_testkit::sink::Sink;
use tokio_util::sync::CancellationToken;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STOREFLEET_LOG")
                .unwrap_or_else(|_| "warn,storefleet_agent=info".into()),
        )
        .init();
    let mqtt: std::net::SocketAddr = match storefleet_testkit::external_mqtt() {
        Some(a) => a,
        None => {
            let a = ([127, 0, 0, 1], storefleet_testkit::free_port()).into();
            storefleet_testkit::broker::start_in_process(a);
            a
        }
    };
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state");
    let key = storefleet_agent::identity::load_or_create(&state.join("agent.key"))?;
    let agent_id = "gw-demo-s001";

    // A "printer" that answers on TCP, with its plug pulled for 10 s of every 30.
    let printer = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let printer_addr = printer.local_addr()?;
    tokio::spawn(flaky_printer(printer));
    let ingest = std::net::SocketAddr::from(([127, 0, 0, 1], storefleet_testkit::free_port()));
    let config = format!(
        r#"
[agent]
id = "{agent_id}"
store = "S001"
state_dir = "{state}"
health_interval_secs = 10

[controller]
mqtt_url = "mqtt://{mqtt}"

[ingest]
listen = "{ingest}"

[host]
interval_secs = 5

[[devices]]
id = "printer-1"
class = "receipt-printer"
vendor = "Epson"
model = "TM-T88VI"
interval_secs = 2
timeout_ms = 500
probe = {{ type = "tcp", address = "{printer_addr}" }}

[[devices]]
id = "fridge-1"
class = "fridge-sensor"
interval_secs = 5
probe = {{ type = "exec", command = ["sh", "-c", "echo temp_c $(( 3 + $(date +%s) % 3 ))"] }}
"#,
        state = state.display()
    );
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, config)?;

    let sink = Sink::start(
        mqtt,
        std::collections::HashMap::from([(agent_id.to_owned(), key.public_key())]),
    )
    .await;
    let token = CancellationToken::new();
    let agent = tokio::spawn(storefleet_agent::run(
        storefleet_agent::config::source(&cfg),
        token.clone(),
    ));
    println!("Storefleet agent demo");
    println!("  broker (embedded unless STOREFLEET_TEST_MQTT): mqtt://{mqtt}");
    println!("  agent {agent_id}, state in {}", state.display());
    println!("  push a reading:  curl -H 'content-type: application/json' -d '{{\"series\":[{{\"device\":\"pos-1\",\"metric\":\"sales\",\"points\":[{{\"v\":12.5}}]}}]}}' http://{ingest}/v1/telemetry");
    println!("  agent health:    curl http://{ingest}/metrics");
    println!("  Ctrl-C to stop\n");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        sink.with(|s| {
            let last_event = s.events.last().map_or(String::new(), |e| format!("; last event: {} {}", e.code, e.message));
            println!(
                "received {} points in {} series, {} events, inventory: {}, presence: {:?}{last_event}",
                s.point_count(),
                s.series.len(),
                s.events.len(),
                if s.inventory.contains_key(agent_id) { "yes" } else { "not yet" },
                s.presence.get(agent_id).and_then(|p| p.last()).map(|p| p.state),
            );
        });
    }
    token.cancel();
    agent.await??;
    Ok(())
}

async fn flaky_printer(first: tokio::net::TcpListener) {
    let addr = first.local_addr().expect("printer address");
    let mut listener = Some(first);
    loop {
        if let Some(l) = &listener {
            let serve = async {
                loop {
                    let _ = l.accept().await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(20), serve).await;
        }
        drop(listener.take()); // unplugged
        tokio::time::sleep(Duration::from_secs(10)).await;
        listener = tokio::net::TcpListener::bind(addr).await.ok();
    }
}
