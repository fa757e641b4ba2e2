//! Spare parts and first-time fix with the real process: an engineer notes the parts of
//! their own ticket (not another's), a fix that took a second visit for an ordered part is
//! no first-time fix, and the KPIs count first-time fixes, ratings and parts per engineer,
//! per region and for one store; the store page shows its own service.

use serde_json::{json, Value};

use crate::common::Controller;
use crate::roles::{add_user, call, Auth};
use crate::store_page::{act, open};

async fn as_engineer(
    ctl: &Controller,
    who: &Auth,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let (s, text) = call(ctl, method, path, who, Some(&body)).await;
    (s, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn steps(ctl: &Controller, who: &Auth, id: i64, steps: &[&str]) {
    for step in steps {
        let (s, v) = as_engineer(
            ctl,
            who,
            "POST",
            &format!("/api/v1/tickets/{id}/actions"),
            json!({"action": step}),
        )
        .await;
        assert_eq!(s, 200, "{step}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_and_return_visits_count_in_first_time_fix_per_engineer_and_store() {
    let ctl = Controller::start(None);
    crate::tickets::store(&ctl, "P1", "north").await;
    crate::tickets::store(&ctl, "P2", "north").await;
    crate::tickets::engineer(&ctl, "anna", &["general"], "north").await;
    crate::tickets::engineer(&ctl, "ben", &["general"], "north").await;
    let anna = Auth::Cookie(add_user(&ctl, "anna", "engineer").await);

    // First ticket: fixed on the first visit with a part from the van, rated 5.
    let first = open(&ctl, "P1", "Receipt printer cuts badly").await;
    act(&ctl, first, json!({"action": "assign", "engineer": "anna"})).await;
    steps(&ctl, &anna, first, &["accept", "en_route", "check_in"]).await;
    let (s, p) = as_engineer(
        &ctl,
        &anna,
        "POST",
        &format!("/api/v1/tickets/{first}/parts"),
        json!({"part": "Epson 2141001 cutter unit", "state": "used", "note": "from the van"}),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["state"], "used");
    let (s, v) = as_engineer(
        &ctl,
        &anna,
        "POST",
        &format!("/api/v1/tickets/{first}/parts"),
        json!({"part": "", "quantity": 0}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("part"), "{v}");
    act(
        &ctl,
        first,
        json!({"action": "resolve", "report": "Cutter replaced"}),
    )
    .await;
    act(&ctl, first, json!({"action": "close", "rating": 5})).await;

    // Second ticket: the part has to be ordered; anna leaves and comes back: two visits.
    let second = open(&ctl, "P2", "Scale display dead").await;
    act(
        &ctl,
        second,
        json!({"action": "assign", "engineer": "anna"}),
    )
    .await;
    steps(&ctl, &anna, second, &["accept", "check_in"]).await;
    let (s, p) = as_engineer(
        &ctl,
        &anna,
        "POST",
        &format!("/api/v1/tickets/{second}/parts"),
        json!({"part": "Display board DB-7", "quantity": 2, "state": "ordered", "note": "PO 4471"}),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let part = p["id"].as_i64().unwrap();
    steps(&ctl, &anna, second, &["en_route", "check_in"]).await;
    let (s, p) = as_engineer(
        &ctl,
        &anna,
        "PATCH",
        &format!("/api/v1/tickets/{second}/parts/{part}"),
        json!({"state": "used"}),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["note"], "PO 4471", "the note is kept");
    act(
        &ctl,
        second,
        json!({"action": "resolve", "report": "Display replaced"}),
    )
    .await;
    act(&ctl, second, json!({"action": "close", "rating": 3})).await;
    let t = ctl.get(&format!("/api/v1/tickets/{second}")).await;
    assert_eq!(t["ticket"]["visits"], 2, "{t}");
    assert_eq!(t["ticket"]["parts"][0]["quantity"], 2, "{t}");
    let said = t["timeline"].to_string();
    assert!(
        said.contains("Part Display board DB-7 × 2: ordered (PO 4471)"),
        "{said}"
    );

    // Not hers: refused as if it did not exist; a viewer may not note parts at all.
    let other = open(&ctl, "P1", "Someone else's").await;
    act(&ctl, other, json!({"action": "assign", "engineer": "ben"})).await;
    let (s, _) = as_engineer(
        &ctl,
        &anna,
        "POST",
        &format!("/api/v1/tickets/{other}/parts"),
        json!({"part": "x"}),
    )
    .await;
    assert_eq!(s, 404);
    let viewer = Auth::Cookie(add_user(&ctl, "vera", "viewer").await);
    let (s, _) = as_engineer(
        &ctl,
        &viewer,
        "POST",
        &format!("/api/v1/tickets/{first}/parts"),
        json!({"part": "x"}),
    )
    .await;
    assert_eq!(s, 403);

    // The figures: one first-time fix of two visited tickets, mean rating 4, three parts.
    let k = ctl.get("/api/v1/kpis?days=1").await;
    let a = &k["engineers"]["anna"];
    assert_eq!(a["tickets_resolved"], 2, "{k}");
    assert_eq!(a["first_time_fixes"], 1, "{k}");
    assert_eq!(a["first_time_fix_rate"], 0.5, "{k}");
    assert_eq!(a["mean_rating"], 4.0, "{k}");
    assert_eq!(a["parts_used"], 3, "{k}");
    assert_eq!(k["regions"]["north"]["first_time_fix_rate"], 0.5, "{k}");
    let k = ctl.get("/api/v1/kpis?days=1&store=P1").await;
    assert_eq!(k["fleet"]["tickets_resolved"], 1, "{k}");
    assert_eq!(k["fleet"]["first_time_fix_rate"], 1.0, "{k}");
    assert_eq!(k["fleet"]["mean_rating"], 5.0, "{k}");
    let (s, v) = ctl.call("GET", "/api/v1/kpis?store=NOPE", None, true).await;
    assert_eq!(s, 404, "{v}");

    // The pages: the store's own service, the KPI page's engineers, the ticket's parts.
    let cookie = ctl.admin_session().await;
    let (_, html) = ctl.page(&cookie, "/stores/P2").await;
    let tiles = crate::store_page::section(&html, "store-tickets");
    assert!(
        tiles.contains("3.0 / 5 (1)") && tiles.contains("0 %"),
        "{tiles}"
    );
    let (_, html) = ctl.page(&cookie, "/kpis?days=1&store=P1").await;
    assert!(
        html.contains("Service KPIs of store P1") && html.contains("5.0 / 5 (1)"),
        "{html}"
    );
    let (s, _) = ctl.page(&cookie, "/kpis?store=NOPE").await;
    assert_eq!(s, 404);
    let (_, html) = ctl.page(&cookie, "/kpis?days=1").await;
    assert!(
        html.contains("id=\"kpi-engineers\"") && html.contains("50 % (1/2)"),
        "{html}"
    );
    let (_, html) = ctl.page(&cookie, &format!("/tickets/{second}")).await;
    let parts = crate::store_page::section(&html, "parts");
    assert!(
        parts.contains("Display board DB-7") && parts.contains("part-used"),
        "{parts}"
    );
}
