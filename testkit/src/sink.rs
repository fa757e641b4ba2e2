//! A verifying subscriber: what the controller's ingest does, reduced to what tests need.
//!
//! Subscribes to every agent's uplink, verifies each frame against the registered keys,
//! drops what fails (counting why), dedupes on `(agent, seq)` through the replay window,
//! and records what arrived in arrival order.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use storefleet_protocol::message::{CommandResult, Inventory, Presence};
use storefleet_protocol::routine::RunRecord;
use storefleet_protocol::{Envelope, Message, PublicKey, Topic, Verifier};
use tokio_util::sync::CancellationToken;

/// One received telemetry point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Received {
    /// Point time.
    pub t: i64,
    /// Value.
    pub v: f64,
    /// Whether its batch was marked backlog.
    pub backlog: bool,
    /// Whether it is a downsampled aggregate.
    pub aggregate: bool,
}

/// Everything the sink has seen.
#[derive(Debug, Default)]
pub struct SinkState {
    /// `(device, metric)` -> points in arrival order.
    pub series: HashMap<(String, String), Vec<Received>>,
    /// Events in arrival order.
    pub events: Vec<storefleet_protocol::message::Event>,
    /// Latest inventory per agent.
    pub inventory: HashMap<String, Inventory>,
    /// Presence messages per agent in arrival order.
    pub presence: HashMap<String, Vec<Presence>>,
    /// Command results in arrival order.
    pub results: Vec<CommandResult>,
    /// Routine run records in arrival order.
    pub runs: Vec<RunRecord>,
    /// Accepted messages.
    pub accepted: u64,
    /// Refused messages by reason (`replayed` is a duplicate delivery).
    pub refused: HashMap<&'static str, u64>,
    /// How many times the sink's subscription was acknowledged (one per connection).
    pub subscriptions: u64,
    /// Bytes of the accepted telemetry messages as they came (MQTT payloads).
    pub telemetry_bytes: u64,
    /// The same messages' bytes as uncompressed version-1 frames.
    pub telemetry_plain_bytes: u64,
}

impl SinkState {
    /// Total telemetry points (rows, aggregates counted once).
    pub fn point_count(&self) -> usize {
        self.series.values().map(Vec::len).sum()
    }

    fn record(&mut self, env: Envelope) {
        self.accepted += 1;
        match env.message {
            Message::Telemetry(b) => {
                for s in b.series {
                    let key = (s.device.unwrap_or_default(), s.metric);
                    let list = self.series.entry(key).or_default();
                    list.extend(s.points.iter().map(|p| Received {
                        t: p.t,
                        v: p.v,
                        backlog: b.backlog,
                        aggregate: p.agg.is_some(),
                    }));
                }
            }
            Message::Event(e) => self.events.push(e),
            Message::Inventory(i) => {
                self.inventory.insert(env.from, *i);
            }
            Message::Presence(p) => self.presence.entry(env.from).or_default().push(p),
            Message::CommandResult(r) => self.results.push(r),
            Message::RoutineRun(r) => self.runs.push(*r),
            Message::Command(_) => {}
        }
    }
}

/// A running sink.
pub struct Sink {
    /// What it saw.
    pub state: Arc<Mutex<SinkState>>,
    stop: CancellationToken,
}

impl Sink {
    /// Connects to `broker` and verifies against `keys` (agent id -> key).
    pub async fn start(broker: SocketAddr, keys: HashMap<String, PublicKey>) -> Sink {
        let state = Arc::new(Mutex::new(SinkState::default()));
        let stop = CancellationToken::new();
        let id = format!("sink-{:08x}", rand::random::<u32>());
        let mut o = MqttOptions::new(id, broker.ip().to_string(), broker.port());
        o.set_keep_alive(Duration::from_secs(5))
            .set_clean_session(true)
            .set_max_packet_size(8 * 1024 * 1024, 8 * 1024 * 1024);
        let (client, mut eventloop) = AsyncClient::new(o, 64);
        let (st, s) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            let mut verifier = Verifier::new(keys);
            loop {
                let ev = tokio::select! {
                    () = s.cancelled() => return,
                    ev = eventloop.poll() => ev,
                };
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.try_subscribe(Topic::uplink_filter(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        st.lock().unwrap().subscriptions += 1;
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let now = storefleet_protocol::now_ms();
                        let mut g = st.lock().unwrap();
                        match verifier.verify(&p.topic, &p.payload, now) {
                            Ok(env) => {
                                if matches!(env.message, Message::Telemetry(_)) {
                                    g.telemetry_bytes += p.payload.len() as u64;
                                    let plain = env.to_json().map_or(0, |j| j.len());
                                    g.telemetry_plain_bytes +=
                                        (storefleet_protocol::envelope::HEADER_LEN + plain) as u64;
                                }
                                g.record(env);
                            }
                            Err(e) => *g.refused.entry(e.label()).or_default() += 1,
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        let sink = Sink { state, stop };
        assert!(
            sink.wait(Duration::from_secs(10), |s| s.subscriptions >= 1)
                .await,
            "sink did not subscribe to {broker}"
        );
        sink
    }

    /// Waits until `done` holds, polling; `false` on timeout.
    pub async fn wait(&self, limit: Duration, done: impl Fn(&SinkState) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.state.lock().unwrap()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `f` on the state.
    pub fn with<T>(&self, f: impl FnOnce(&SinkState) -> T) -> T {
        f(&self.state.lock().unwrap())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
