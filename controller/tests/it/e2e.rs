//! Enroll with a token, telemetry through the API, inventory to assets, a firmware change in
//! history, offline on stop.

use serde_json::json;

use crate::common::{agent_binary, enrolled_home, eventually, post_json, AgentHome, Controller};

const DEVICE: &str = r#"
[[devices]]
id = "printer-1"
class = "receipt-printer"
vendor = "Epson"
model = "TM-T88VI"
serial = "X5E0000001"
firmware = "FW"
interval_secs = 10
probe = { type = "push" }
"#;

/// Rollups folded every second, so that the scenario sees its per-minute bucket soon.
const FOLD: &str = "[telemetry]\nrollup_every_secs = 1\n";

async fn scenario(ctl: Controller) {
    let (s, v) = ctl
        .call("PUT", "/api/v1/stores/S100", Some(&json!({"code": "S100", "name": "Test store", "region": "north", "timezone": "Europe/Berlin"})), true)
        .await;
    assert_eq!(s, 200, "{v}");
    let (ok, token, err) = ctl.cli(&["enroll-token", "create", "--store", "S100", "--note", "e2e"]);
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("sfe1."), "{token}");

    // The agent's own config points at nothing useful; enrollment fills in the rest.
    let home = AgentHome::new(
        &agent_binary(),
        ([127, 0, 0, 1], 9).into(),
        &DEVICE.replace("FW", "30.05"),
    );
    let out = home.command().args(["enroll", &token]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("enrolled as {}", home.id)));
    // Single-use: the same token again is refused, with the reason.
    let again = home.command().args(["enroll", &token]).output().unwrap();
    assert!(!again.status.success());
    let why = String::from_utf8_lossy(&again.stderr);
    assert!(why.contains("already used"), "{why}");

    // A routine that only looks, at a payment terminal port nobody listens on: it must
    // escalate, and the controller must see the run and the escalation event.
    let closed = storefleet_testkit::ClosedPort::bind();
    let routines = home.dir.path().join("routines.d");
    std::fs::create_dir_all(&routines).unwrap();
    std::fs::write(
        routines.join("terminal.toml"),
        format!(
            "name = \"payment-terminal-check\"\nversion = 2\ndevice = \"terminal-1\"\n\
             [[steps]]\nkind = \"check\"\nname = \"terminal answers\"\naction = \"tcp.check\"\n\
             args = {{ address = \"{}\", timeout_secs = 2 }}\n",
            closed.addr()
        ),
    )
    .unwrap();
    let mut agent = home.spawn();
    let t0 = storefleet_protocol::now_ms() - 60_000;
    let (s, body) = post_json(
        home.ingest,
        "/v1/telemetry",
        &json!({"device": "printer-1", "series": [{"metric": "paper_pct", "points": [{"t": t0, "v": 80.0}, {"t": t0 + 10_000, "v": 79.5}]}]}),
    )
    .await
    .unwrap();
    assert_eq!(s, 200, "{body}");

    // Telemetry visible through the API.
    let series_id = eventually(30, "paper_pct series", || async {
        let v = ctl.get("/api/v1/stores/S100/series?device=printer-1").await;
        v.as_array()?
            .iter()
            .find(|s| s["metric"] == "paper_pct" && s["last_v"] == 79.5)
            .map(|s| s["id"].as_i64().unwrap())
    })
    .await;
    let pts = ctl
        .get(&format!(
            "/api/v1/series/{series_id}/points?res=0&from={}",
            t0 - 1
        ))
        .await;
    let values: Vec<f64> = pts["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["v"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![80.0, 79.5]);
    // The per-minute rollup, once the engines' fold (every second here) has run.
    let minute = eventually(30, "per-minute rollup", || async {
        let v = ctl
            .get(&format!(
                "/api/v1/series/{series_id}/points?res=60&from={}",
                t0 - 120_000
            ))
            .await;
        let points = v["points"].as_array()?.clone();
        let n: f64 = points.len() as f64;
        // Both readings are in it, each counted once: means of 80 and 79.5 in one or two
        // minutes.
        let mean = points.iter().map(|p| p["v"].as_f64().unwrap()).sum::<f64>() / n;
        (!points.is_empty()).then_some((points.len(), mean))
    })
    .await;
    assert!((1..=2).contains(&minute.0), "per-minute rollup: {minute:?}");
    assert!(
        (minute.1 - 79.75).abs() < 1e-9,
        "per-minute rollup: {minute:?}"
    );

    // Inventory made the gateway and the device assets, the device under the gateway.
    let (gateway, device) = eventually(30, "assets from inventory", || async {
        let v = ctl.get("/api/v1/assets?store=S100").await;
        let items = v["items"].as_array()?.clone();
        let g = items.iter().find(|a| a["kind"] == "gateway")?.clone();
        let d = items.iter().find(|a| a["slot"] == "printer-1")?.clone();
        Some((g, d))
    })
    .await;
    assert_eq!(device["serial"], "X5E0000001");
    assert_eq!(device["firmware"], "30.05");
    assert_eq!(device["vendor"], "Epson");
    assert_eq!(device["parent_id"], gateway["id"]);
    assert_eq!(gateway["agent_id"], home.id.as_str());
    assert_eq!(device["region"], "north");

    // Online.
    eventually(30, "agent online", || async {
        let a = ctl.get(&format!("/api/v1/agents/{}", home.id)).await;
        (a["online"] == true).then_some(())
    })
    .await;

    // A routine run by hand on the gateway reaches the controller with its steps, and its
    // escalation arrives as an event carrying the run.
    let out = home
        .command()
        .args(["routine", "run", "payment-terminal-check"])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && printed.contains("escalated"),
        "{printed}"
    );
    let run = eventually(30, "routine run at the controller", || async {
        let v = ctl.get("/api/v1/runs?store=S100&outcome=escalated").await;
        v.as_array()?.first().cloned()
    })
    .await;
    assert_eq!(run["routine"], "payment-terminal-check");
    assert_eq!(run["version"], 2);
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["device"], "terminal-1");
    let output = run["steps"][0]["output"].as_str().unwrap();
    assert!(output.contains(&closed.addr().to_string()), "{run}");
    let escalation = eventually(30, "escalation event", || async {
        let v = ctl.get("/api/v1/events?store=S100").await;
        v.as_array()?
            .iter()
            .find(|e| e["code"] == "routine.escalated")
            .cloned()
    })
    .await;
    assert_eq!(escalation["device"], "terminal-1");
    assert_eq!(escalation["data"]["run"]["id"], run["id"]);

    // A firmware update on the device appears in the asset's history, by the agent.
    home.write_config(([127, 0, 0, 1], 9).into(), &DEVICE.replace("FW", "30.06"));
    agent.hup();
    let id = device["id"].as_i64().unwrap();
    let change = eventually(30, "firmware change in history", || async {
        let h = ctl.get(&format!("/api/v1/assets/{id}/history")).await;
        h.as_array()?
            .iter()
            .find(|c| c["field"] == "firmware")
            .cloned()
    })
    .await;
    assert_eq!(change["before"], "30.05");
    assert_eq!(change["after"], "30.06");
    assert_eq!(change["actor"], format!("agent:{}", home.id));
    assert_eq!(
        ctl.get(&format!("/api/v1/assets/{id}")).await["firmware"],
        "30.06"
    );
    // Still one record for the device and one for the gateway.
    assert_eq!(ctl.get("/api/v1/assets?store=S100").await["total"], 2);

    // People fill what agents cannot know; each change is recorded with who made it.
    let (s, v) = ctl
        .call("PATCH", &format!("/api/v1/assets/{id}"), Some(&json!({"lifecycle": "in_repair", "warranty_end": "2000-01-31", "attrs": {"asset_tag": "INV-7"}})), true)
        .await;
    assert_eq!(s, 200, "{v}");
    let h = ctl.get(&format!("/api/v1/assets/{id}/history")).await;
    let by_admin: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["actor"] == "user:admin/token:first admin token")
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        by_admin,
        vec!["lifecycle", "warranty_end", "attrs.asset_tag"]
    );
    // An inventory report does not undo them.
    agent.hup();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        ctl.get(&format!("/api/v1/assets/{id}")).await["lifecycle"],
        "in_repair"
    );
    // Filters: each narrows to this device, or away from it.
    for (q, n) in [
        ("lifecycle=in_repair", 1),
        ("warranty_days=30", 1),
        ("region=north&class=receipt-printer", 1),
        ("model=TM-T88VI&firmware=30.06", 1),
        ("firmware=30.05", 0),
        ("class=ups", 0),
        ("q=X5E0000001", 1),
    ] {
        let v = ctl.get(&format!("/api/v1/assets?store=S100&{q}")).await;
        assert_eq!(v["total"], n, "{q}: {v}");
    }
    let (s, csv) = ctl
        .call(
            "GET",
            "/api/v1/assets.csv?store=S100&lifecycle=in_repair",
            None,
            true,
        )
        .await;
    assert_eq!(s, 200);
    let csv = csv.as_str().unwrap().to_owned();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(
        csv.lines().nth(1).unwrap().contains("X5E0000001,30.06"),
        "{csv}"
    );

    // The agent stopped shows offline.
    assert!(agent.terminate().success());
    eventually(30, "agent offline", || async {
        let a = ctl.get(&format!("/api/v1/agents/{}", home.id)).await;
        (a["online"] == false && a["presence"] == "offline").then_some(())
    })
    .await;
    let problems = ctl.get("/api/v1/fleet").await;
    assert!(
        problems["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "agent.offline" && p["subject"] == home.id.as_str()),
        "{problems}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_ingest_assets_history_and_presence_with_the_embedded_broker() {
    scenario(Controller::start_with(None, FOLD)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_ingest_assets_history_and_presence_with_mosquitto() {
    let Some(addr) = storefleet_testkit::external_mqtt() else {
        eprintln!("skipped: STOREFLEET_TEST_MQTT is not set (CI sets it to its Mosquitto)");
        return;
    };
    scenario(Controller::start_with(Some(addr), FOLD)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinstalled_gateway_keeps_its_asset_records() {
    let ctl = Controller::start(None);
    let (s, _) = ctl
        .call(
            "PUT",
            "/api/v1/stores/S110",
            Some(&json!({"code": "S110", "name": "Reinstall"})),
            true,
        )
        .await;
    assert_eq!(s, 200);
    // The same hardware (this machine's MACs, the same host name, the same printer) twice,
    // with a new key and agent id the second time, as after wiping and reinstalling.
    let mut ids = Vec::new();
    for round in 0..2 {
        let extra = format!(
            "{}\n[inventory.gateway]\nhostname = \"gw-s110\"\n",
            DEVICE.replace("FW", "30.05")
        );
        let home = enrolled_home(&ctl, "S110", &extra);
        let mut agent = home.spawn();
        let id = home.id.clone();
        eventually(30, "inventory from this install", || async {
            let v = ctl.get("/api/v1/assets?store=S110&kind=gateway").await;
            (v["items"][0]["agent_id"] == id.as_str()).then_some(())
        })
        .await;
        assert!(agent.terminate().success());
        ids.push(id);
        if round == 0 {
            assert_eq!(ctl.get("/api/v1/assets?store=S110").await["total"], 2);
        }
    }
    let v = ctl.get("/api/v1/assets?store=S110").await;
    assert_eq!(
        v["total"], 2,
        "no duplicate records after the reinstall: {v}"
    );
    let gw = ctl.get("/api/v1/assets?store=S110&kind=gateway").await["items"][0].clone();
    let h = ctl
        .get(&format!("/api/v1/assets/{}/history", gw["id"]))
        .await;
    let moved = h
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "agent_id")
        .expect("agent change recorded");
    assert_eq!(moved["before"], ids[0].as_str());
    assert_eq!(moved["after"], ids[1].as_str());
}
