//! `[upload] max_bytes_per_sec`: the real agent holds its telemetry to the cap (a metered
//! backup line), while an event goes at once.

use std::time::{Duration, Instant};

use storefleet_testkit::broker::BrokerProcess;
use storefleet_testkit::sink::Sink;

use crate::common::{agent_home, keys, points_body, post_json, wait_online};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_keeps_to_the_bandwidth_cap_and_events_do_not_wait() {
    const CAP: u64 = 4000;
    let broker = BrokerProcess::start();
    // Uncompressed, and at most 100 points a message, so that many messages queue.
    let home = agent_home(
        broker.addr,
        &format!("[upload]\ntelemetry_delay_secs = 0\nmax_bytes_per_sec = {CAP}\n"),
    );
    // The fixture's own [sync] table takes the batch settings.
    let cfg = std::fs::read_to_string(home.config_path()).unwrap();
    std::fs::write(
        home.config_path(),
        cfg.replacen(
            "[sync]\n",
            "[sync]\ncompress = false\nmax_batch_points = 100\n",
            1,
        ),
    )
    .unwrap();
    let sink = Sink::start(broker.addr, keys(&home)).await;
    let mut agent = home.spawn();
    wait_online(&home, &sink).await;

    let t0 = storefleet_protocol::now_ms();
    let pts: Vec<(i64, f64)> = (0..1000).map(|i| (t0 + i, i as f64)).collect();
    let body = points_body("meter-1", "energy_kwh", &pts);
    let start = Instant::now();
    assert_eq!(
        post_json(home.ingest, "/v1/telemetry", &body)
            .await
            .unwrap()
            .0,
        200
    );
    // Well into the queue, an event: it must not wait for the readings ahead of it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ev = serde_json::json!([{"id": "ev-cap-1", "ts": t0, "code": "store.door_open",
        "severity": "warning", "message": "back door open"}]);
    let sent_at = Instant::now();
    assert_eq!(
        post_json(home.ingest, "/v1/events", &ev).await.unwrap().0,
        200
    );
    let event_fast = sink
        .wait(Duration::from_secs(3), |s| {
            s.events.iter().any(|e| e.id == "ev-cap-1")
        })
        .await;
    let event_took = sent_at.elapsed();
    let all = sink
        .wait(Duration::from_secs(120), |s| s.point_count() >= 1000)
        .await;
    let took = start.elapsed().as_secs_f64();
    let bytes = sink.with(|s| s.telemetry_bytes);
    agent.terminate();
    assert!(all, "not every point arrived: {}", home.log());
    assert!(
        event_fast,
        "the event waited {event_took:?} behind the readings"
    );
    // One second of burst, then the cap: never faster.
    let floor = (bytes as f64 - CAP as f64) / CAP as f64;
    assert!(bytes > 5 * CAP, "too few bytes to tell: {bytes}");
    assert!(
        took >= floor * 0.95,
        "{bytes} bytes in {took:.1} s: faster than {CAP} bytes/s (at least {floor:.1} s)"
    );
}
