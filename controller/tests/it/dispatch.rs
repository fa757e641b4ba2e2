//! Dispatch that knows where people are: stores and engineers with coordinates, the nearer
//! engineer chosen with the drive in the reasons, and the check-in moving the engineer.

use serde_json::{json, Value};

use crate::common::Controller;
use crate::store_page::{act, open};
use crate::tickets::full;

const HAMBURG: (f64, f64) = (53.5511, 9.9937);
const KIEL: (f64, f64) = (54.3233, 10.1228);

async fn put(ctl: &Controller, path: &str, body: Value) {
    let (s, v) = ctl.call("PUT", path, Some(&body), true).await;
    assert_eq!(s, 200, "{path}: {v}");
}

async fn assigned(ctl: &Controller, id: i64) -> (String, String) {
    let found = crate::common::within(30, || async {
        let f = full(ctl, id).await;
        let who = f["ticket"]["engineer"].as_str()?.to_owned();
        let why = f["timeline"]
            .as_array()?
            .iter()
            .find(|e| e["kind"] == "assignment")?["text"]
            .as_str()?
            .to_owned();
        Some((who, why))
    })
    .await;
    match found {
        Some(x) => x,
        None => panic!("ticket {id} not assigned: {}", full(ctl, id).await),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nearer_engineer_is_sent_with_the_drive_in_the_reasons_and_a_check_in_moves_them() {
    let ctl = Controller::start(None);
    for (code, (lat, lon)) in [("HH1", HAMBURG), ("KI1", KIEL)] {
        put(
            &ctl,
            &format!("/api/v1/stores/{code}"),
            json!({"code": code, "name": code, "region": "north", "timezone": "Europe/Berlin",
                   "place": {"lat": lat, "lon": lon}}),
        )
        .await;
    }
    // The same skills, region, shift and load: only where they live differs.
    for (id, (lat, lon)) in [("kiel.k", KIEL), ("hamburg.h", HAMBURG)] {
        put(
            &ctl,
            &format!("/api/v1/engineers/{id}"),
            json!({"id": id, "name": id, "skills": ["general"], "regions": ["north"],
                   "shift": "24/7", "home": {"lat": lat + 0.01, "lon": lon}}),
        )
        .await;
    }
    let hh = open(&ctl, "HH1", "Door sensor stuck").await;
    let (who, why) = assigned(&ctl, hh).await;
    assert_eq!(who, "hamburg.h", "{why}");
    assert!(why.contains("from home base"), "{why}");
    assert!(
        why.contains("kiel.k (load 0, 8"),
        "the other's drive, ~88 km: {why}"
    );
    let ki = open(&ctl, "KI1", "Scale weighs wrong").await;
    let (who, why) = assigned(&ctl, ki).await;
    assert_eq!(who, "kiel.k", "{why}");

    // hamburg.h drives to Kiel and checks in there: from then on they are in Kiel.
    act(&ctl, hh, json!({"action": "unassign"})).await;
    act(
        &ctl,
        ki,
        json!({"action": "assign", "engineer": "hamburg.h"}),
    )
    .await;
    for step in ["accept", "en_route", "check_in"] {
        act(&ctl, ki, json!({ "action": step })).await;
    }
    let engineers = ctl.get("/api/v1/engineers").await;
    let h = engineers
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "hamburg.h")
        .unwrap()
        .clone();
    assert_eq!(h["last_check_in"]["store"], "KI1", "{h}");
    assert_eq!(h["last_check_in"]["place"]["lat"], KIEL.0, "{h}");
    assert_eq!(h["home"]["lon"], HAMBURG.1, "{h}");
    // Both now in Kiel, hamburg.h with one ticket more: the Hamburg ticket, back in the
    // queue, is assigned again, and the reasons say from where each would drive.
    let hh2 = open(&ctl, "HH1", "Till screen flickers").await;
    let (_, why) = assigned(&ctl, hh2).await;
    assert!(why.contains("from last check-in at KI1"), "{why}");
    assert!(why.contains("from home base"), "{why}");

    // The CLI sets places; a place off the map is refused, naming what is wrong.
    let (ok, _, err) = ctl.cli(&[
        "stores",
        "add",
        "KI2",
        "--name",
        "Kiel 2",
        "--region",
        "north",
        "--at",
        "54.31,10.13",
    ]);
    assert!(ok, "{err}");
    assert_eq!(ctl.get("/api/v1/stores/KI2").await["place"]["lon"], 10.13);
    let (ok, _, err) = ctl.cli(&["stores", "add", "KI3", "--name", "x", "--at", "95,10"]);
    assert!(!ok && err.contains("-90 to 90"), "{err}");
    let (ok, _, err) = ctl.cli(&[
        "engineers",
        "add",
        "lea",
        "--name",
        "Lea",
        "--skills",
        "general",
        "--regions",
        "north",
        "--home",
        "54.3,-10.1",
    ]);
    assert!(ok, "{err}");
    let (s, v) = ctl
        .call(
            "PUT",
            "/api/v1/engineers/lea",
            Some(&json!({"id": "lea", "name": "Lea", "home": {"lat": 10.0, "lon": 200.0}})),
            true,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("longitude 200"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_that_needs_a_senior_skips_the_junior_engineer() {
    let ctl = Controller::start(None);
    crate::tickets::store(&ctl, "L1", "north").await;
    for (id, level) in [("jo.junior", "junior"), ("sam.senior", "senior")] {
        put(
            &ctl,
            &format!("/api/v1/engineers/{id}"),
            json!({"id": id, "name": id, "skills": ["pos", "general"], "regions": ["north"], "level": level}),
        )
        .await;
    }
    // sam carries a ticket already: a job anyone may take goes to jo.
    let first = open(&ctl, "L1", "Till receipt misprints").await;
    act(
        &ctl,
        first,
        json!({"action": "assign", "engineer": "sam.senior"}),
    )
    .await;
    let easy = open(&ctl, "L1", "Scanner cable loose").await;
    let (who, _) = assigned(&ctl, easy).await;
    assert_eq!(who, "jo.junior");
    let (s, v) = ctl
        .call(
            "POST",
            "/api/v1/tickets",
            Some(&json!({"store": "L1", "title": "POS mainboard", "skill": "pos", "severity": "minor", "level": "senior"})),
            true,
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["level"], "senior");
    let (who, why) = assigned(&ctl, v["id"].as_i64().unwrap()).await;
    assert_eq!(who, "sam.senior", "{why}");
    assert!(
        why.contains("pos (senior or above)")
            && why.contains("jo.junior (junior for a senior job)"),
        "{why}"
    );
    // The CLI: levels on engineers and tickets, an unknown one named.
    let (ok, _, err) = ctl.cli(&[
        "engineers",
        "add",
        "max",
        "--name",
        "Max",
        "--skills",
        "pos",
        "--regions",
        "north",
        "--level",
        "specialist",
    ]);
    assert!(ok, "{err}");
    let max = ctl.get("/api/v1/engineers").await;
    assert!(
        max.as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == "max" && e["level"] == "specialist"),
        "{max}"
    );
    let (ok, _, err) = ctl.cli(&[
        "tickets", "open", "--store", "L1", "--title", "x", "--skill", "pos", "--level", "guru",
    ]);
    assert!(!ok && err.contains("junior, senior or specialist"), "{err}");
}
