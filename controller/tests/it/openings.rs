//! Opening a store from a format, with the real `storefleet serve` and a real
//! `storefleet-agent`: the readiness board says what is missing before the gateway exists,
//! the watch warns (an event and a ticket) inside the warning's days, the format's routine
//! is pushed to the gateway once it is online and runs there, the devices the gateway
//! reports fill the format's places (another model is misconfigured), a person's check is
//! ticked, and once everything holds the store is ready and the warning's ticket resolves
//! itself. Runs on PostgreSQL too (`STOREFLEET_TEST_DATABASE=postgres`).

use serde_json::{json, Value};

use crate::common::{eventually, Controller};

/// Today plus `d` days in Berlin (the test store's zone), `YYYY-MM-DD`.
fn day(d: i64) -> String {
    let now = jiff::Timestamp::now()
        .in_tz("Europe/Berlin")
        .unwrap()
        .date();
    now.checked_add(jiff::Span::new().days(d))
        .unwrap()
        .to_string()
}

fn format(pos: bool) -> Value {
    let mut devices = vec![
        json!({"class": "receipt-printer", "profile": "epson tm-t88"}),
        json!({"class": "ups", "profile": "Eaton"}),
    ];
    if pos {
        devices.push(json!({"class": "pos", "count": 2}));
    }
    json!({
        "name": "express",
        "description": "Small city store",
        "devices": devices,
        "tasks": [{"type": "routine", "name": "printer-reset", "ignore_window": true}],
        "checklist": ["Staff trained"]
    })
}

async fn readiness(ctl: &Controller, store: &str) -> Value {
    let (s, v) = ctl
        .call(
            "GET",
            &format!("/api/v1/stores/{store}/readiness"),
            None,
            true,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

fn states(r: &Value) -> Vec<(String, String)> {
    r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["class"].as_str().unwrap().to_owned(),
                d["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_opened_from_a_format_is_warned_about_then_made_ready() {
    let config = crate::tickets::RULES.replacen(
        "[tickets]\n",
        "[tickets]\nopening_check_secs = 1\nopening_warn_days = 3\n",
        1,
    );
    let ctl = Controller::start_with(None, &config);
    crate::tickets::store(&ctl, "O1", "north").await;
    crate::tickets::engineer(&ctl, "ines", &["install"], "north").await;

    // A format is checked line by line.
    let mut bad = format(true);
    bad["devices"][2]["count"] = json!(0);
    let (s, v) = ctl
        .call("PUT", "/api/v1/formats/express", Some(&bad), true)
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("devices[3] count 0"),
        "{v}"
    );
    let (s, v) = ctl
        .call("PUT", "/api/v1/formats/express", Some(&format(true)), true)
        .await;
    assert_eq!(s, 200, "{v}");

    // An opening names its format and a real day.
    let (s, v) = ctl
        .call(
            "PUT",
            "/api/v1/stores/O1/opening",
            Some(&json!({"format": "express", "opens_on": "2026-02-30"})),
            true,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("opens_on"), "{v}");
    let (s, v) = ctl
        .call(
            "PUT",
            "/api/v1/stores/NOPE/opening",
            Some(&json!({"format": "express", "opens_on": day(2)})),
            true,
        )
        .await;
    assert_eq!(s, 404, "{v}");
    let (ok, out, err) = ctl.cli(&[
        "stores",
        "open",
        "O1",
        "--format",
        "express",
        "--on",
        &day(2),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("opens") && out.contains("in 2 days"), "{out}");
    assert!(out.contains("4 devices missing"), "{out}");

    // Before any gateway: everything missing, the task waits, the gateway check is open.
    let r = readiness(&ctl, "O1").await;
    assert_eq!(r["ready"], false);
    assert_eq!(r["days_left"], 2);
    assert!(states(&r).iter().all(|(_, s)| s == "missing"), "{r}");
    assert_eq!(r["tasks"][0]["state"], "pending", "{r}");
    assert_eq!(r["checklist"][0]["done"], false, "{r}");
    assert!(
        r["checklist"][0]["note"]
            .as_str()
            .unwrap()
            .contains("no gateway enrolled"),
        "{r}"
    );

    // Two days before, inside the three warning days: an event and a ticket, once.
    let ticket = eventually(30, "the opening's ticket", || async {
        let v = ctl.get("/api/v1/tickets?store=O1").await;
        v.as_array().and_then(|a| a.first().cloned())
    })
    .await;
    assert!(
        ticket["title"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Store O1 not ready to open on {}", day(2))),
        "{ticket}"
    );
    assert_eq!(ticket["skill"], "install");
    let id = ticket["id"].as_i64().unwrap();
    eventually(30, "the installer is assigned", || async {
        let t = ctl.get(&format!("/api/v1/tickets/{id}")).await;
        (t["ticket"]["engineer"] == "ines").then_some(())
    })
    .await;
    let events = ctl.get("/api/v1/events?store=O1").await;
    let warned: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["code"] == "store.not_ready")
        .collect();
    assert_eq!(warned.len(), 1, "{events}");
    assert!(
        warned[0]["message"].as_str().unwrap().contains("opens on"),
        "{events}"
    );

    // The gateway: an Epson printer (fits), an APC UPS (the format wants an Eaton).
    let home = crate::tickets::gateway(&ctl, "O1", true);
    let _agent = home.spawn();
    crate::tickets::printer(&home, true).await;
    crate::tickets::reading(&home, "ups-1", "on_battery", 0.0).await;
    let r = eventually(60, "the gateway's devices and its routine", || async {
        let r = readiness(&ctl, "O1").await;
        let printer_ready = states(&r).contains(&("receipt-printer".into(), "ready".into()));
        (printer_ready && r["tasks"][0]["state"] == "ready").then_some(r)
    })
    .await;
    assert_eq!(r["checklist"][0]["done"], true, "{r}");
    let ups = r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["class"] == "ups")
        .unwrap();
    assert_eq!(ups["state"], "misconfigured", "{r}");
    assert_eq!(ups["device"], "ups-1");
    assert!(ups["note"].as_str().unwrap().contains("APC SMT1500"), "{r}");
    // The routine ran on the gateway as a one-store task of the format's.
    let task = r["tasks"][0]["task"].as_str().unwrap().to_owned();
    let t = ctl.get(&format!("/api/v1/tasks/{task}")).await;
    assert_eq!(t["created_by"], "format express", "{t}");
    assert_eq!(t["total"], 1, "{t}");

    // A check the format does not have is named; the real one is ticked by its person.
    let (s, v) = ctl
        .call(
            "POST",
            "/api/v1/stores/O1/checks",
            Some(&json!({"item": "Cake ordered"})),
            true,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("Staff trained"),
        "{v}"
    );
    let (ok, out, err) = ctl.cli(&["stores", "check", "O1", "Staff trained"]);
    assert!(ok, "{err}");
    assert!(out.contains("[x] Staff trained"), "{out}");

    // The format in use cannot go; changed (no tills, any UPS), the store is ready and
    // the warning's ticket resolves itself.
    let (s, v) = ctl
        .call("DELETE", "/api/v1/formats/express", None, true)
        .await;
    assert_eq!(s, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("O1"), "{v}");
    let mut f = format(false);
    f["devices"][1]["profile"] = json!("");
    let (s, v) = ctl
        .call("PUT", "/api/v1/formats/express", Some(&f), true)
        .await;
    assert_eq!(s, 200, "{v}");
    // Ready once the UPS's first reading is in too (it may come a little after the printer's).
    eventually(30, "the store ready", || async {
        (readiness(&ctl, "O1").await["ready"] == true).then_some(())
    })
    .await;
    eventually(30, "the opening's ticket resolves itself", || async {
        let t = ctl.get(&format!("/api/v1/tickets/{id}")).await;
        (t["ticket"]["status"] == "resolved").then_some(())
    })
    .await;

    // The board and the pages.
    let (ok, out, err) = ctl.cli(&["openings"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("O1") && out.contains("2/2") && out.contains("ready"),
        "{out}"
    );
    let cookie = ctl.admin_session().await;
    let (s, html) = ctl.page(&cookie, "/openings").await;
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("/stores/O1/readiness"), "{html}");
    let (s, html) = ctl.page(&cookie, "/stores/O1").await;
    assert_eq!(s, 200);
    assert!(html.contains("id=\"store-readiness\""), "{html}");
    // A format is changed from its own TOML on the formats page.
    let (_, html) = ctl.page(&cookie, "/formats?edit=express").await;
    assert!(
        html.contains("name = &quot;express&quot;") || html.contains("name = \"express\""),
        "{html}"
    );
    let (s, html) = ctl.page(&cookie, "/stores/O1/readiness").await;
    assert_eq!(s, 200);
    assert!(
        html.contains("Staff trained") && html.contains("user:admin"),
        "{html}"
    );

    // Opened: off the board.
    let (ok, _, err) = ctl.cli(&["stores", "opened", "O1"]);
    assert!(ok, "{err}");
    let board = ctl.get("/api/v1/openings").await;
    assert_eq!(board, json!([]));
}
