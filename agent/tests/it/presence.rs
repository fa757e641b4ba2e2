//! Presence: a retained, signed `online` at connect; a signed `offline` on SIGTERM; the
//! broker's last will says `offline` when the agent dies without a word.

use std::time::Duration;

use storefleet_protocol::message::PresenceState;
use storefleet_testkit::broker::BrokerProcess;
use storefleet_testkit::sink::Sink;

use crate::common::{agent_home, keys};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_at_connect_offline_on_shutdown_and_on_death() {
    let broker = BrokerProcess::start();
    let home = agent_home(broker.addr, "");
    // The agent's own health goes out as telemetry too.
    std::fs::create_dir_all(home.dir.path().join("agent.d")).unwrap();
    std::fs::write(
        home.dir.path().join("agent.d/30-health.toml"),
        "[agent]\nhealth_interval_secs = 1\n",
    )
    .unwrap();
    let sink = Sink::start(broker.addr, keys(&home)).await;
    let id = home.id.clone();
    let states = |s: &storefleet_testkit::sink::SinkState| -> Vec<(PresenceState, Option<String>)> {
        s.presence
            .get(&id)
            .map(|v| v.iter().map(|p| (p.state, p.reason.clone())).collect())
            .unwrap_or_default()
    };

    let mut agent = home.spawn();
    assert!(
        sink.wait(Duration::from_secs(15), |s| states(s).len() == 1)
            .await
    );
    let health = |m: &str| (String::new(), m.to_owned());
    assert!(
        sink.wait(Duration::from_secs(15), |s| {
            s.series.contains_key(&health("agent.buffer_points"))
                && s.series.contains_key(&health("agent.publish_rate_pps"))
        })
        .await,
        "no health telemetry"
    );
    let status = agent.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        sink.wait(Duration::from_secs(10), |s| states(s).len() == 2)
            .await
    );

    let mut agent = home.spawn();
    assert!(
        sink.wait(Duration::from_secs(15), |s| states(s).len() == 3)
            .await
    );
    agent.kill9();
    assert!(
        sink.wait(Duration::from_secs(20), |s| states(s).len() == 4)
            .await,
        "no last will: {:?}",
        sink.with(|s| states(s))
    );
    let got = sink.with(|s| states(s));
    assert_eq!(
        got,
        vec![
            (PresenceState::Online, None),
            (PresenceState::Offline, Some("shutdown".into())),
            (PresenceState::Online, None),
            (PresenceState::Offline, Some("connection lost".into())),
        ]
    );
}
