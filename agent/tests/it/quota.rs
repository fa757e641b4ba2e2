//! A long outage with a small quota: the buffer stays within quota plus the stated slack,
//! every accepted event survives, and the downsample and eviction counters account for
//! every point.

use std::time::Duration;

use storefleet_agent::buffer::QUOTA_SLACK_BYTES;
use storefleet_testkit::broker::BrokerProcess;
use storefleet_testkit::proxy::Proxy;
use storefleet_testkit::sink::Sink;

use crate::common::{agent_home, buffer_bytes, keys, metric, post_json};

const MAX_BYTES: u64 = 4 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_stays_within_quota_and_keeps_every_event() {
    let broker = BrokerProcess::start();
    let proxy = Proxy::start(broker.addr).await;
    proxy.cut();
    let home = agent_home(
        proxy.addr,
        &format!("[buffer]\nmax_bytes = {MAX_BYTES}\nevents_max_bytes = 262144\ndurability = \"normal\"\n"),
    );
    let sink = Sink::start(broker.addr, keys(&home)).await;
    let mut agent = home.spawn();
    let addr = agent.ingest;
    let base = storefleet_protocol::now_ms() - 40 * 24 * 3600 * 1000;

    let mut max_seen = 0;
    for round in 0..40i64 {
        // Dense series fold into aggregates; two-hourly ones cannot and get evicted.
        let step = if round % 2 == 0 { 1000 } else { 7_200_000 };
        let series: Vec<serde_json::Value> = (0..10)
            .map(|m| {
                serde_json::json!({
                    "device": "fridge-1",
                    "metric": format!("temp{m}"),
                    "points": (0..1500).map(|i| serde_json::json!({"t": base + round * 20_000_000_000 + i * step, "v": i})).collect::<Vec<_>>(),
                })
            })
            .collect();
        let (code, text) = post_json(
            addr,
            "/v1/telemetry",
            &serde_json::json!({ "series": series }),
        )
        .await
        .unwrap();
        assert_eq!(code, 200, "{text}");
        max_seen = max_seen.max(buffer_bytes(&home.state_dir()));
    }

    // Events until their quota refuses one: 503 with a reason, never a silent drop.
    let mut accepted = Vec::new();
    let refusal = loop {
        let id = format!("ev-{}", accepted.len());
        let ev = serde_json::json!({"id": id, "code": "app.pos.notice", "severity": "info", "message": "x".repeat(900)});
        let (code, text) = post_json(addr, "/v1/events", &ev).await.unwrap();
        match code {
            200 => accepted.push(id),
            503 => break text,
            other => panic!("{other}: {text}"),
        }
        assert!(accepted.len() < 1000, "event quota never filled");
    };
    assert!(refusal.contains("event buffer full"), "{refusal}");
    assert!(accepted.len() > 100, "{}", accepted.len());
    max_seen = max_seen.max(buffer_bytes(&home.state_dir()));
    assert!(
        max_seen <= MAX_BYTES + QUOTA_SLACK_BYTES,
        "buffer grew to {max_seen} bytes, quota {MAX_BYTES} + slack {QUOTA_SLACK_BYTES}"
    );
    assert!(metric(addr, "storefleet_agent_events_refused_full_total").await >= 1);

    let ingested = metric(addr, "storefleet_agent_points_ingested_total").await;
    let down = metric(addr, "storefleet_agent_points_downsampled_total").await;
    let made = metric(addr, "storefleet_agent_aggregates_created_total").await;
    let evicted = metric(addr, "storefleet_agent_points_evicted_total").await;
    assert!(
        down > 0 && evicted > 0,
        "downsampled {down}, evicted {evicted}"
    );
    let expected = (ingested - down + made - evicted) as usize;

    proxy.restore();
    let n = accepted.len();
    let done = sink
        .wait(Duration::from_secs(90), |s| {
            s.events.len() >= n && s.point_count() >= expected
        })
        .await;
    assert!(
        done,
        "drain incomplete: {:?}",
        sink.with(|s| (s.events.len(), s.point_count(), expected))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    sink.with(|s| {
        let mut ids: Vec<&str> = s.events.iter().map(|e| e.id.as_str()).collect();
        ids.sort_unstable();
        let mut want: Vec<&str> = accepted.iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(ids, want, "every accepted event, once");
        assert_eq!(
            s.point_count(),
            expected,
            "points = ingested - downsampled + aggregates - evicted"
        );
    });
    // The gauge follows the acks within about a second of the buffer going idle.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut left = metric(addr, "storefleet_agent_buffer_points").await;
    while left != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = metric(addr, "storefleet_agent_buffer_points").await;
    }
    assert_eq!(
        left, 0,
        "points still buffered after every one was delivered"
    );
    assert!(agent.terminate().success());
}
