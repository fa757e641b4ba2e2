//! Sync with the broker: one task owns the MQTT event loop, one feeds it from the buffer.
//!
//! - The **poll task** is the only caller of `EventLoop::poll`. It pairs packet ids with
//!   buffer seqs ([`window::Window`]), tells the buffer what the broker acknowledged,
//!   forwards downlink publishes to the command handler over a bounded channel, and on a
//!   lost connection forgets everything in flight and waits (exponential backoff with
//!   jitter) before the event loop reconnects. Before each connect it sets a fresh signed
//!   `offline` presence as the last will.
//! - The **publisher task** asks the buffer for the next messages (retransmissions first,
//!   then new ones; live before backlog) whenever the window has room, and hands them to
//!   the client with QoS 1. After each (re)connect it first sends the retained `online`
//!   presence.
//!
//! Both share one small lock ([`Link`]) that is never held across an await. A record is
//! deleted from the buffer only when the PUBACK for its message arrives. The session is
//! persistent (`clean_session = false`, client id = agent id), so commands queued by the
//! broker while the store was offline arrive on reconnect; they are acknowledged only
//! after they have been handled.

pub mod backoff;
pub mod throttle;
pub mod tls;
pub mod window;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, Publish, QoS, Transport,
};
use storefleet_protocol::message::{Presence, PresenceState};
use storefleet_protocol::{
    envelope::MAX_FRAME_LEN, now_ms, Direction, Envelope, Kind, Message, SigningKey, Topic,
};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::buffer::Buffer;
use crate::config::validate::MqttUrl;
use crate::config::Config;
use crate::health::Health;
use backoff::Backoff;
use window::Window;

/// The agent version reported in presence and inventory.
pub const AGENT_VERSION: &str = match option_env!("STOREFLEET_AGENT_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// Errors setting up the connection.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The broker URL is not usable.
    #[error("controller.mqtt_url: {0}")]
    Url(String),
    /// TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// State shared by the poll and publisher tasks.
#[derive(Debug)]
pub struct Link {
    window: Window,
    connected: bool,
    epoch: u64,
    presence_seq: u64,
}

/// What both tasks need.
#[derive(Clone)]
pub struct SyncContext {
    /// This agent's id.
    pub agent_id: String,
    /// This agent's key.
    pub key: Arc<SigningKey>,
    /// The buffer.
    pub buffer: Buffer,
    /// Counters.
    pub health: Arc<Health>,
    /// When the process started, ms.
    pub started_at: i64,
    /// A fixed password at the broker (`controller.mqtt_password`); empty: signed tokens.
    pub mqtt_password: String,
    /// Most bytes a second to the broker (`[upload] max_bytes_per_sec`); 0: no cap. A
    /// reloaded config stores the new value here.
    pub max_bytes_per_sec: Arc<std::sync::atomic::AtomicU64>,
}

impl SyncContext {
    fn presence(&self, seq: u64, state: PresenceState, reason: Option<&str>) -> Vec<u8> {
        let msg = Message::Presence(Presence {
            state,
            agent_version: AGENT_VERSION.into(),
            started_at: self.started_at,
            reason: reason.map(str::to_owned),
        });
        Envelope::new(&self.agent_id, seq, now_ms(), msg)
            .seal(&self.key)
            .expect("presence always serialises")
    }

    fn topic(&self, kind: Kind) -> String {
        Topic::format(&self.agent_id, Direction::Up, kind)
    }
}

/// MQTT options from the config: persistent session, manual acks, TLS if `mqtts://`.
pub fn mqtt_options(config: &Config, agent_id: &str) -> Result<MqttOptions, SyncError> {
    let url = MqttUrl::parse(&config.controller.mqtt_url).map_err(SyncError::Url)?;
    let mut o = MqttOptions::new(agent_id, url.host, url.port);
    o.set_keep_alive(Duration::from_secs(config.controller.keep_alive_secs))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_inflight(config.sync.inflight)
        .set_max_packet_size(MAX_FRAME_LEN, MAX_FRAME_LEN)
        .set_request_channel_capacity(usize::from(config.sync.inflight) + 64);
    if url.tls {
        let tls = tls::client_config(&config.controller)?;
        o.set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::new(tls)),
        ));
    }
    Ok(o)
}

/// Starts the poll and publisher tasks on `tracker`. Returns the client (for acks) and
/// the stream of downlink publishes.
pub fn start(
    options: MqttOptions,
    inflight: u16,
    backoff: Backoff,
    ctx: SyncContext,
    token: CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) -> (AsyncClient, mpsc::Receiver<Publish>) {
    let cap = options.request_channel_capacity();
    let (client, eventloop) = AsyncClient::new(options, cap);
    let link = Arc::new(Mutex::new(Link {
        window: Window::new(usize::from(inflight)),
        connected: false,
        epoch: 0,
        presence_seq: 0,
    }));
    let changed = Arc::new(Notify::new());
    let (down_tx, down_rx) = mpsc::channel(64);
    tracker.spawn(poll_task(
        eventloop,
        client.clone(),
        link.clone(),
        changed.clone(),
        backoff,
        ctx.clone(),
        down_tx,
        token.clone(),
    ));
    tracker.spawn(publisher_task(client.clone(), link, changed, ctx, token));
    (client, down_rx)
}

#[allow(clippy::too_many_arguments)]
async fn poll_task(
    mut eventloop: EventLoop,
    client: AsyncClient,
    link: Arc<Mutex<Link>>,
    changed: Arc<Notify>,
    mut backoff: Backoff,
    ctx: SyncContext,
    down: mpsc::Sender<Publish>,
    token: CancellationToken,
) {
    let mut need_will = true;
    let mut ever_connected = false;
    let mut connected_at: Option<Instant> = None;
    let mut failures = 0u64;
    loop {
        if need_will {
            match ctx.buffer.reserve_seqs(2).await {
                Ok(seq) => {
                    let will =
                        ctx.presence(seq + 1, PresenceState::Offline, Some("connection lost"));
                    eventloop.mqtt_options.set_last_will(LastWill::new(
                        ctx.topic(Kind::Presence),
                        will,
                        QoS::AtLeastOnce,
                        true,
                    ));
                    link.lock().expect("link lock").presence_seq = seq;
                    // The password an external broker gave at enrollment, or a fresh token
                    // for each connection attempt (it lives minutes).
                    let password = if ctx.mqtt_password.is_empty() {
                        storefleet_protocol::broker::agent_password(
                            &ctx.agent_id,
                            now_ms(),
                            &ctx.key,
                        )
                    } else {
                        ctx.mqtt_password.clone()
                    };
                    eventloop
                        .mqtt_options
                        .set_credentials(ctx.agent_id.clone(), password);
                    need_will = false;
                }
                Err(e) => {
                    tracing::error!(error = %e, "Cannot reserve presence sequence numbers");
                    if sleep_or_cancel(Duration::from_secs(1), &token).await {
                        return;
                    }
                    continue;
                }
            }
        }
        let event = tokio::select! {
            biased;
            () = token.cancelled() => break,
            ev = eventloop.poll() => ev,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if ever_connected {
                    Health::add(&ctx.health.reconnects, 1);
                }
                tracing::info!(
                    reconnect = ever_connected,
                    after_failures = failures,
                    "Connected to broker"
                );
                ever_connected = true;
                failures = 0;
                connected_at = Some(Instant::now());
                ctx.buffer.mark_backlog();
                let filter = Topic::agent_downlink_filter(&ctx.agent_id);
                if let Err(e) = client.try_subscribe(filter, QoS::AtLeastOnce) {
                    tracing::warn!(error = %e, "Cannot queue downlink subscription");
                }
                {
                    let mut l = link.lock().expect("link lock");
                    l.connected = true;
                    l.epoch += 1;
                }
                Health::set(&ctx.health.connected, 1);
                changed.notify_one();
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                link.lock().expect("link lock").window.on_publish(pkid);
            }
            Ok(Event::Outgoing(Outgoing::AwaitAck(pkid))) => {
                link.lock().expect("link lock").window.on_await_ack(pkid);
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                let seq = link.lock().expect("link lock").window.on_puback(ack.pkid);
                if let Some(seq) = seq {
                    ctx.buffer.ack(vec![seq]);
                }
                changed.notify_one();
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                // Bounded: if the command handler is busy, stop reading from the broker.
                if down.send(p).await.is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                {
                    let mut l = link.lock().expect("link lock");
                    // Under the lock, so the publisher cannot slip a publish in between:
                    // drop whatever the client still holds; the outbox has it all.
                    eventloop.clean();
                    eventloop.pending.clear();
                    eventloop.state.events.clear();
                    eventloop.state.collision = None;
                    l.window.reset();
                    l.connected = false;
                }
                Health::set(&ctx.health.connected, 0);
                Health::add(&ctx.health.connect_failures, 1);
                if connected_at
                    .take()
                    .is_some_and(|t| t.elapsed() > Duration::from_secs(10))
                {
                    backoff.reset();
                }
                failures += 1;
                let delay = backoff.next_delay();
                if failures == 1 || failures % 20 == 0 {
                    tracing::warn!(error = %e, failures, retry_in_ms = delay.as_millis() as u64, "Broker connection lost or refused");
                } else {
                    tracing::debug!(error = %e, failures, "Broker still unreachable");
                }
                need_will = true;
                if sleep_or_cancel(delay, &token).await {
                    break;
                }
            }
        }
    }
    goodbye(&mut eventloop, &client, &link, &ctx).await;
}

/// On shutdown: a retained, signed `offline` presence, then a clean disconnect (which
/// also tells the broker not to send the last will).
async fn goodbye(
    eventloop: &mut EventLoop,
    client: &AsyncClient,
    link: &Mutex<Link>,
    ctx: &SyncContext,
) {
    let connected = link.lock().expect("link lock").connected;
    Health::set(&ctx.health.connected, 0);
    if !connected {
        return;
    }
    if let Ok(seq) = ctx.buffer.reserve_seqs(1).await {
        let bye = ctx.presence(seq, PresenceState::Offline, Some("shutdown"));
        let _ = client.try_publish(ctx.topic(Kind::Presence), QoS::AtLeastOnce, true, bye);
    }
    let _ = client.try_disconnect();
    let deadline = tokio::time::sleep(Duration::from_secs(3));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            ev = eventloop.poll() => match ev {
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some(seq) = link.lock().expect("link lock").window.on_puback(ack.pkid) {
                        ctx.buffer.ack(vec![seq]);
                    }
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => link.lock().expect("link lock").window.on_publish(pkid),
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    tracing::info!("Disconnected from broker");
}

async fn publisher_task(
    client: AsyncClient,
    link: Arc<Mutex<Link>>,
    changed: Arc<Notify>,
    ctx: SyncContext,
    token: CancellationToken,
) {
    let mut cursor = 0u64;
    let mut epoch_seen = 0u64;
    let ready = ctx.buffer.ready.clone();
    let mut rate = 0;
    let mut throttle = None;
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = ready.notified() => {}
            () = changed.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let now_rate = ctx
            .max_bytes_per_sec
            .load(std::sync::atomic::Ordering::Relaxed);
        if now_rate != rate {
            rate = now_rate;
            throttle = throttle::Throttle::new(rate);
        }
        loop {
            let (room, epoch, presence_seq) = {
                let l = link.lock().expect("link lock");
                if !l.connected {
                    break;
                }
                (l.window.room(), l.epoch, l.presence_seq)
            };
            if epoch != epoch_seen {
                // First thing on a new connection: the retained online presence. Then
                // everything unacknowledged, from the start of the outbox.
                let hello = ctx.presence(presence_seq, PresenceState::Online, None);
                if !publish(
                    &client,
                    &link,
                    epoch,
                    &ctx,
                    Kind::Presence,
                    true,
                    hello,
                    presence_seq,
                ) {
                    break;
                }
                epoch_seen = epoch;
                cursor = 0;
                continue;
            }
            if room == 0 {
                break;
            }
            // Under a cap, one message at a time, so that an event sealed meanwhile waits
            // for one reading's turn at most, not for a window of them.
            let room = if throttle.is_some() { 1 } else { room };
            let msgs = match ctx.buffer.next_messages(cursor, room).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(error = %e, "Cannot read the buffer to publish");
                    break;
                }
            };
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                if let Some(t) = throttle.as_mut() {
                    let must = !matches!(m.kind, Kind::Telemetry | Kind::Inventory);
                    let wait = t.wait_for(m.payload.len(), must);
                    if !wait.is_zero() {
                        tokio::select! {
                            () = token.cancelled() => return,
                            () = tokio::time::sleep(wait) => {}
                        }
                        // Counted now that its turn came.
                        t.wait_for(m.payload.len(), true);
                    }
                }
                if !publish(&client, &link, epoch, &ctx, m.kind, false, m.payload, m.seq) {
                    break;
                }
                cursor = m.seq;
            }
        }
    }
}

/// Hands one publish to the client and queues its seq in the window, atomically with
/// respect to the poll task's reset. `false` when the link changed or the client is full.
#[allow(clippy::too_many_arguments)]
fn publish(
    client: &AsyncClient,
    link: &Mutex<Link>,
    epoch: u64,
    ctx: &SyncContext,
    kind: Kind,
    retain: bool,
    payload: Vec<u8>,
    seq: u64,
) -> bool {
    let mut l = link.lock().expect("link lock");
    if !l.connected || l.epoch != epoch {
        return false;
    }
    match client.try_publish(ctx.topic(kind), QoS::AtLeastOnce, retain, payload) {
        Ok(()) => {
            l.window.queued(seq);
            Health::add(&ctx.health.messages_published, 1);
            true
        }
        Err(e) => {
            tracing::debug!(error = %e, "Client queue full; publishing later");
            false
        }
    }
}

/// Sleeps; `true` when cancelled first.
async fn sleep_or_cancel(d: Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        () = token.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}
