//! Regression: the embedded broker took anyone, and a client that connected with the
//! controller's client id stole and acknowledged its messages. Every client now logs in:
//! agents as themselves with a token signed by their enrolled key, the controller with its
//! secret; the client id must be that identity.

use std::time::Duration;

use rumqttc::{MqttOptions, QoS};
use storefleet_protocol::SigningKey;

use crate::common::{agent_mqtt, controller_mqtt, eventually, mqtt_login as connect, Controller};
use crate::security::{enroll, new_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_enrolled_agents_and_the_controller_get_in_as_themselves() {
    let ctl = Controller::start(None);
    let addr = ctl.mqtt;
    let plain = |id: &str| MqttOptions::new(id, addr.ip().to_string(), addr.port());

    // Nobody anonymous, least of all under the controller's client id.
    assert!(connect(plain("curious")).await.is_none(), "anonymous");
    assert!(
        connect(plain(&ctl.client_id)).await.is_none(),
        "the controller's id, no login"
    );
    let mut wrong = plain(&ctl.client_id);
    wrong.set_credentials(storefleet_protocol::broker::CONTROLLER_USER, "guess");
    assert!(
        connect(wrong).await.is_none(),
        "the controller's id, a guessed secret"
    );
    let state = ctl.dir.path().join("state");
    let mut elsewhere = controller_mqtt(addr, &state, &ctl.client_id, "x");
    elsewhere.set_client_id("not-the-controller".into());
    assert!(
        connect(elsewhere).await.is_none(),
        "the secret under another client id"
    );
    assert!(
        connect(controller_mqtt(addr, &state, &ctl.client_id, "tool"))
            .await
            .is_some()
    );

    // An enrolled agent, as itself, with its own key, in time.
    new_store(&ctl, "S800").await;
    let key = enroll(&ctl, "S800", "gw-800").await;
    let (agent, _) = connect(agent_mqtt(addr, "gw-800", &key))
        .await
        .expect("the agent gets in");
    let other = SigningKey::generate().unwrap();
    assert!(
        connect(agent_mqtt(addr, "gw-800", &other)).await.is_none(),
        "another key"
    );
    let mut renamed = agent_mqtt(addr, "gw-800", &key);
    renamed.set_client_id("gw-801".into());
    assert!(
        connect(renamed).await.is_none(),
        "client id is not the username"
    );
    let mut stale = agent_mqtt(addr, "gw-800", &key);
    stale.set_credentials(
        "gw-800",
        storefleet_protocol::broker::agent_password(
            "gw-800",
            storefleet_protocol::now_ms() - 11 * 60_000,
            &key,
        ),
    );
    assert!(connect(stale).await.is_none(), "an old token");
    assert!(
        connect(agent_mqtt(addr, "gw-nobody", &other))
            .await
            .is_none(),
        "not enrolled"
    );

    // What the embedded broker cannot stop (it has no topic rules), measured: a logged-in
    // agent that subscribes to the whole tree reads other agents' uplinks.
    let spy_key = enroll(&ctl, "S800", "gw-spy").await;
    let (spy, mut seen) = connect(agent_mqtt(addr, "gw-spy", &spy_key)).await.unwrap();
    spy.subscribe("sf/v1/#", QoS::AtLeastOnce).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frame = storefleet_protocol::Envelope::new(
        "gw-800",
        1,
        storefleet_protocol::now_ms(),
        storefleet_protocol::Message::Telemetry(storefleet_protocol::message::TelemetryBatch {
            backlog: false,
            series: Vec::new(),
        }),
    )
    .seal(&key)
    .unwrap();
    agent
        .publish("sf/v1/gw-800/up/telemetry", QoS::AtLeastOnce, false, frame)
        .await
        .unwrap();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(p) = seen.recv().await {
            if p.topic == "sf/v1/gw-800/up/telemetry" {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        read,
        "documented: an agent can read others' topics at the embedded broker"
    );

    // Revoked: the next login is refused.
    let (s, _) = ctl
        .call("POST", "/api/v1/agents/gw-800/revoke", None, true)
        .await;
    assert_eq!(s, 204);
    assert!(
        connect(agent_mqtt(addr, "gw-800", &key)).await.is_none(),
        "revoked"
    );

    // Every refusal with a login was counted (rumqttd closes anonymous ones before the
    // check), and ingest never lost its own connection to an impostor.
    eventually(10, "refusals counted", || async {
        (ctl.metric("storefleet_broker_connections_refused_total")
            .await
            >= 7)
            .then_some(())
    })
    .await;
    assert_eq!(
        ctl.metric("storefleet_controller_ingest_disconnects_total")
            .await,
        0,
        "{}",
        ctl.log()
    );
}
