//! Ingest's two connections to the broker ("lanes").
//!
//! Telemetry is most of the uplink by volume; events, presence, command results, routine
//! runs and inventories are few and urgent (a printer jam must become a ticket in seconds).
//! On one subscription they queued behind any telemetry backlog: at the broker, in the
//! forwarding channel and in the batches being written. So each lane has its own MQTT
//! session (client id), its own subscription, its own batches and its own acknowledgement
//! order, and a backlog of readings never delays a fault.
//!
//! Before lanes, the one session subscribed to the whole uplink. When that session comes
//! back, the telemetry lane drops the old filter, but only once the events lane has its
//! subscription, so that no event finds neither subscribed and is lost on the way.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Packet, Publish, QoS, SubscribeFilter, SubscribeReasonCode};
use storefleet_protocol::message::Kind;
use storefleet_protocol::topic::Topic;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::Stats;

/// One of ingest's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Telemetry batches.
    Telemetry,
    /// Every other uplink kind: events, presence, command results, routine runs,
    /// inventories.
    Events,
}

impl Lane {
    /// Both lanes.
    pub const ALL: [Lane; 2] = [Lane::Telemetry, Lane::Events];

    /// The lane's name (logs, client id suffix).
    pub fn name(self) -> &'static str {
        match self {
            Lane::Telemetry => "telemetry",
            Lane::Events => "events",
        }
    }

    /// The uplink kinds the lane subscribes to.
    pub fn kinds(self) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| *k != Kind::Command && (*k == Kind::Telemetry) == (self == Lane::Telemetry))
            .collect()
    }

    /// The lane's MQTT client id, given ingest's: the telemetry lane keeps ingest's own (and
    /// with it the session of a controller from before the lanes), the events lane adds
    /// `-events`.
    pub fn client_id(self, ingest: &str) -> String {
        match self {
            Lane::Telemetry => ingest.to_owned(),
            Lane::Events => format!("{ingest}-events"),
        }
    }

    /// The filters the lane subscribes to; through the shared subscription of `group`
    /// when replicas split the uplink.
    pub fn filters(self, group: Option<&str>) -> Vec<String> {
        self.kinds()
            .into_iter()
            .map(|k| shared(group, Topic::uplink_kind_filter(k)))
            .collect()
    }
}

fn shared(group: Option<&str>, filter: String) -> String {
    match group {
        Some(g) => format!("$share/{g}/{filter}"),
        None => filter,
    }
}

/// The filter of the one subscription from before the lanes.
fn old_filter(group: Option<&str>) -> String {
    shared(group, Topic::uplink_filter())
}

/// Keeps one lane connected and subscribed and forwards its publishes to `tx`.
pub(super) struct Connection {
    pub lane: Lane,
    pub eventloop: rumqttc::EventLoop,
    pub client: AsyncClient,
    pub group: Option<String>,
    pub tx: mpsc::Sender<Publish>,
    pub stats: Arc<Stats>,
    /// The events lane says here when it is subscribed; the telemetry lane waits for it
    /// before it drops the old whole-uplink filter.
    pub events_subscribed: (watch::Sender<bool>, watch::Receiver<bool>),
}

impl Connection {
    pub async fn run(mut self, token: CancellationToken) {
        let mut delay = Duration::from_millis(100);
        let filters = self.lane.filters(self.group.as_deref());
        let lane = self.lane.name();
        // This connection's subscription is in place; the old filter is dropped.
        let (mut subscribed, mut old_dropped) = (false, false);
        loop {
            // The telemetry lane drops the old filter once both lanes are subscribed.
            if self.lane == Lane::Telemetry
                && subscribed
                && !old_dropped
                && *self.events_subscribed.1.borrow_and_update()
            {
                old_dropped = drop_old_filter(&self.client, self.group.as_deref()).await;
            }
            let ev = tokio::select! {
                biased;
                () = token.cancelled() => break,
                Ok(()) = self.events_subscribed.1.changed(), if self.lane == Lane::Telemetry && !old_dropped => None,
                ev = self.eventloop.poll() => Some(ev),
            };
            let Some(ev) = ev else { continue };
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    delay = Duration::from_millis(100);
                    (subscribed, old_dropped) = (false, false);
                    self.stats.set_connected(self.lane, true);
                    tracing::info!(lane, filters = ?filters, "Ingest connected to the broker");
                    let subs = filters
                        .iter()
                        .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                    if let Err(e) = self.client.subscribe_many(subs).await {
                        tracing::error!(lane, error = %e, "Cannot subscribe to agent uplinks");
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) if !subscribed => {
                    let refused: Vec<&String> = filters
                        .iter()
                        .zip(&ack.return_codes)
                        .filter(|(_, c)| matches!(c, SubscribeReasonCode::Failure))
                        .map(|(f, _)| f)
                        .collect();
                    if refused.is_empty() {
                        subscribed = true;
                        if self.lane == Lane::Events {
                            let _ = self.events_subscribed.0.send(true);
                        }
                    } else {
                        tracing::error!(lane, refused = ?refused, "The broker refused ingest's subscriptions; may the controller's user read the uplink?");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if self.tx.send(p).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    subscribed = false;
                    if self.stats.set_connected(self.lane, false) {
                        tracing::warn!(lane, error = %e, "Ingest lost the broker; reconnecting");
                    }
                    tokio::select! {
                        () = token.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        let _ = self.client.try_disconnect();
    }
}

/// Drops the whole-uplink subscription of a session from before the lanes (nothing happens
/// when the session has none). True when the request went out.
async fn drop_old_filter(client: &AsyncClient, group: Option<&str>) -> bool {
    client.unsubscribe(old_filter(group)).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uplink_kind_has_exactly_one_lane() {
        for k in Kind::ALL {
            let lanes: Vec<Lane> = Lane::ALL
                .into_iter()
                .filter(|l| l.kinds().contains(&k))
                .collect();
            let want = usize::from(k != Kind::Command);
            assert_eq!(lanes.len(), want, "{k:?} is in {lanes:?}");
        }
        assert_eq!(Lane::Telemetry.kinds(), vec![Kind::Telemetry]);
    }

    #[test]
    fn filters_are_per_kind_and_shared_when_replicas_split_the_uplink() {
        assert_eq!(
            Lane::Telemetry.filters(None),
            vec!["sf/v1/+/up/telemetry".to_owned()]
        );
        let ev = Lane::Events.filters(Some("storefleet"));
        assert!(ev.contains(&"$share/storefleet/sf/v1/+/up/event".to_owned()));
        assert!(ev.contains(&"$share/storefleet/sf/v1/+/up/presence".to_owned()));
        assert!(!ev
            .iter()
            .any(|f| f.ends_with("/telemetry") || f.ends_with("/command")));
        assert_eq!(old_filter(Some("g")), "$share/g/sf/v1/+/up/+");
        assert_eq!(Lane::Events.client_id("sf-ctl-a"), "sf-ctl-a-events");
        assert_eq!(Lane::Telemetry.client_id("sf-ctl-a"), "sf-ctl-a");
    }
}
