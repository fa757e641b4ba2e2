//! SIGKILL at random moments while points are ingested: after a restart, every point that
//! ingest acknowledged is delivered.

use std::time::Duration;

use storefleet_testkit::broker::BrokerProcess;
use storefleet_testkit::sink::Sink;

use crate::common::{agent_home, keys, points_body, post_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_point_survives_repeated_sigkill() {
    let broker = BrokerProcess::start();
    let home = agent_home(broker.addr, "");
    let sink = Sink::start(broker.addr, keys(&home)).await;
    let mut acked: Vec<i64> = Vec::new();
    let base = storefleet_protocol::now_ms();
    let mut i = 0i64;
    for round in 0..22 {
        let mut agent = home.spawn();
        let addr = agent.ingest;
        let start = i;
        let ingester = tokio::spawn(async move {
            let mut ok = Vec::new();
            let mut n = start;
            loop {
                let body = points_body("scale-1", "weight_g", &[(base + n, n as f64)]);
                match post_json(addr, "/v1/telemetry", &body).await {
                    Ok((200, _)) => ok.push(base + n),
                    Ok((code, text)) => panic!("unexpected {code}: {text}"),
                    Err(_) => return (ok, n + 1),
                }
                n += 1;
            }
        });
        tokio::time::sleep(Duration::from_millis(rand::random_range(50..400))).await;
        agent.kill9();
        let (ok, next) = ingester.await.unwrap();
        assert!(
            !ok.is_empty() || round > 0,
            "round {round}: nothing was acknowledged"
        );
        acked.extend(ok);
        i = next;
    }
    assert!(acked.len() > 100, "{}", acked.len());
    let _agent = home.spawn();
    let key = ("scale-1".to_owned(), "weight_g".to_owned());
    let done = sink
        .wait(Duration::from_secs(60), |s| {
            s.series
                .get(&key)
                .is_some_and(|got| acked.iter().all(|t| got.iter().any(|r| r.t == *t)))
        })
        .await;
    let missing: Vec<i64> = sink.with(|s| {
        let got = s.series.get(&key).cloned().unwrap_or_default();
        acked
            .iter()
            .copied()
            .filter(|t| !got.iter().any(|r| r.t == *t))
            .collect()
    });
    assert!(
        done,
        "{} acknowledged points never arrived (first: {:?}); log:\n{}",
        missing.len(),
        missing.first(),
        home.log()
    );
    sink.with(|s| {
        let mut ts: Vec<i64> = s.series[&key].iter().map(|r| r.t).collect();
        let n = ts.len();
        ts.sort_unstable();
        ts.dedup();
        assert_eq!(ts.len(), n, "a point was stored twice");
    });
}

/// Regression: with `durability = "normal"` a power cut rolled the stored next `seq` back;
/// the restarted agent reused numbers it had already published and the receiver dropped
/// the new messages as duplicates. The power cut is played here as what it does to an
/// unsynced WAL: the agent is SIGKILLed and its WAL file, never fsynced in this mode, is
/// gone. Everything fsynced (the database as of its last checkpoint, the sequence ceiling)
/// stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_in_normal_durability_never_makes_the_agent_reuse_a_seq() {
    let broker = BrokerProcess::start();
    let home = agent_home(broker.addr, "[buffer]\ndurability = \"normal\"\n");
    let sink = Sink::start(broker.addr, keys(&home)).await;
    let key = ("scale-1".to_owned(), "weight_g".to_owned());
    let base = storefleet_protocol::now_ms();
    let send = |from: i64, n: i64, addr| async move {
        for i in from..from + n {
            let body = points_body("scale-1", "weight_g", &[(base + i, i as f64)]);
            let (code, text) = post_json(addr, "/v1/telemetry", &body).await.unwrap();
            assert_eq!(code, 200, "{text}");
        }
    };
    let arrived = |n: usize| {
        let sink = &sink;
        let key = key.clone();
        async move {
            sink.wait(Duration::from_secs(30), |s| {
                s.series.get(&key).is_some_and(|v| v.len() >= n)
            })
            .await
        }
    };
    // A clean run first, so that the database is checkpointed with a stored counter.
    let mut agent = home.spawn();
    send(0, 20, agent.ingest).await;
    assert!(arrived(20).await, "{}", home.log());
    assert!(agent.terminate().success());
    // Then a run that ends in a power cut.
    let mut agent = home.spawn();
    send(20, 40, agent.ingest).await;
    assert!(arrived(60).await, "{}", home.log());
    agent.kill9();
    let wal = home.state_dir().join("buffer.db-wal");
    assert!(wal.exists(), "the run's commits are in the WAL");
    std::fs::remove_file(&wal).unwrap();
    // After the restart, new points get numbers never used before, and all arrive.
    let agent = home.spawn();
    send(60, 40, agent.ingest).await;
    let all = arrived(100).await;
    let refused = sink.with(|s| s.refused.clone());
    assert!(
        all,
        "new points lost as duplicates; refused: {refused:?}; log:\n{}",
        home.log()
    );
}
