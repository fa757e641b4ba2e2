//! A full disk: the buffer's disk fills before its quota (the quota is larger than the
//! disk). The request that hits it gets a 503 naming the cause; the agent keeps working,
//! reports `buffer.disk_full`, lets old metrics give way as under its quota (the counters
//! account for every point), keeps every event, and drains when the line is back.
//!
//! Needs root to mount a small tmpfs as the agent's state directory (the CI machine runs
//! as root); skipped, and says so, elsewhere.

use std::process::Command;
use std::time::Duration;

use storefleet_testkit::broker::BrokerProcess;
use storefleet_testkit::proxy::Proxy;
use storefleet_testkit::sink::Sink;

use crate::common::{agent_home, http, keys, metric, post_json};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_with_503_and_loses_nothing() {
    let broker = BrokerProcess::start();
    let proxy = Proxy::start(broker.addr).await;
    proxy.cut();
    let home = agent_home(proxy.addr, "");
    let state = home.state_dir();
    std::fs::create_dir_all(&state).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=40m", "tmpfs"])
        .arg(&state)
        .output();
    if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot mount a tmpfs here (needs root; the CI machine has it)");
        return;
    }
    let _mount = Mount(state.clone());
    let sink = Sink::start(broker.addr, keys(&home)).await;
    let agent = home.spawn();
    let addr = agent.ingest;

    let mut acked = 0usize;
    let mut refusal = None;
    for round in 0..2000i64 {
        let series: Vec<serde_json::Value> = (0..5)
            .map(|m| {
                serde_json::json!({"device": "ups-1", "metric": format!("load{m}"),
                    "points": (0..400).map(|i| serde_json::json!({"t": 1_700_000_000_000 + round * 1_000_000 + i, "v": i})).collect::<Vec<_>>()})
            })
            .collect();
        let (code, text) = post_json(
            addr,
            "/v1/telemetry",
            &serde_json::json!({ "series": series }),
        )
        .await
        .unwrap();
        match code {
            200 => acked += 2000,
            503 => {
                refusal = Some(text);
                break;
            }
            other => panic!("{other}: {text}"),
        }
    }
    let Some(refusal) = refusal else {
        // Say what the disk and the agent did, for a run where this happens.
        let df = Command::new("df").arg("-k").arg(&state).output();
        let df = df.map_or_else(
            |e| e.to_string(),
            |o| String::from_utf8_lossy(&o.stdout).into_owned(),
        );
        let files: Vec<String> = std::fs::read_dir(&state)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| {
                        format!(
                            "{:?} {}",
                            e.file_name(),
                            e.metadata().map_or(0, |m| m.len())
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        panic!(
            "the disk never filled after {acked} points acknowledged\ndf: {df}\nfiles: {files:?}\nlog:\n{}",
            home.log()
        );
    };
    assert!(refusal.contains("disk full"), "{refusal}");
    let ev = serde_json::json!({"code": "ups.on_battery", "severity": "critical"});
    // A small event may still fit in the last free pages; if not, it is refused the same way.
    let (code, text) = post_json(addr, "/v1/events", &ev).await.unwrap();
    assert!(
        code == 200 || (code == 503 && text.contains("disk full")),
        "{code}: {text}"
    );
    let (code, _) = http(addr, "GET", "/v1/health", None, Vec::new())
        .await
        .unwrap();
    assert_eq!(code, 200, "the agent keeps running");
    assert!(acked >= 2000);

    assert!(
        metric(addr, "storefleet_agent_points_downsampled_total").await
            + metric(addr, "storefleet_agent_points_evicted_total").await
            > 0
    );

    proxy.restore();
    let drained = async {
        for _ in 0..300 {
            if metric(addr, "storefleet_agent_buffer_points").await == 0
                && metric(addr, "storefleet_agent_buffer_outbox").await == 0
                && metric(addr, "storefleet_agent_buffer_events").await == 0
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };
    assert!(
        drained.await,
        "the backlog did not drain; log:\n{}",
        home.log()
    );
    let ingested = metric(addr, "storefleet_agent_points_ingested_total").await;
    let down = metric(addr, "storefleet_agent_points_downsampled_total").await;
    let made = metric(addr, "storefleet_agent_aggregates_created_total").await;
    let evicted = metric(addr, "storefleet_agent_points_evicted_total").await;
    let expected = (ingested - down + made - evicted) as usize;
    assert!(ingested as usize >= acked);
    assert!(
        sink.wait(Duration::from_secs(30), |s| s.point_count() >= expected
            && s.events.iter().any(|e| e.code == "buffer.disk_full"))
            .await,
        "received {} points of {expected}",
        sink.with(storefleet_testkit::sink::SinkState::point_count)
    );
    let received = sink.with(storefleet_testkit::sink::SinkState::point_count);
    assert_eq!(
        received, expected,
        "points = ingested - downsampled + aggregates - evicted"
    );
    // New data is taken again.
    let (code, text) = post_json(addr, "/v1/events", &ev).await.unwrap();
    assert_eq!(code, 200, "{text}");
    assert!(
        sink.wait(Duration::from_secs(20), |s| s
            .events
            .iter()
            .any(|e| e.code == "ups.on_battery"))
            .await
    );
}
