//! Ingest: the controller's MQTT subscriptions to every agent's uplink subtree.
//!
//! Two connections ([`lane`]): one for telemetry, one for events and the other few, urgent
//! kinds, so that a backlog of readings never holds up a fault. Each lane has a task that
//! owns its rumqttc event loop and only forwards publishes (bounded channel; a full channel
//! slows the socket, which is the broker's cue to hold messages), and a processor that
//! verifies each frame against the agent's registered key (frame, topic routing,
//! sender, signature, expiry), drops and counts what fails, and hands the rest to the
//! database in batches. A publish is acknowledged to the broker only after its batch has
//! committed, so a controller that dies mid-batch gets the messages again and stores each
//! `(agent, seq)` once ([`write`]). A batch that cannot be written (full disk, say) is
//! retried with backoff and never acknowledged until stored; one that collided with a batch of
//! another replica (a deadlock) runs again at once; a message whose data the database
//! refuses is held apart, and the rest of its batch stored ([`settle`], [`held`]).
//! Acknowledgements go out in the
//! order the messages arrived ([`ack`]), as MQTT wants, even when batches commit out of order.

pub mod ack;
pub mod behind;
pub mod held;
pub mod lane;
pub mod rollups;
pub mod settle;
pub mod stats;
pub mod write;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rumqttc::{AsyncClient, Publish};
use storefleet_protocol::topic::Topic;
use storefleet_protocol::verify::KeyLookup;
use storefleet_protocol::{now_ms, Message, PublicKey, Verifier};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use ack::AckOrder;
pub use lane::Lane;
pub use stats::Stats;
use write::Verified;

use crate::cluster::Wake;
use crate::db::Db;

/// Messages in one database batch, at most.
pub const BATCH_MESSAGES: usize = 2000;
/// Points in one database batch, at most.
pub const BATCH_POINTS: usize = 50_000;
/// How long a batch may wait to fill.
pub const BATCH_WAIT: Duration = Duration::from_millis(50);
/// A batch is also written when nothing arrives for this long: a broker that holds back
/// further messages until these are acknowledged (Mosquitto sends 20 unacknowledged by
/// default) would otherwise be answered only every [`BATCH_WAIT`].
pub const BATCH_IDLE: Duration = Duration::from_millis(3);
/// Batches being written at once by a lane, at most.
const WRITES_IN_FLIGHT: usize = 4;
/// Largest MQTT packet accepted.
const MAX_PACKET: usize = 5 * 1024 * 1024;

/// Registered agent keys with each agent's store; shared with enrollment, which adds to it.
#[derive(Debug, Clone, Default)]
pub struct Registry(Arc<RwLock<HashMap<String, (PublicKey, String)>>>);

impl Registry {
    /// A registry holding `keys`.
    pub fn new(keys: HashMap<String, (PublicKey, String)>) -> Registry {
        Registry(Arc::new(RwLock::new(keys)))
    }

    /// Adds or replaces an agent's key.
    pub fn insert(&self, agent: &str, key: PublicKey, store: &str) {
        if let Ok(mut m) = self.0.write() {
            m.insert(agent.to_owned(), (key, store.to_owned()));
        }
    }

    /// Replaces every key (read again from the database).
    pub fn replace(&self, keys: HashMap<String, (PublicKey, String)>) {
        if let Ok(mut m) = self.0.write() {
            *m = keys;
        }
    }

    /// Forgets an agent (revoked).
    pub fn remove(&self, agent: &str) {
        if let Ok(mut m) = self.0.write() {
            m.remove(agent);
        }
    }

    /// The store of a registered agent.
    pub fn store_of(&self, agent: &str) -> Option<String> {
        self.0.read().ok()?.get(agent).map(|(_, s)| s.clone())
    }
}

impl KeyLookup for Registry {
    fn key_for(&self, sender: &str) -> Option<PublicKey> {
        self.0.read().ok()?.get(sender).map(|(k, _)| *k)
    }
}

/// Where and as whom ingest connects.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Broker URL.
    pub url: String,
    /// MQTT client id (a persistent session) of the telemetry lane; the events lane's is
    /// made from it ([`Lane::client_id`]).
    pub client_id: String,
    /// The shared subscription group through which replicas split the agents' messages;
    /// `None` subscribes directly.
    pub share_group: Option<String>,
    /// How to log in to the broker.
    pub login: crate::broker_auth::BrokerLogin,
}

/// Why ingest cannot start.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The broker URL is unusable.
    #[error("mqtt url: {0}")]
    Url(String),
}

/// What ingest shares with the rest of the controller.
#[derive(Clone)]
pub struct Shared {
    /// The database.
    pub db: Db,
    /// Registered agents.
    pub registry: Registry,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Wakes the task engine when a stored batch carried a report on a fleet task's
    /// target, and the ticket engine when a batch was stored (it evaluates the rules).
    pub signals: crate::cluster::Signals,
    /// Series ids known to the batches ([`write::SeriesIds`]).
    pub series_ids: Arc<write::SeriesIds>,
}

/// Starts ingest's lanes on `tracker`; they run until `token` is cancelled.
pub fn start(
    settings: &Settings,
    shared: &Shared,
    token: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), IngestError> {
    let (events_tx, events_rx) = watch::channel(false);
    for lane in Lane::ALL {
        let id = lane.client_id(&settings.client_id);
        let mut o = crate::broker_auth::mqtt_options(&settings.url, &id, &settings.login)
            .map_err(IngestError::Url)?;
        o.set_keep_alive(Duration::from_secs(30))
            .set_clean_session(false)
            .set_manual_acks(true)
            .set_inflight(1000)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET);
        let (client, eventloop) = AsyncClient::new(o, 10_000);
        let (tx, rx) = mpsc::channel(10_000);
        let connection = lane::Connection {
            lane,
            eventloop,
            client: client.clone(),
            group: settings.share_group.clone(),
            tx,
            stats: shared.stats.clone(),
            events_subscribed: (events_tx.clone(), events_rx.clone()),
        };
        tracker.spawn(connection.run(token.clone()));
        tracker.spawn(process(
            rx,
            client,
            shared.clone(),
            token.clone(),
            tracker.clone(),
        ));
    }
    tracker.spawn(behind::report(
        shared.db.clone(),
        shared.stats.clone(),
        settings.client_id.clone(),
        token.clone(),
    ));
    Ok(())
}

/// Sends acknowledgements in arrival order ([`ack`]), through one task.
#[derive(Clone)]
struct Acker {
    order: Arc<std::sync::Mutex<AckOrder<Publish>>>,
    tx: mpsc::UnboundedSender<Publish>,
}

impl Acker {
    fn start(client: AsyncClient, tracker: &TaskTracker) -> Acker {
        let (tx, mut rx) = mpsc::unbounded_channel::<Publish>();
        tracker.spawn(async move {
            while let Some(p) = rx.recv().await {
                let _ = client.ack(&p).await;
            }
        });
        Acker {
            order: Arc::default(),
            tx,
        }
    }

    fn line(&self) -> std::sync::MutexGuard<'_, AckOrder<Publish>> {
        self.order
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// In line, acknowledged once [`Acker::due`] is called with the ticket.
    fn arrive(&self, p: Publish) -> u64 {
        self.line().arrive(p)
    }

    /// In line and due (rejected: it will never be acceptable).
    fn arrive_due(&self, p: Publish) {
        let mut line = self.line();
        // Sent under the lock, so that releases from different tasks keep their order.
        for p in line.arrive_due(p) {
            let _ = self.tx.send(p);
        }
    }

    /// Stored: due.
    fn due(&self, tickets: &[u64]) {
        let mut line = self.line();
        for p in line.due(tickets) {
            let _ = self.tx.send(p);
        }
    }
}

struct Pending {
    msgs: Vec<Verified>,
    acks: Vec<u64>,
    points: usize,
}

impl Pending {
    fn new() -> Pending {
        Pending {
            msgs: Vec::new(),
            acks: Vec::new(),
            points: 0,
        }
    }

    fn full(&self) -> bool {
        self.acks.len() >= BATCH_MESSAGES || self.points >= BATCH_POINTS
    }
}

async fn process(
    mut rx: mpsc::Receiver<Publish>,
    client: AsyncClient,
    shared: Shared,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    let registry = &shared.registry;
    let stats = &shared.stats;
    let verifier = Verifier::new(registry.clone());
    let writes = Arc::new(Semaphore::new(WRITES_IN_FLIGHT));
    let mut logged: HashSet<(String, &'static str)> = HashSet::new();
    let acker = Acker::start(client, &tracker);
    let mut pending = Pending::new();
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut batch_end: Option<tokio::time::Instant> = None;
    loop {
        let next = tokio::select! {
            biased;
            () = token.cancelled() => None,
            p = rx.recv() => p,
            () = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                flush(&mut pending, &acker, &shared, &writes, &tracker).await;
                deadline = None;
                batch_end = None;
                continue;
            }
        };
        let Some(p) = next else { break };
        match verifier.authenticate(&p.topic, &p.payload, now_ms()) {
            Ok(env) => {
                let Some(store) = registry.store_of(&env.from) else {
                    // Revoked between lookup and here.
                    stats.rejected("unknown_sender");
                    acker.arrive_due(p);
                    continue;
                };
                if let Message::Telemetry(t) = &env.message {
                    pending.points += t.point_count();
                }
                pending.msgs.push(Verified {
                    store,
                    envelope: env,
                });
                pending.acks.push(acker.arrive(p));
                let now = tokio::time::Instant::now();
                batch_end.get_or_insert(now + BATCH_WAIT);
                deadline = batch_end.map(|end| end.min(now + BATCH_IDLE));
                if pending.full() {
                    flush(&mut pending, &acker, &shared, &writes, &tracker).await;
                    deadline = None;
                    batch_end = None;
                }
            }
            Err(e) => {
                let label = e.label();
                stats.rejected(label);
                let sender = Topic::parse(&p.topic)
                    .map(|t| t.agent_id)
                    .unwrap_or_default();
                if logged.len() < 10_000 && logged.insert((sender.clone(), label)) {
                    tracing::warn!(topic = %p.topic, reason = label, error = %e, "Dropped a message that failed verification (logged once per sender and reason)");
                }
                // Acknowledge (in turn): it was received, and it will never be acceptable.
                acker.arrive_due(p);
            }
        }
    }
    // Store what is pending before stopping; its acks go out if the connection is still up.
    flush(&mut pending, &acker, &shared, &writes, &tracker).await;
    let _ = writes.acquire_many(WRITES_IN_FLIGHT as u32).await;
}

async fn flush(
    pending: &mut Pending,
    acker: &Acker,
    shared: &Shared,
    writes: &Arc<Semaphore>,
    tracker: &TaskTracker,
) {
    if pending.acks.is_empty() {
        return;
    }
    let batch = std::mem::replace(pending, Pending::new());
    let Ok(permit) = writes.clone().acquire_owned().await else {
        return;
    };
    let (acker, db, stats, signals, ids) = (
        acker.clone(),
        shared.db.clone(),
        shared.stats.clone(),
        shared.signals.clone(),
        shared.series_ids.clone(),
    );
    // The stores whose messages the rules look at once: all but telemetry.
    let look: BTreeSet<String> = batch
        .msgs
        .iter()
        .filter(|m| !matches!(m.envelope.message, Message::Telemetry(_)))
        .map(|m| m.store.clone())
        .collect();
    tracker.spawn(async move {
        let Some(outcome) = settle::store(&db, &stats, &ids, batch.msgs).await else {
            return;
        };
        if outcome.task_reports > 0 {
            signals.wake(Wake::Tasks);
        }
        // Not for every batch: telemetry alone waits for the rules' next round, at most
        // `tickets.evaluate_interval_ms`; the rest, the ticket engine reads for these
        // stores only.
        if outcome.wakes_rules() {
            signals.look_at(&look);
        }
        acker.due(&batch.acks);
        drop(permit);
    });
}
