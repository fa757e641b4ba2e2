//! Faults to tickets with the real `storefleet serve` process and real `storefleet-agent`
//! binaries: a printer fault the agent's routine heals opens no ticket; one it cannot heal
//! opens exactly one, assigned to the least-loaded printer engineer of the region and
//! carrying the attempt; a gateway going offline opens one store ticket and no device
//! tickets; a flapping UPS opens one ticket, resolves after its grace time and reopens on
//! a recurrence; webhooks reach a real HTTP receiver, are retried after 500s and survive a
//! controller crash in between.
//!
//! The "printer" is a stand-in the agent's routine can act on: the routine checks it with
//! an allow-listed command (`test -f ok`) and resets it with another (`touch ok`, or for a
//! printer that stays broken, `true`); its state reaches the agent through the loopback
//! ingest endpoint as store software would send it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{enrolled_home, eventually, post_json, AgentHome, Controller};

/// Short rule timings so that the tests run in seconds.
pub const RULES: &str = r#"
[tickets]
evaluate_interval_ms = 200

[[rules]]
name = "printer-down"
title = "Receipt printer down"
when = { kind = "device_down", class = "receipt-printer" }
for_secs = 1
clear_after_secs = 1
severity = "major"
skill = "printers"
routine = "printer-reset"
remediation_timeout_secs = 60
resolve_grace_secs = 2

[[rules]]
name = "gateway-offline"
title = "Store gateway offline"
when = { kind = "gateway_offline" }
for_secs = 1
clear_after_secs = 1
severity = "critical"
impact = "store"
skill = "network"

[[rules]]
name = "ups-on-battery"
title = "UPS on battery"
when = { kind = "metric", metric = "on_battery", class = "ups", above = 0.5 }
for_secs = 1
clear_after_secs = 1
severity = "major"
impact = "store"
skill = "power"
resolve_grace_secs = 3
"#;

fn agent_config(dir: &Path, fixed_by_reset: bool) -> String {
    let ok = dir.join("printer-ok");
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let user = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let reset = if fixed_by_reset {
        format!("[\"/usr/bin/touch\", \"{}\"]", ok.display())
    } else {
        "[\"/bin/true\"]".to_owned()
    };
    format!(
        r#"
[routines]
allow = ["exec"]

[routines.commands.printer-ok]
argv = ["/usr/bin/test", "-f", "{ok}"]
user = "{user}"

[routines.commands.printer-reset]
argv = {reset}
user = "{user}"

[[devices]]
id = "printer-1"
class = "receipt-printer"
vendor = "Epson"
model = "TM-T88VI"
serial = "X5E-{serial:08x}"
firmware = "30.05"
interval_secs = 10
probe = {{ type = "push" }}

[[devices]]
id = "ups-1"
class = "ups"
vendor = "APC"
model = "SMT1500"
serial = "UPS-{serial:08x}"
firmware = "1.0"
interval_secs = 10
probe = {{ type = "push" }}
"#,
        ok = ok.display(),
        serial = rand::random::<u32>()
    )
}

const ROUTINE: &str = r#"
name = "printer-reset"
version = 1
device = "printer-1"

[[triggers.condition]]
device = "printer-1"
metric = "up"
below = 0.5
for_secs = 1
cooldown_secs = 600

[[steps]]
kind = "check"
name = "printer answers"
action = "exec"
args = { command = "printer-ok" }

[[steps]]
kind = "action"
name = "reset the printer"
action = "exec"
args = { command = "printer-reset" }

[[steps]]
kind = "verify"
name = "printer answers again"
action = "exec"
args = { command = "printer-ok" }
"#;

pub async fn store(ctl: &Controller, code: &str, region: &str) {
    let (s, v) = ctl
        .call(
            "PUT",
            &format!("/api/v1/stores/{code}"),
            Some(&json!({"code": code, "name": code, "region": region, "address": "Hauptstrasse 1", "timezone": "Europe/Berlin"})),
            true,
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

pub async fn engineer(ctl: &Controller, id: &str, skills: &[&str], region: &str) {
    let body = json!({"id": id, "name": id, "skills": skills, "regions": [region], "timezone": "Europe/Berlin", "shift": "24/7", "capacity": 5});
    let (s, v) = ctl
        .call("PUT", &format!("/api/v1/engineers/{id}"), Some(&body), true)
        .await;
    assert_eq!(s, 200, "{v}");
}

pub fn gateway(ctl: &Controller, code: &str, fixed_by_reset: bool) -> AgentHome {
    let home = enrolled_home(ctl, code, "");
    // The config needs the home's own directory for the printer's state file.
    let extra = agent_config(home.dir.path(), fixed_by_reset);
    let text = std::fs::read_to_string(home.config_path()).unwrap();
    std::fs::write(home.config_path(), format!("{text}\n{extra}")).unwrap();
    let routines = home.dir.path().join("routines.d");
    std::fs::create_dir_all(&routines).unwrap();
    std::fs::write(routines.join("printer-reset.toml"), ROUTINE).unwrap();
    home
}

pub async fn reading(home: &AgentHome, device: &str, metric: &str, v: f64) {
    let (s, b) = post_json(
        home.ingest,
        "/v1/telemetry",
        &json!({"device": device, "series": [{"metric": metric, "points": [{"v": v}]}]}),
    )
    .await
    .unwrap();
    assert_eq!(s, 200, "{b}");
}

pub async fn printer(home: &AgentHome, up: bool) {
    let (code, msg) = if up {
        ("device.up", "printer-1 is back")
    } else {
        ("device.down", "printer-1 is down: paper jam")
    };
    let (s, b) = post_json(
        home.ingest,
        "/v1/events",
        &json!({"code": code, "severity": if up {"info"} else {"error"}, "device": "printer-1", "message": msg}),
    )
    .await
    .unwrap();
    assert_eq!(s, 200, "{b}");
    reading(home, "printer-1", "up", if up { 1.0 } else { 0.0 }).await;
}

pub async fn tickets_of(ctl: &Controller, store: &str) -> Vec<Value> {
    ctl.get(&format!("/api/v1/tickets?store={store}"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

pub async fn full(ctl: &Controller, id: i64) -> Value {
    ctl.get(&format!("/api/v1/tickets/{id}")).await
}

pub async fn wait_online(ctl: &Controller, store: &str) {
    eventually(30, &format!("{store} online with its devices"), || async {
        let a = ctl.get(&format!("/api/v1/agents?store={store}")).await;
        let online = a.as_array()?.iter().any(|a| a["online"] == true);
        let d = ctl.get(&format!("/api/v1/devices?store={store}")).await;
        let classes = d
            .as_array()?
            .iter()
            .any(|d| d["class"] == "receipt-printer");
        (online && classes).then_some(())
    })
    .await;
}

/// Store `code` in region north with Anna (printers), its gateway online, and its printer
/// just gone down for good (its reset does not help); the gateway and its agent process.
pub async fn broken_printer(
    ctl: &Controller,
    code: &str,
) -> (AgentHome, storefleet_testkit::agent::AgentProcess) {
    store(ctl, code, "north").await;
    engineer(ctl, "anna", &["printers"], "north").await;
    let home = gateway(ctl, code, false);
    let agent = home.spawn();
    wait_online(ctl, code).await;
    printer(&home, false).await;
    (home, agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printer_faults_heal_or_become_one_assigned_ticket_and_gateways_open_store_tickets() {
    let ctl = Controller::start_with(None, RULES);
    store(&ctl, "T1", "north").await;
    store(&ctl, "T2", "north").await;
    engineer(&ctl, "anna", &["printers"], "north").await;
    engineer(&ctl, "ben", &["printers", "pos"], "north").await;
    engineer(&ctl, "cem", &["pos"], "north").await;
    let (ok, _, err) = ctl.cli(&[
        "engineers",
        "add",
        "dora",
        "--name",
        "Dora",
        "--skills",
        "printers",
        "--regions",
        "south",
        "--timezone",
        "Europe/Berlin",
    ]);
    assert!(ok, "{err}");
    // Ben already carries a ticket: Anna has the lowest load.
    let (s, v) = ctl
        .call("POST", "/api/v1/tickets", Some(&json!({"store": "T2", "title": "Scale drifts", "skill": "pos", "severity": "minor"})), true)
        .await;
    assert_eq!(s, 201, "{v}");
    let manual = v["id"].as_i64().unwrap();
    eventually(10, "the manual ticket assigned", || async {
        (full(&ctl, manual).await["ticket"]["engineer"] == "ben").then_some(())
    })
    .await;

    let healable = gateway(&ctl, "T1", true);
    let broken = gateway(&ctl, "T2", false);
    let mut a1 = healable.spawn();
    let _a2 = broken.spawn();
    wait_online(&ctl, "T1").await;
    wait_online(&ctl, "T2").await;

    printer(&healable, false).await;
    printer(&broken, false).await;

    // T2: the reset does not help; exactly one ticket, to Anna, with the attempt.
    let found = crate::common::within(60, || async {
        let ts = tickets_of(&ctl, "T2").await;
        ts.into_iter().find(|t| t["rule"] == "printer-down")
    })
    .await;
    let Some(t) = found else {
        panic!(
            "no printer ticket for T2\nalerts: {}\nruns: {}\ndevices: {}\nevents: {}",
            ctl.get("/api/v1/alerts?store=T2").await,
            ctl.get("/api/v1/runs?store=T2").await,
            ctl.get("/api/v1/devices?store=T2").await,
            ctl.get("/api/v1/events?store=T2").await
        );
    };
    let id = t["id"].as_i64().unwrap();
    let f = eventually(20, "the ticket assigned with the attempt on it", || async {
        let f = full(&ctl, id).await;
        let heal = f["timeline"].as_array()?.iter().any(|e| {
            e["kind"] == "self_heal"
                && e["data"]["routine"] == "printer-reset"
                && e["data"]["outcome"] == "escalated"
        });
        (f["ticket"]["engineer"] == "anna" && heal).then_some(f)
    })
    .await;
    let tl = f["timeline"].as_array().unwrap();
    let attempt = tl
        .iter()
        .find(|e| e["data"]["routine"] == "printer-reset")
        .unwrap();
    assert!(
        attempt["data"]["steps"].as_array().unwrap().len() >= 2,
        "{attempt}"
    );
    let why = tl
        .iter()
        .find(|e| {
            e["kind"] == "assignment" && e["text"].as_str().unwrap().starts_with("Assigned anna")
        })
        .unwrap();
    assert!(why["text"].as_str().unwrap().contains("load 0/5"), "{why}");
    assert!(
        why["text"]
            .as_str()
            .unwrap()
            .contains("dora (not in region north)"),
        "{why}"
    );
    assert_eq!(f["ticket"]["store_name"], "T2");
    // The overview shows the problem with its ticket, engineer and SLA clock.
    let cookie = ctl.admin_session().await;
    let row = eventually(15, "the printer problem on the overview", || async {
        let (_, html) = ctl.page(&cookie, "/").await;
        let table = &html[html.find("id=\"problems\"")?..];
        let table = &table[..table.find("</table>")?];
        table
            .split("<tr>")
            .find(|r| r.contains("T2") && r.contains("device.down"))
            .map(str::to_owned)
    })
    .await;
    assert!(row.contains(&format!("href=\"/tickets/{id}\"")), "{row}");
    assert!(row.contains("anna") && row.contains("sla"), "{row}");
    // The typed client (the CLI's) reads the same ticket.
    let typed = ctl.client().ticket(id).await.unwrap();
    assert_eq!(
        (
            typed.ticket.store_name.as_str(),
            typed.ticket.engineer.as_deref(),
            typed.timeline.len()
        ),
        ("T2", Some("anna"), tl.len())
    );
    let (ok, text, err) = ctl.cli(&["tickets", "show", &id.to_string()]);
    assert!(ok, "{err}");
    assert!(
        text.contains("Self-heal printer-reset") && text.contains("engineer anna"),
        "{text}"
    );
    let (ok, list, err) = ctl.cli(&["tickets", "--store", "T2"]);
    assert!(ok, "{err}");
    assert!(list.contains("Receipt printer down: printer-1"), "{list}");
    let (ok, team, _) = ctl.cli(&["engineers"]);
    assert!(ok && team.contains("dora"), "{team}");
    assert_eq!(f["ticket"]["skill"], "printers");
    assert!(f["ticket"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["class"] == "receipt-printer"));

    // T1: healed by its routine; the printer reports back up; no ticket ever.
    eventually(60, "T1's printer alert healed", || async {
        let a = ctl.get("/api/v1/alerts?store=T1").await;
        a.as_array()?
            .iter()
            .find(|a| a["disposition"] == "healed")
            .map(|_| ())
    })
    .await;
    assert!(
        healable.dir.path().join("printer-ok").exists(),
        "the reset ran"
    );
    printer(&healable, true).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        tickets_of(&ctl, "T1").await.is_empty(),
        "{:?}",
        tickets_of(&ctl, "T1").await
    );
    assert_eq!(
        tickets_of(&ctl, "T2")
            .await
            .iter()
            .filter(|t| t["rule"] == "printer-down")
            .count(),
        1
    );

    // T1's gateway dies: one store ticket, and the printer going down meanwhile opens none.
    a1.kill9();
    let found = crate::common::within(60, || async {
        tickets_of(&ctl, "T1")
            .await
            .into_iter()
            .find(|t| t["rule"] == "gateway-offline")
    })
    .await;
    let Some(store_ticket) = found else {
        panic!(
            "no store ticket for T1\nalerts: {}\nagents: {}\ntickets: {:?}",
            ctl.get("/api/v1/alerts?store=T1").await,
            ctl.get("/api/v1/agents?store=T1").await,
            tickets_of(&ctl, "T1").await
        );
    };
    assert_eq!(store_ticket["priority"], 1);
    assert_eq!(store_ticket["skill"], "network");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t1 = tickets_of(&ctl, "T1").await;
    assert_eq!(t1.len(), 1, "{t1:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_ups_opens_one_ticket_resolves_after_grace_and_reopens_on_recurrence() {
    let ctl = Controller::start_with(None, RULES);
    store(&ctl, "T3", "east").await;
    let home = gateway(&ctl, "T3", true);
    let _agent = home.spawn();
    wait_online(&ctl, "T3").await;
    for i in 0..6 {
        reading(&home, "ups-1", "on_battery", f64::from(i % 2 == 0)).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    reading(&home, "ups-1", "on_battery", 1.0).await;
    let t = eventually(30, "a UPS ticket", || async {
        tickets_of(&ctl, "T3")
            .await
            .into_iter()
            .find(|t| t["rule"] == "ups-on-battery")
    })
    .await;
    let id = t["id"].as_i64().unwrap();
    for v in [0.0, 1.0, 0.0, 1.0] {
        reading(&home, "ups-1", "on_battery", v).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert_eq!(
        tickets_of(&ctl, "T3").await.len(),
        1,
        "flapping opens one ticket"
    );
    // Back on mains for good: resolved after the grace time, without a visit.
    reading(&home, "ups-1", "on_battery", 0.0).await;
    eventually(30, "the UPS ticket resolved", || async {
        (full(&ctl, id).await["ticket"]["status"] == "resolved").then_some(())
    })
    .await;
    // It happens again within the reopen window: the same ticket, reopened.
    reading(&home, "ups-1", "on_battery", 1.0).await;
    let f = eventually(30, "the UPS ticket reopened", || async {
        let f = full(&ctl, id).await;
        (f["ticket"]["reopened"] == 1 && f["ticket"]["status"] != "resolved").then_some(f)
    })
    .await;
    assert_eq!(tickets_of(&ctl, "T3").await.len(), 1);
    assert!(f["timeline"].as_array().unwrap().iter().any(|e| e["text"]
        .as_str()
        .unwrap_or_default()
        .starts_with("Recurrence")));
}

/// A webhook receiver: answers 500 while `failing` is set, else 204, and keeps what it got.
pub(crate) struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<(String, String, String)>>>,
    pub failing: Arc<std::sync::atomic::AtomicBool>,
    pub attempts: Arc<std::sync::atomic::AtomicU32>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        use axum::http::{HeaderMap, StatusCode};
        let got = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let attempts = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (g, f, n) = (got.clone(), failing.clone(), attempts.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |h: HeaderMap, body: String| {
                let (g, f, n) = (g.clone(), f.clone(), n.clone());
                async move {
                    n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if f.load(std::sync::atomic::Ordering::SeqCst) {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let hv = |k: &str| {
                        h.get(k)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    g.lock().unwrap().push((
                        hv("x-storefleet-event"),
                        hv("x-storefleet-signature"),
                        body,
                    ));
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Receiver {
            addr,
            got,
            failing,
            attempts,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_after_500_and_survive_a_controller_crash() {
    let rx = Receiver::start().await;
    let secret = "a-very-secret-webhook-key";
    let hook = format!(
        "[[webhooks]]\nname = \"itsm\"\nurl = \"http://{}/hook\"\nsecret = \"{secret}\"\nevents = [\"ticket.created\", \"ticket.resolved\"]\n",
        rx.addr
    );
    let mut ctl = Controller::start_with(None, &hook);
    store(&ctl, "W1", "west").await;
    let (s, v) = ctl
        .call("POST", "/api/v1/tickets", Some(&json!({"store": "W1", "title": "Door sensor", "skill": "general", "severity": "minor"})), true)
        .await;
    assert_eq!(s, 201, "{v}");
    let first = v["id"].as_i64().unwrap();
    eventually(30, "two failed attempts", || async {
        (rx.attempts.load(std::sync::atomic::Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    // Crash the controller with the delivery still owed, open nothing new; bring the
    // receiver back; the restarted controller delivers what it owed.
    ctl.kill();
    rx.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    ctl.spawn();
    let (event, sig, body) = eventually(60, "the delivery after the restart", || async {
        rx.got.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(event, "ticket.created");
    assert_eq!(
        sig,
        storefleet_controller::webhooks::signature(secret, body.as_bytes())
    );
    let b: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(b["data"]["id"], first);
    assert_eq!(b["data"]["store"], "W1");
    // A resolution is sent too; an assignment is not (not subscribed).
    let (s, _) = ctl
        .call(
            "POST",
            &format!("/api/v1/tickets/{first}/actions"),
            Some(&json!({"action": "resolve", "report": "replaced"})),
            true,
        )
        .await;
    assert_eq!(s, 200);
    eventually(30, "the resolution delivered", || async {
        rx.got
            .lock()
            .unwrap()
            .iter()
            .any(|g| g.0 == "ticket.resolved")
            .then_some(())
    })
    .await;
    assert_eq!(
        rx.got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.0 == "ticket.created")
            .count(),
        1
    );
    assert!(!ctl.log().contains(secret), "the secret reached the log");
}
