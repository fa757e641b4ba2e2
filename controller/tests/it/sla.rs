//! SLA escalation on a controlled clock: the controller in this process (so that its clock
//! can be moved), its real database and ticket engine, driven through the HTTP API.

use std::time::Duration;

use serde_json::{json, Value};
use storefleet_controller::client::Client;
use storefleet_controller::server;
use storefleet_controller::tasks::engine::Clock;
use tokio_util::sync::CancellationToken;

use crate::common::eventually;

const MIN: i64 = 60_000;

async fn call(c: &Client, method: &str, path: &str, body: Option<Value>) -> Value {
    c.call(method, path, body.as_ref()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sla_near_breach_and_breach_escalate_reassign_and_raise_priority() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::common::in_process_config(dir.path());
    config.tickets.evaluate_interval_ms = 100;
    // 2026-12-02 (a Wednesday) 08:00 UTC.
    let t0 = 1_796_198_400_000;
    let clock = Clock::manual(t0);
    let token = CancellationToken::new();
    let running = server::start_with_clock(config, token.clone(), clock.clone())
        .await
        .unwrap();
    let c = crate::common::client_of(&running);
    call(
        &c,
        "PUT",
        "/api/v1/stores/S9",
        Some(
            json!({"code": "S9", "name": "Kiel 1", "region": "north", "timezone": "Europe/Berlin"}),
        ),
    )
    .await;
    for id in ["anna", "ben"] {
        call(&c, "PUT", &format!("/api/v1/engineers/{id}"), Some(json!({"id": id, "name": id, "skills": ["scales"], "regions": ["north"], "shift": "24/7"}))).await;
    }
    // Major on a till-side device: P3, 240 min to accept, 1440 to resolve.
    let t = call(&c, "POST", "/api/v1/tickets", Some(json!({"store": "S9", "title": "Scale weighs wrong", "skill": "scales", "severity": "major", "impact": "device", "device": "scale-1"}))).await;
    let id = t["id"].as_i64().unwrap();
    assert_eq!(t["priority"], 3);
    assert_eq!(t["response_due"], t0 + 240 * MIN);
    let get = |id: i64| {
        let c = c.clone();
        async move { call(&c, "GET", &format!("/api/v1/tickets/{id}"), None).await }
    };
    eventually(10, "assigned to anna (equal load, first by id)", || async {
        (get(id).await["ticket"]["engineer"] == "anna").then_some(())
    })
    .await;

    // 80 % of the response time: near breach, level 1, nothing else changes.
    clock.set(t0 + 193 * MIN);
    let f = eventually(10, "near-breach escalation", || async {
        let f = get(id).await;
        (f["ticket"]["escalation"] == 1).then_some(f)
    })
    .await;
    assert_eq!(f["ticket"]["priority"], 3);
    assert_eq!(f["ticket"]["engineer"], "anna");

    // Not accepted in time: level 2, P2, taken from anna and given to ben.
    clock.set(t0 + 241 * MIN);
    let f = eventually(10, "response breach escalation", || async {
        let f = get(id).await;
        (f["ticket"]["escalation"] == 2 && f["ticket"]["engineer"] == "ben").then_some(f)
    })
    .await;
    assert_eq!(f["ticket"]["priority"], 2);
    let texts: Vec<String> = f["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("response SLA breached")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("anna (escalated away from)")),
        "{texts:?}"
    );

    // Ben accepts, then puts it on hold for 10 hours: the clock stops, no breach.
    call(
        &c,
        "POST",
        &format!("/api/v1/tickets/{id}/actions"),
        Some(json!({"action": "accept"})),
    )
    .await;
    call(
        &c,
        "POST",
        &format!("/api/v1/tickets/{id}/actions"),
        Some(json!({"action": "hold", "reason": "calibration weights ordered"})),
    )
    .await;
    clock.set(t0 + 1500 * MIN);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        get(id).await["ticket"]["escalation"],
        2,
        "no breach while on hold"
    );
    let r = call(
        &c,
        "POST",
        &format!("/api/v1/tickets/{id}/actions"),
        Some(json!({"action": "resume"})),
    )
    .await;
    assert_eq!(r["status"], "accepted");
    assert_eq!(r["resolution_due"], t0 + 1440 * MIN + (1500 - 241) * MIN);
    // Past the moved resolution deadline: level 3, P1.
    clock.set(t0 + 1440 * MIN + (1500 - 241) * MIN + MIN);
    let f = eventually(10, "resolution breach escalation", || async {
        let f = get(id).await;
        (f["ticket"]["escalation"] == 3).then_some(f)
    })
    .await;
    assert_eq!(f["ticket"]["priority"], 1);
    // A wrong action is refused with the reason.
    let e = c
        .call(
            "POST",
            &format!("/api/v1/tickets/{id}/actions"),
            Some(&json!({"action": "close", "rating": 5})),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot close a ticket that is accepted"), "{e}");
    token.cancel();
    running.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regions_business_calendar_stops_the_sla_clock_after_hours_and_on_holidays() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::common::in_process_config(dir.path());
    config.tickets.calendars = vec![storefleet_controller::tickets::calendar::CalendarConfig {
        name: "north-office".into(),
        regions: vec!["north".into()],
        timezone: "Europe/Berlin".into(),
        hours: "Mo-Fr 08:00-18:00".into(),
        holidays: vec!["2026-12-03".into()],
    }];
    // 2026-12-02 (a Wednesday) 08:00 UTC, 09:00 in Berlin.
    let t0 = 1_796_198_400_000;
    let token = CancellationToken::new();
    let running = server::start_with_clock(config, token.clone(), Clock::manual(t0))
        .await
        .unwrap();
    let c = crate::common::client_of(&running);
    for (code, region) in [("S9", "north"), ("S5", "south")] {
        let store =
            json!({"code": code, "name": code, "region": region, "timezone": "Europe/Berlin"});
        call(&c, "PUT", &format!("/api/v1/stores/{code}"), Some(store)).await;
    }
    let open = |store: &'static str| {
        let c = c.clone();
        async move {
            let body = json!({"store": store, "title": "Scale weighs wrong", "skill": "scales", "severity": "major", "impact": "device"});
            call(&c, "POST", "/api/v1/tickets", Some(body)).await
        }
    };
    // P3: 240 working minutes to accept, 1440 to resolve. Wednesday 09:00 + 4 h is 13:00
    // the same day; 24 working hours are Wednesday's 9, not Thursday (a holiday), Friday's
    // 10, and 5 on Monday: 13:00 on Monday 2026-12-07 (12:00 UTC).
    let t = open("S9").await;
    assert_eq!(t["priority"], 3);
    assert_eq!(t["response_due"], t0 + 240 * MIN, "{t}");
    assert_eq!(
        t["resolution_due"],
        t0 + 5 * 24 * 60 * MIN + 4 * 60 * MIN,
        "{t}"
    );
    let full = call(&c, "GET", &format!("/api/v1/tickets/{}", t["id"]), None).await;
    let said = full["timeline"].to_string();
    assert!(
        said.contains(
            "business calendar north-office (Mo-Fr 08:00-18:00 Europe/Berlin, 1 holiday)"
        ),
        "{said}"
    );
    // A region without a calendar counts every minute.
    let t = open("S5").await;
    assert_eq!(t["resolution_due"], t0 + 1440 * MIN, "{t}");
    token.cancel();
    running.wait().await;
}
