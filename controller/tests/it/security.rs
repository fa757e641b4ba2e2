//! What must never get in: forged, unknown, misrouted, malformed or replayed messages; and
//! enrollment with a token that is revoked, expired, unknown, or a request not signed by
//! the key it registers.

use std::time::Duration;

use base64::Engine as _;
use rumqttc::{AsyncClient, QoS};
use serde_json::{json, Value};
use storefleet_protocol::enroll::EnrollRequest;
use storefleet_protocol::message::{Point, Series, TelemetryBatch};
use storefleet_protocol::{now_ms, Envelope, Message, SigningKey};

use crate::common::{agent_binary, eventually, AgentHome, Controller};

pub(crate) async fn new_store(ctl: &Controller, code: &str) {
    let (s, v) = ctl
        .call(
            "PUT",
            &format!("/api/v1/stores/{code}"),
            Some(&json!({"code": code, "name": code})),
            true,
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

async fn token(ctl: &Controller, store: &str, extra: Value) -> (String, String) {
    let mut body = json!({"store": store});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (s, v) = ctl
        .call("POST", "/api/v1/enroll-tokens", Some(&body), true)
        .await;
    assert_eq!(s, 201, "{v}");
    (
        v["token"].as_str().unwrap().to_owned(),
        v["info"]["id"].as_str().unwrap().to_owned(),
    )
}

fn request(token: &str, id: &str, key: &SigningKey, signer: &SigningKey) -> Value {
    let token_id = storefleet_protocol::enroll::EnrollToken::decode(token)
        .unwrap()
        .id;
    let pk = key.public_key().to_base64();
    let ts = now_ms();
    let sig = signer.sign(&EnrollRequest::signed_bytes(&token_id, id, &pk, "host", ts));
    serde_json::to_value(EnrollRequest {
        token: token.to_owned(),
        agent_id: id.to_owned(),
        public_key: pk,
        hostname: "host".into(),
        agent_version: "test".into(),
        ts,
        signature: base64::engine::general_purpose::STANDARD.encode(sig),
    })
    .unwrap()
}

/// Enrolls `id` with a fresh key through the API; returns the key.
pub(crate) async fn enroll(ctl: &Controller, store: &str, id: &str) -> SigningKey {
    let (t, _) = token(ctl, store, json!({})).await;
    let key = SigningKey::generate().unwrap();
    let (s, v) = ctl
        .call(
            "POST",
            "/api/v1/enroll",
            Some(&request(&t, id, &key, &key)),
            false,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    key
}

fn telemetry(from: &str, seq: u64, metric: &str, key: &SigningKey) -> Vec<u8> {
    let batch = TelemetryBatch {
        backlog: false,
        series: vec![Series {
            device: Some("dev-1".into()),
            metric: metric.into(),
            points: vec![Point {
                t: now_ms(),
                v: 1.0,
                agg: None,
            }],
        }],
    };
    Envelope::new(from, seq, now_ms(), Message::Telemetry(batch))
        .seal(key)
        .unwrap()
}

/// A client logged in as agent `id`: what it publishes is checked message by message.
fn publisher(ctl: &Controller, id: &str, key: &SigningKey) -> AsyncClient {
    let mut o = crate::common::agent_mqtt(ctl.mqtt, id, key);
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut ev) = AsyncClient::new(o, 64);
    tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    client
}

async fn metrics_of(ctl: &Controller, store: &str) -> Vec<String> {
    let v = ctl.get(&format!("/api/v1/stores/{store}/series")).await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_unknown_misrouted_and_malformed_messages_never_reach_storage() {
    let mut ctl = Controller::start(None);
    new_store(&ctl, "S200").await;
    let id = format!("t-{:08x}", rand::random::<u32>());
    let key = enroll(&ctl, "S200", &id).await;
    let attacker = SigningKey::generate().unwrap();
    let topic = format!("sf/v1/{id}/up/telemetry");
    let mqtt = publisher(&ctl, &id, &key);
    let send = |topic: String, bytes: Vec<u8>| {
        let mqtt = mqtt.clone();
        async move {
            mqtt.publish(topic, QoS::AtLeastOnce, false, bytes)
                .await
                .unwrap();
        }
    };
    send(topic.clone(), b"not a frame at all".to_vec()).await;
    send(topic.clone(), vec![b'S', b'F', 1]).await;
    send(topic.clone(), telemetry(&id, 1, "forged", &attacker)).await;
    send(
        "sf/v1/stranger/up/telemetry".into(),
        telemetry("stranger", 1, "stranger", &attacker),
    )
    .await;
    // A real frame of this agent, published on another agent's topic.
    send(
        "sf/v1/other/up/telemetry".into(),
        telemetry(&id, 2, "misrouted", &key),
    )
    .await;
    let good = telemetry(&id, 3, "real", &key);
    send(topic.clone(), good.clone()).await;
    send(topic.clone(), good.clone()).await;

    eventually(30, "the real message stored", || async {
        metrics_of(&ctl, "S200")
            .await
            .contains(&"real".to_owned())
            .then_some(())
    })
    .await;
    let label =
        |l: &str| format!("storefleet_controller_ingest_messages_rejected_total{{reason=\"{l}\"}}");
    eventually(30, "rejections counted", || async {
        (ctl.metric(&label("malformed")).await >= 3
            && ctl.metric(&label("bad_signature")).await >= 1
            && ctl.metric(&label("unknown_sender")).await >= 1
            && ctl
                .metric("storefleet_controller_ingest_messages_duplicate_total")
                .await
                >= 1)
            .then_some(())
    })
    .await;
    assert_eq!(metrics_of(&ctl, "S200").await, vec!["real".to_owned()]);

    // Dedupe is durable: after a restart the same (agent, seq) is still stored once.
    ctl.kill();
    ctl.spawn();
    let mqtt = publisher(&ctl, &id, &key);
    mqtt.publish(topic.clone(), QoS::AtLeastOnce, false, good)
        .await
        .unwrap();
    mqtt.publish(
        topic.clone(),
        QoS::AtLeastOnce,
        false,
        telemetry(&id, 4, "after-restart", &key),
    )
    .await
    .unwrap();
    eventually(30, "message after restart", || async {
        metrics_of(&ctl, "S200")
            .await
            .contains(&"after-restart".to_owned())
            .then_some(())
    })
    .await;
    assert!(
        ctl.metric("storefleet_controller_ingest_messages_duplicate_total")
            .await
            >= 1,
        "{}",
        ctl.log()
    );
    let series = ctl.get("/api/v1/stores/S200/series").await;
    let real = series
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metric"] == "real")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let pts = ctl
        .get(&format!("/api/v1/series/{real}/points?res=0"))
        .await;
    assert_eq!(pts["points"].as_array().unwrap().len(), 1, "{pts}");
    // A revoked agent's messages are refused from then on.
    let (s, _) = ctl
        .call("POST", &format!("/api/v1/agents/{id}/revoke"), None, true)
        .await;
    assert_eq!(s, 204);
    mqtt.publish(
        topic,
        QoS::AtLeastOnce,
        false,
        telemetry(&id, 5, "after-revoke", &key),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!metrics_of(&ctl, "S200")
        .await
        .contains(&"after-revoke".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_is_refused_with_the_reason() {
    let ctl = Controller::start(None);
    new_store(&ctl, "S300").await;
    let key = SigningKey::generate().unwrap();
    let post = |body: Value| {
        let ctl = &ctl;
        async move { ctl.call("POST", "/api/v1/enroll", Some(&body), false).await }
    };

    let (revoked, rid) = token(&ctl, "S300", json!({})).await;
    let (s, _) = ctl
        .call(
            "POST",
            &format!("/api/v1/enroll-tokens/{rid}/revoke"),
            None,
            true,
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = post(request(&revoked, "a-1", &key, &key)).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("revoked"), "{v}");

    let (short, _) = token(&ctl, "S300", json!({"ttl_secs": 1})).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (s, v) = post(request(&short, "a-2", &key, &key)).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");
    // The agent binary says so too, before asking the controller.
    let home = AgentHome::new(&agent_binary(), ([127, 0, 0, 1], 9).into(), "");
    let out = home.command().args(["enroll", &short]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expired"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A request not signed by the key it registers.
    let (good, _) = token(&ctl, "S300", json!({})).await;
    let other = SigningKey::generate().unwrap();
    let (s, v) = post(request(&good, "a-3", &key, &other)).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("signature"), "{v}");
    // A token from elsewhere (right form, unknown id) and a damaged one.
    let mut forged = storefleet_protocol::enroll::EnrollToken::decode(&good).unwrap();
    forged.id = "t-nothere".into();
    let (s, v) = post(request(&forged.encode(), "a-4", &key, &key)).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("not known"), "{v}");
    let mut damaged = request(&good, "a-5", &key, &key);
    damaged["token"] = json!(&good[..good.len() - 5]);
    let (s, v) = post(damaged).await;
    assert_eq!(s, 400, "{v}");
    // The unused good token still works after all that, once.
    let (s, v) = post(request(&good, "a-6", &key, &key)).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(request(&good, "a-7", &key, &key)).await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("already used"), "{v}");
}

/// Regression: enrollment used to replace any agent's key, move it to the token's store and
/// clear its revocation, so any token holder could take over any gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_agent_id_stays_bound_to_its_key() {
    let ctl = Controller::start(None);
    new_store(&ctl, "S400").await;
    new_store(&ctl, "S401").await;
    let post = |body: Value| {
        let ctl = &ctl;
        async move { ctl.call("POST", "/api/v1/enroll", Some(&body), false).await }
    };
    let owner = enroll(&ctl, "S400", "gw-400").await;
    let owner_pk = owner.public_key().to_base64();

    // Another key, a valid token of another store: refused, nothing moves.
    let thief = SigningKey::generate().unwrap();
    let (t, _) = token(&ctl, "S401", json!({})).await;
    let (s, v) = post(request(&t, "gw-400", &thief, &thief)).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("another key"), "{v}");
    let a = ctl.get("/api/v1/agents/gw-400").await;
    assert_eq!(a["public_key"], json!(owner_pk));
    assert_eq!(a["store"], json!("S400"));
    // The refused attempt did not use up the token.
    let (s, v) = post(request(&t, "gw-401", &thief, &thief)).await;
    assert_eq!(s, 200, "{v}");

    // The same key may enroll again (a reinstalled gateway).
    let (t, _) = token(&ctl, "S400", json!({})).await;
    let (s, v) = post(request(&t, "gw-400", &owner, &owner)).await;
    assert_eq!(s, 200, "{v}");

    // Revoked stays revoked, even with its own key.
    let (s, _) = ctl
        .call("POST", "/api/v1/agents/gw-400/revoke", None, true)
        .await;
    assert_eq!(s, 204);
    let (t, _) = token(&ctl, "S400", json!({})).await;
    let (s, v) = post(request(&t, "gw-400", &owner, &owner)).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("revoked"), "{v}");
    assert!(ctl.get("/api/v1/agents/gw-400").await["revoked_at"].is_i64());

    // An admin re-enrolls it: then one new key may take the id, and the old one is out.
    let (ok, out, err) = ctl.cli(&["agents", "reenroll", "gw-400"]);
    assert!(ok, "{err}");
    assert!(out.contains("old key revoked"), "{out}");
    let replacement = SigningKey::generate().unwrap();
    let (s, v) = post(request(&t, "gw-400", &replacement, &replacement)).await;
    assert_eq!(s, 200, "{v}");
    let a = ctl.get("/api/v1/agents/gw-400").await;
    assert_eq!(a["public_key"], json!(replacement.public_key().to_base64()));
    assert!(a["revoked_at"].is_null(), "{a}");
    // The window closed with that enrollment: yet another key is refused.
    let (t, _) = token(&ctl, "S400", json!({})).await;
    let other = SigningKey::generate().unwrap();
    let (s, v) = post(request(&t, "gw-400", &other, &other)).await;
    assert_eq!(s, 400, "{v}");
    // Re-enrolling an unknown agent says so.
    let (ok, _, err) = ctl.cli(&["agents", "reenroll", "gw-nope"]);
    assert!(!ok);
    assert!(err.contains("no agent"), "{err}");
}
