//! Fan-out of one fleet task to many agents: the real controller (in this process: HTTP
//! API, task engine, ingest, SQLite) and a real broker (the embedded one, or Mosquitto with
//! `STOREFLEET_TEST_MQTT`), against simulated agents at the protocol level: one MQTT
//! connection subscribed to every agent's command topic that verifies each command with
//! the controller's key, as an agent does, and answers it with a result signed by that
//! agent's own key. (Ten thousand real agent processes do not fit on one machine; the
//! controller's side is the same either way.)
//!
//! Reported: the time from `POST /api/v1/tasks` until every agent has received its signed
//! command, and until every result is recorded (the task completed).
//!
//! ```sh
//! cargo bench -p storefleet-controller --bench tasks                  # 10,000 agents, embedded broker
//! BENCH_AGENTS=2000 cargo bench -p storefleet-controller --bench tasks
//! mosquitto -c deploy/mosquitto.conf &                                # (as root, or edit the listener)
//! STOREFLEET_TEST_MQTT=127.0.0.1:1883 cargo bench -p storefleet-controller --bench tasks
//! ```
//!
//! With Mosquitto's default limits (1000 queued messages per client) the burst of results
//! overflows the controller's queue and the broker drops what does not fit: the bench then
//! stops with the number recorded. `deploy/mosquitto.conf` sets limits for a fleet.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use storefleet_controller::client::Client;
use storefleet_protocol::message::{CommandResult, CommandStatus};
use storefleet_protocol::verify::Pinned;
use storefleet_protocol::{
    now_ms, Direction, Envelope, Kind, Message, SigningKey, Topic, Verifier, CONTROLLER_ID,
};
use support::env_u64;
use tokio_util::sync::CancellationToken;

const REGIONS: [&str; 8] = [
    "north", "south", "east", "west", "alps", "coast", "city", "rural",
];

fn main() {
    let n = env_u64("BENCH_AGENTS", 10_000) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let (config, broker) = support::controller_config(dir.path(), "tasks");
        let token = CancellationToken::new();
        let running = storefleet_controller::server::start(config, token.clone())
            .await
            .unwrap();
        let state = running.state.clone();
        let client = Client::new(format!("http://{}", running.http), running.first_login.as_ref().unwrap().api_token.clone());

        // Stores and agents, registered as enrollment does, online.
        let t = Instant::now();
        let keys: Arc<HashMap<String, SigningKey>> = Arc::new(
            (0..n)
                .map(|i| (format!("a-bench-{i:05}"), SigningKey::generate().unwrap()))
                .collect(),
        );
        let gateways: Vec<support::Gateway> = keys
            .iter()
            .map(|(id, k)| support::Gateway {
                id: id.clone(),
                key: k.public_key(),
                store: format!("S{}", &id[8..]),
            })
            .collect();
        support::register(&state, &gateways, &REGIONS, Vec::new()).await;
        eprintln!("{n} stores and agents registered in {:.2?}", t.elapsed());

        // The simulated agents: connections of up to 200 agents each, every agent
        // subscribed to its own command topic (as brokers bound per-client queues, e.g.
        // Mosquitto's max_queued_messages, one connection must not carry the whole fleet).
        let (got_tx, mut got_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut ids: Vec<String> = keys.keys().cloned().collect();
        ids.sort();
        let mut subscribed = Vec::new();
        for (c, chunk) in ids.chunks(200).enumerate() {
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            subscribed.push(ready_rx);
            let o = support::bench_mqtt(&state.config, broker, &format!("agents-{c}"));
            tokio::spawn(simulated_agents(o, chunk.to_vec(), keys.clone(), running.public_key, got_tx.clone(), ready_tx));
        }
        for r in subscribed {
            r.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;

        let t0 = Instant::now();
        let task = client
            .call("POST", "/api/v1/tasks", Some(&json!({
                "action": {"type": "routine", "name": "till-check"},
                "select": {"all": true},
                "plan": {"target_timeout_ms": 600_000}
            })))
            .await
            .unwrap();
        let created = t0.elapsed();
        let id = task["id"].as_str().unwrap().to_owned();
        assert_eq!(task["total"], n);
        let mut seen = HashSet::new();
        while seen.len() < n {
            match tokio::time::timeout(Duration::from_secs(120), got_rx.recv()).await {
                Ok(Some(a)) => {
                    seen.insert(a);
                }
                _ => panic!("only {} of {n} agents received their command", seen.len()),
            }
        }
        let all_sent = t0.elapsed();
        eprintln!("every agent had its signed command after {all_sent:.2?}");
        let all_recorded = loop {
            let t = client.call("GET", &format!("/api/v1/tasks/{id}"), None).await.unwrap();
            if t["phase"] == "completed" {
                assert_eq!(t["counts"]["succeeded"], n, "{t}");
                break t0.elapsed();
            }
            assert!(t0.elapsed() < Duration::from_secs(300), "not done after 300 s: {}", t["counts"]);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        println!(
            "fan-out of one task to {n} agents: created (targets resolved) in {created:.2?}; every agent had its signed command after {all_sent:.2?}; every result recorded after {all_recorded:.2?}"
        );
        token.cancel();
        running.wait().await;
    });
}

/// One connection serving `ids`: verifies each command as an agent does and answers it
/// with a result signed by that agent's key.
async fn simulated_agents(
    mut o: MqttOptions,
    ids: Vec<String>,
    keys: Arc<HashMap<String, SigningKey>>,
    controller_key: storefleet_protocol::PublicKey,
    got: tokio::sync::mpsc::UnboundedSender<String>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    o.set_max_packet_size(1 << 20, 1 << 20)
        .set_inflight(100)
        .set_keep_alive(Duration::from_secs(60));
    let (client, mut ev) = AsyncClient::new(o, 1000);
    let filters = ids
        .iter()
        .map(|a| rumqttc::SubscribeFilter::new(Topic::agent_downlink_filter(a), QoS::AtLeastOnce));
    client.subscribe_many(filters).await.unwrap();
    let mut ready = Some(ready);
    let mut verifier = Verifier::new(Pinned {
        sender: CONTROLLER_ID.into(),
        key: controller_key,
    });
    let mut seq = 0u64;
    loop {
        let Ok(event) = ev.poll().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let p = match event {
            Event::Incoming(Packet::SubAck(_)) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
                continue;
            }
            Event::Incoming(Packet::Publish(p)) => p,
            _ => continue,
        };
        let env = match verifier.verify(&p.topic, &p.payload, now_ms()) {
            Ok(e) => e,
            Err(e) => panic!("a command failed verification: {e}"),
        };
        let (Some(agent), Message::Command(cmd)) = (env.to.clone(), env.message) else {
            continue;
        };
        let _ = got.send(agent.clone());
        seq += 1;
        let result = Message::CommandResult(CommandResult {
            command_id: cmd.id,
            status: CommandStatus::Ok,
            message: "ok".into(),
            data: json!({"outcome": "already_fine"}),
            finished_at: now_ms(),
        });
        let frame = Envelope::new(&agent, seq, now_ms(), result)
            .seal(&keys[&agent])
            .unwrap();
        let topic = Topic::format(&agent, Direction::Up, Kind::CommandResult);
        client
            .publish(topic, QoS::AtLeastOnce, false, frame)
            .await
            .unwrap();
    }
}
