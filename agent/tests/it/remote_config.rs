//! Config changes pushed by the controller: applied only for the sections this agent's
//! config allows, undone when they do not load, and refused with the reason otherwise.

use std::time::Duration;

use rumqttc::QoS;
use storefleet_protocol::message::{CommandAction, CommandStatus};
use storefleet_protocol::{now_ms, Direction, Kind, Topic};
use storefleet_testkit::broker::BrokerProcess;
use storefleet_testkit::sink::Sink;

use crate::common::{agent_home, command, controller_client, keys, metric, wait_online};

fn change(name: &str, toml: &str) -> CommandAction {
    CommandAction::ApplyConfig {
        name: name.into(),
        toml: toml.into(),
        task: "t-cfg".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_apply_where_allowed_and_are_undone_when_they_do_not_load() {
    let broker = BrokerProcess::start();
    let home = agent_home(broker.addr, "");
    let dropins = home.dir.path().join("agent.d");
    std::fs::create_dir_all(&dropins).unwrap();
    // The operator of this gateway lets the controller change inventory reporting only.
    std::fs::write(
        dropins.join("20-remote.toml"),
        "[controller]\nremote_config = [\"inventory\"]\n",
    )
    .unwrap();
    let sink = Sink::start(broker.addr, keys(&home)).await;
    let mut agent = home.spawn();
    wait_online(&home, &sink).await;
    let ctl = controller_client(broker.addr);
    let topic = Topic::format(&home.id, Direction::Down, Kind::Command);
    let exp = now_ms() + 600_000;
    let cases = [
        (
            "c-ok",
            change("inventory-rate", "[inventory]\ninterval_secs = 1234\n"),
        ),
        (
            "c-section",
            change("take-over", "[controller]\npublic_key = \"\"\n"),
        ),
        (
            "c-bad",
            change("inventory-rate", "[inventory]\ninterval_secs = \"soon\"\n"),
        ),
    ];
    for (seq, (id, action)) in cases.into_iter().enumerate() {
        ctl.publish(
            &topic,
            QoS::AtLeastOnce,
            false,
            command(id, action, seq as u64 + 1, &home.id, exp, &home.controller),
        )
        .await
        .unwrap();
        assert!(
            sink.wait(Duration::from_secs(20), |s| s
                .results
                .iter()
                .any(|r| r.command_id == id))
                .await,
            "no result for {id}"
        );
    }
    let file = dropins.join("70-task-inventory-rate.toml");
    sink.with(|s| {
        let by = |id: &str| s.results.iter().find(|r| r.command_id == id).unwrap();
        let ok = by("c-ok");
        assert_eq!(ok.status, CommandStatus::Ok, "{}", ok.message);
        assert!(ok.message.contains("applied: inventory"), "{}", ok.message);
        let section = by("c-section");
        assert_eq!(section.status, CommandStatus::Rejected);
        assert!(
            section.message.contains("[controller]"),
            "{}",
            section.message
        );
        let bad = by("c-bad");
        assert_eq!(bad.status, CommandStatus::Failed);
        assert!(
            bad.message.contains("previous configuration kept")
                && bad.message.contains("interval_secs"),
            "{}",
            bad.message
        );
    });
    // The refused change left the accepted one in place, and nothing for the other.
    let kept = std::fs::read_to_string(&file).unwrap();
    assert!(
        kept.contains("interval_secs = 1234") && kept.contains("task t-cfg"),
        "{kept}"
    );
    assert!(!dropins.join("70-task-take-over.toml").exists());
    let out = home.command().arg("check-config").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("interval_secs = 1234"));
    assert_eq!(
        metric(home.ingest, "storefleet_agent_config_changes_refused_total").await,
        1
    );
    assert!(agent.terminate().success());
}
