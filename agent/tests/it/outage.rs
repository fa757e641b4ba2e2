//! The store's line drops and the broker restarts: every acknowledged point arrives, once,
//! in order per stream.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use storefleet_testkit::broker::BrokerProcess;
use storefleet_testkit::proxy::Proxy;
use storefleet_testkit::sink::Sink;

use crate::common::{agent_home, keys, points_body, post_json};

const SERIES: [&str; 3] = ["s0", "s1", "s2"];

/// Posts one point per series every few ms until stopped; returns the acknowledged ones.
fn ingest_until(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(String, i64)>> {
    tokio::spawn(async move {
        let mut acked = Vec::new();
        let base = storefleet_protocol::now_ms();
        let mut i = 0i64;
        while !stop.load(Ordering::SeqCst) {
            for s in SERIES {
                let body = points_body("pos-1", s, &[(base + i, i as f64)]);
                if let Ok((200, _)) = post_json(addr, "/v1/telemetry", &body).await {
                    acked.push((s.to_owned(), base + i));
                }
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        acked
    })
}

async fn run_outage(upstream: SocketAddr, mut broker: Option<&mut BrokerProcess>) {
    let proxy = Proxy::start(upstream).await;
    let home = agent_home(proxy.addr, "");
    let sink = Sink::start(upstream, keys(&home)).await;
    let mut agent = home.spawn();
    let stop = Arc::new(AtomicBool::new(false));
    let ingester = ingest_until(agent.ingest, stop.clone());

    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.cut();
    if let Some(b) = broker.as_mut() {
        b.stop();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let Some(b) = broker.as_mut() {
        b.restart();
        assert!(
            sink.wait(Duration::from_secs(15), |s| s.subscriptions >= 2)
                .await,
            "sink did not come back"
        );
    }
    proxy.restore();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let acked = ingester.await.unwrap();
    assert!(
        acked.len() > 300,
        "too few points ingested: {}",
        acked.len()
    );

    let want = acked.len();
    let arrived = sink
        .wait(Duration::from_secs(60), |s| {
            SERIES
                .iter()
                .map(|m| {
                    s.series
                        .get(&("pos-1".into(), (*m).into()))
                        .map_or(0, Vec::len)
                })
                .sum::<usize>()
                >= want
        })
        .await;
    assert!(
        arrived,
        "not every point arrived; agent log:\n{}",
        home.log()
    );
    // Give stragglers (duplicates, if any got through) a moment to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sink.with(|s| {
        for m in SERIES {
            let got = &s.series[&("pos-1".to_owned(), m.to_owned())];
            let mut want: Vec<i64> = acked
                .iter()
                .filter(|(s, _)| s == m)
                .map(|(_, t)| *t)
                .collect();
            want.sort_unstable();
            let mut times: Vec<i64> = got.iter().map(|r| r.t).collect();
            times.sort_unstable();
            assert_eq!(
                times, want,
                "series {m}: every acknowledged point exactly once"
            );
            for lane in [false, true] {
                let ts: Vec<i64> = got
                    .iter()
                    .filter(|r| r.backlog == lane)
                    .map(|r| r.t)
                    .collect();
                assert!(
                    ts.windows(2).all(|w| w[0] < w[1]),
                    "series {m}: {} points out of order",
                    if lane { "backlog" } else { "live" }
                );
            }
            assert!(
                got.iter().any(|r| r.backlog),
                "series {m}: the outage left no backlog"
            );
        }
    });
    assert!(agent.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_behind_a_dropped_line_loses_nothing_embedded_broker() {
    let mut broker = BrokerProcess::start();
    let addr = broker.addr;
    run_outage(addr, Some(&mut broker)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_line_loses_nothing_mosquitto() {
    let Some(addr) = storefleet_testkit::external_mqtt() else {
        eprintln!(
            "skipped: STOREFLEET_TEST_MQTT is not set (needs a running Mosquitto; .ci/run sets it)"
        );
        return;
    };
    run_outage(addr, None).await;
}
