//! Commands: forged, unsigned, replayed, expired and misrouted ones are never executed and
//! are counted; a real one runs once, even when sent again after a restart.

use std::time::Duration;

use rumqttc::QoS;
use storefleet_protocol::message::{Command, CommandAction, CommandStatus};
use storefleet_protocol::{
    now_ms, Direction, Envelope, Kind, Message, SigningKey, Topic, CONTROLLER_ID,
};
use storefleet_testkit::broker::BrokerProcess;
use storefleet_testkit::sink::Sink;

use crate::common::{agent_home, command, controller_client, keys, metric, wait_online};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_authentic_fresh_commands_run_and_each_id_runs_once() {
    let broker = BrokerProcess::start();
    let home = agent_home(broker.addr, "");
    let sink = Sink::start(broker.addr, keys(&home)).await;
    let mut agent = home.spawn();
    wait_online(&home, &sink).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let ctl = controller_client(broker.addr);
    let topic = Topic::format(&home.id, Direction::Down, Kind::Command);
    let key = &home.controller;
    let later = now_ms() + 60_000;
    let forger = SigningKey::generate().unwrap();
    let good = command("c-ping", CommandAction::Ping, 1, &home.id, later, key);
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("forged", command("c-forged", CommandAction::Ping, 2, &home.id, later, &forger)),
        ("unsigned", br#"{"v":1,"from":"controller","seq":3,"ts":0,"kind":"command","body":{"id":"c-u","action":"ping"}}"#.to_vec()),
        ("replayed", good.clone()),
        ("expired", command("c-old", CommandAction::Ping, 4, &home.id, now_ms() - 3_600_000, key)),
        ("same id, new seq", command("c-ping", CommandAction::Ping, 5, &home.id, later, key)),
        ("for another agent", command("c-other", CommandAction::Ping, 6, "gw-someone-else", later, key)),
        ("never expires", {
            let e = Envelope::new(CONTROLLER_ID, 7, now_ms(), Message::Command(Command { id: "c-forever".into(), action: CommandAction::Ping }));
            e.to(&home.id).seal(key).unwrap()
        }),
        ("expires in a year", command("c-year", CommandAction::Ping, 8, &home.id, now_ms() + 365 * 24 * 3600 * 1000, key)),
    ];
    ctl.publish(&topic, QoS::AtLeastOnce, false, good)
        .await
        .unwrap();
    assert!(
        sink.wait(Duration::from_secs(10), |s| s.results.len() == 1)
            .await,
        "no result for the real command"
    );
    for (_, payload) in &bad {
        ctl.publish(&topic, QoS::AtLeastOnce, false, payload.clone())
            .await
            .unwrap();
    }
    let addr = agent.ingest;
    let mut refused = 0;
    for _ in 0..100 {
        refused = metric(addr, "storefleet_agent_commands_refused_total").await;
        if refused == bad.len() as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        refused,
        bad.len() as u64,
        "each bad command is counted once"
    );
    assert_eq!(
        metric(addr, "storefleet_agent_commands_executed_total").await,
        1
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    sink.with(|s| {
        assert_eq!(s.results.len(), 1);
        assert_eq!(s.results[0].command_id, "c-ping");
        assert_eq!(s.results[0].status, CommandStatus::Ok);
        assert_eq!(s.results[0].data["agent_id"], home.id.as_str());
    });

    // After a restart the id is still remembered; a new command still runs.
    assert!(agent.terminate().success());
    let mut agent = home.spawn();
    let addr = agent.ingest;
    assert!(
        sink.wait(Duration::from_secs(15), |s| s.presence[&home.id].len() >= 3)
            .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    ctl.publish(
        &topic,
        QoS::AtLeastOnce,
        false,
        command("c-ping", CommandAction::Ping, 10, &home.id, later, key),
    )
    .await
    .unwrap();
    ctl.publish(
        &topic,
        QoS::AtLeastOnce,
        false,
        command(
            "c-reload",
            CommandAction::ReloadConfig,
            11,
            &home.id,
            later,
            key,
        ),
    )
    .await
    .unwrap();
    assert!(
        sink.wait(Duration::from_secs(10), |s| s.results.len() == 2)
            .await
    );
    sink.with(|s| {
        assert_eq!(s.results[1].command_id, "c-reload");
        assert_eq!(s.results[1].status, CommandStatus::Ok);
        assert_eq!(s.results[1].message, "no change applied; 0 routine(s)");
    });
    assert_eq!(
        metric(addr, "storefleet_agent_commands_refused_total").await,
        1
    );

    // A broken config is refused by reload with a reason; the agent keeps running.
    let text = std::fs::read_to_string(home.config_path()).unwrap();
    std::fs::write(
        home.config_path(),
        text.replace("keep_alive_secs = 5", "keep_alive_secs = \"soon\""),
    )
    .unwrap();
    ctl.publish(
        &topic,
        QoS::AtLeastOnce,
        false,
        command(
            "c-reload-2",
            CommandAction::ReloadConfig,
            12,
            &home.id,
            later,
            key,
        ),
    )
    .await
    .unwrap();
    assert!(
        sink.wait(Duration::from_secs(10), |s| s.results.len() == 3)
            .await
    );
    sink.with(|s| {
        let r = &s.results[2];
        assert_eq!(r.status, CommandStatus::Failed);
        assert!(
            r.message.contains("agent.toml") && r.message.contains("controller.keep_alive_secs"),
            "{}",
            r.message
        );
    });
    assert!(agent.alive());
    // An unknown action from a newer controller is answered, not run.
    ctl.publish(&topic, QoS::AtLeastOnce, false, {
        let json = format!(r#"{{"v":1,"from":"controller","to":"{}","seq":13,"ts":{},"exp":{},"kind":"command","body":{{"id":"c-new","action":"format-disk"}}}}"#, home.id, now_ms(), later);
        storefleet_protocol::envelope::frame(json.as_bytes(), key)
    }).await.unwrap();
    assert!(
        sink.wait(Duration::from_secs(10), |s| s.results.len() == 4)
            .await
    );
    sink.with(|s| assert_eq!(s.results[3].status, CommandStatus::Rejected));
}
