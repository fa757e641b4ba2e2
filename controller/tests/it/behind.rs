//! Late data is not missing data. Readings that waited in the broker (ingest behind: a
//! fleet's first minutes, a replica lost, a slow database) reach the controller old; judged
//! by the wall clock alone, their devices would all turn stale and bury the real faults.
//! Ingest measures how far behind it is, by the agents' signed time, and staleness waits
//! for it: on this replica's pages at once, and in the ticket engine and the fleet's tally
//! through the database.

use storefleet_controller::fleet::tally;
use storefleet_protocol::{now_ms, SigningKey};
use tokio_util::sync::CancellationToken;

use crate::common::eventually;
use crate::lanes::{controller, Gateway};

/// Whether the API shows the gateway's meter stale.
async fn meter_stale(client: &storefleet_controller::client::Client) -> bool {
    let v = client
        .call("GET", "/api/v1/devices?store=S0001", None)
        .await
        .unwrap();
    let meter = v
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"] == "meter")
        .unwrap_or_else(|| panic!("no meter in {v}"))
        .clone();
    meter["stale"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_that_waited_in_the_broker_do_not_make_their_device_stale() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::common::in_process_config(dir.path());
    // Stale after 3 intervals of 5 s without data.
    config.presence.default_interval_secs = 5;
    let token = CancellationToken::new();
    let key = SigningKey::generate().unwrap();
    let running = controller(config, &token, "gw-late", key.public_key()).await;
    let state = running.state.clone();
    let client = crate::common::client_of(&running);
    let gw = Gateway::on(&running, "gw-late", key);

    // A reading taken and signed 60 s ago that reaches ingest only now.
    let t = now_ms() - 60_000;
    gw.reading_signed_at(1, t, t).await;
    gw.all_acked(1).await;
    let behind = eventually(10, "ingest to measure it", || async {
        let b = state.stats.behind(now_ms());
        (b > 0).then_some(b)
    })
    .await;
    assert!((59_000..70_000).contains(&behind), "behind {behind} ms");
    assert!(
        !meter_stale(&client).await,
        "the meter's data is late, not missing"
    );
    // The ticket engine reads every replica's figure from the database.
    let recorded = eventually(15, "the figure in the database", || async {
        let b = state
            .db
            .read(|c| storefleet_controller::ingest::behind::fleet(c, now_ms()))
            .await
            .unwrap();
        (b > 0).then_some(b)
    })
    .await;
    assert!(
        (59_000..70_000).contains(&recorded),
        "recorded {recorded} ms"
    );
    // The engines' replica keeps the fleet's tally for the overview, judged the same way.
    let since = now_ms();
    let kept = eventually(15, "the engines to keep the fleet tally", || async {
        state
            .db
            .read(|c| tally::kept(c, now_ms()))
            .await
            .unwrap()
            .filter(|t| t.at >= since)
    })
    .await;
    assert_eq!((kept.stores, kept.devices), (1, 1), "{kept:?}");
    assert_eq!(kept.devices_stale, 0, "{kept:?}");

    // As old a reading, but signed just now: ingest is not behind, the meter's data is old.
    gw.reading_signed_at(2, t + 1, now_ms()).await;
    gw.all_acked(2).await;
    eventually(10, "the meter stale", || async {
        meter_stale(&client).await.then_some(())
    })
    .await;
    assert!(state.stats.behind(now_ms()) < 5_000);
    token.cancel();
    running.wait().await;
}
