//! Regression: ingest acknowledged each QoS 1 message when its batch committed, or at once
//! when it was refused, so PUBACKs left out of order and the broker dropped the controller's
//! connection (44 times in two minutes at 1,000 stores), redelivering work each time. Here
//! 300 simulated stores send while a stranger mixes junk QoS 1 messages in; the ingest
//! connection must stay up and every store keep reporting.

use std::time::Duration;

use rumqttc::{AsyncClient, QoS};
use storefleet_sim as sim;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::{eventually, within};

fn counter(state: &storefleet_controller::state::AppState, name: &str) -> u64 {
    let mut text = String::new();
    state.stats.render(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_keeps_its_connection_with_hundreds_of_stores_and_junk_in_between() {
    const STORES: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let config = crate::common::in_process_config(dir.path());
    let token = CancellationToken::new();
    let running = storefleet_controller::server::start(config, token.clone())
        .await
        .unwrap();
    let client = crate::common::client_of(&running);
    let tracker = TaskTracker::new();
    let opts = sim::Options::new(STORES, dir.path().join("agents"), client.clone());
    sim::start(opts, token.clone(), &tracker).await.unwrap();
    eventually(240, "every simulated store online", || async {
        let a = client.call("GET", "/api/v1/agents", None).await.ok()?;
        let online = a.as_array()?.iter().filter(|a| a["online"] == true).count();
        (online == STORES).then_some(())
    })
    .await;
    let state = &running.state;
    let drops_before = counter(state, "storefleet_controller_ingest_disconnects_total");
    let stored_before = state.stats.stored_total();

    // An enrolled gateway gone bad publishes junk at QoS 1 among the stores' traffic for
    // 20 s: the broker lets it in (its key is registered), ingest refuses every message.
    let mqtt: std::net::SocketAddr = running
        .mqtt_url
        .trim_start_matches("mqtt://")
        .parse()
        .unwrap();
    let rogue = storefleet_protocol::SigningKey::generate().unwrap();
    state
        .registry
        .insert("rogue-gw", rogue.public_key(), "S0001");
    let (junk, mut ev) = AsyncClient::new(crate::common::agent_mqtt(mqtt, "rogue-gw", &rogue), 64);
    tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    let mut sent = 0u64;
    for i in 0..400u32 {
        let topic = format!("sf/v1/S{:04}-gw/up/telemetry", 1 + i % 50);
        if junk
            .publish(
                topic,
                QoS::AtLeastOnce,
                false,
                format!("junk {i}").into_bytes(),
            )
            .await
            .is_ok()
        {
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let drops = counter(state, "storefleet_controller_ingest_disconnects_total") - drops_before;
    assert_eq!(drops, 0, "ingest lost its broker connection {drops} times");
    assert!(state.stats.connected());
    // Every junk message is refused once ingest has worked through the stores' traffic
    // queued before it (a loaded machine or a remote database may take a while).
    let rejected = || {
        let mut text = String::new();
        state.stats.render(&mut text);
        text.lines()
            .filter(|l| l.starts_with("storefleet_controller_ingest_messages_rejected_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    let refused = within(90, || async { (rejected() >= sent).then_some(()) }).await;
    assert!(refused.is_some(), "junk refused: {} of {sent}", rejected());
    let stored = state.stats.stored_total() - stored_before;
    assert!(
        stored >= STORES as u64,
        "the stores kept reporting meanwhile: {stored} messages"
    );
    token.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(20), tracker.wait()).await;
    running.wait().await;
}
