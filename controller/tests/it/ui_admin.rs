//! What only the CLI and the API did, done from the UI's forms with the real process: a
//! store added and changed, an engineer added and sent off shift, a silence now and a
//! maintenance window in the store's own time, a person added, promoted, disabled and
//! deleted, an API token made (shown once, working) and revoked, a task previewed against
//! a real enrolled gateway and pushed, and the agent's page pinging and revoking it.

use crate::common::{enrolled_home, Controller};

fn has(html: &str, what: &str) {
    assert!(html.contains(what), "no {what:?} in {html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_does_what_the_cli_does() {
    let ctl = Controller::start(None);
    let cookie = ctl.admin_session().await;
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let (ctl, cookie) = (&ctl, cookie.clone());
        async move {
            let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ctl.post_form(&cookie, path, &f).await
        }
    };
    let s = |v: &str| v.to_owned();

    // Stores: added, listed, changed from its page; a bad place is named.
    let (st, to, text) = post(
        "/stores",
        vec![
            ("code", s("U1")),
            ("name", s("Altona")),
            ("region", s("north")),
            ("timezone", s("Europe/Berlin")),
            ("hours", s("Mo-Sa 08:00-20:00")),
            ("tags", s("pilot, mall")),
            ("at", s("53.55,9.93")),
        ],
    )
    .await;
    assert_eq!((st, to.as_str()), (303, "/stores/U1"), "{text}");
    let (st, _, text) = post(
        "/stores",
        vec![("code", s("U2")), ("name", s("X")), ("at", s("99,0"))],
    )
    .await;
    assert_eq!(st, 400, "{text}");
    has(&text, "place");
    let (_, html) = ctl.page(&cookie, "/stores").await;
    has(&html, "/stores/U1");
    has(&html, "pilot, mall");
    let (_, html) = ctl.page(&cookie, "/stores/U1").await;
    has(&html, "id=\"edit-store\"");
    let (st, _, _) = post(
        "/stores",
        vec![
            ("code", s("U1")),
            ("name", s("Altona Nord")),
            ("region", s("north")),
            ("timezone", s("Europe/Berlin")),
            ("tags", s("pilot,mall")),
            ("update", s("true")),
        ],
    )
    .await;
    assert_eq!(st, 303);
    assert_eq!(ctl.get("/api/v1/stores/U1").await["name"], "Altona Nord");

    // Engineers.
    let (st, _, text) = post(
        "/engineers",
        vec![
            ("id", s("ute")),
            ("name", s("Ute")),
            ("skills", s("printers, network")),
            ("regions", s("north")),
            ("level", s("specialist")),
            ("shift", s("Mo-Fr 07:00-16:00")),
            ("timezone", s("Europe/Berlin")),
            ("capacity", s("4")),
            ("home", s("53.6,10.0")),
        ],
    )
    .await;
    assert_eq!(st, 303, "{text}");
    let (st, _, _) = post("/engineers/ute/status", vec![("status", s("off"))]).await;
    assert_eq!(st, 303);
    let list = ctl.get("/api/v1/engineers").await;
    let ute = &list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "ute")
        .unwrap();
    assert_eq!(
        ute["skills"],
        serde_json::json!(["printers", "network"]),
        "{ute}"
    );
    assert_eq!(
        (
            ute["level"].as_str(),
            ute["status"].as_str(),
            ute["capacity"].as_u64()
        ),
        (Some("specialist"), Some("off"), Some(4))
    );
    assert_eq!(ute["home"]["lat"], 53.6);
    let (_, html) = ctl.page(&cookie, "/engineers").await;
    has(&html, "Mo-Fr 07:00-16:00");

    // Silences: now for 30 minutes; a window in the store's time (Berlin, UTC+1 in winter).
    let (st, _, text) = post(
        "/silences",
        vec![
            ("store", s("U1")),
            ("minutes", s("30")),
            ("reason", s("refit")),
        ],
    )
    .await;
    assert_eq!(st, 303, "{text}");
    let (st, _, text) = post(
        "/silences",
        vec![
            ("store", s("U1")),
            ("device", s("printer-1")),
            ("starts", s("2031-01-10T22:00")),
            ("ends", s("2031-01-11T02:00")),
            ("reason", s("night works")),
        ],
    )
    .await;
    assert_eq!(st, 303, "{text}");
    let (st, _, text) = post(
        "/silences",
        vec![("store", s("U9")), ("minutes", s("5")), ("reason", s("x"))],
    )
    .await;
    assert_eq!(st, 400);
    has(&text, "U9");
    let sil = ctl.get("/api/v1/silences").await;
    let window = sil
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["reason"] == "night works")
        .unwrap();
    assert_eq!(window["starts_at"], 1_925_845_200_000_i64, "{window}"); // 2031-01-10 21:00 UTC
    assert_eq!(window["device"], "printer-1");
    let (_, html) = ctl.page(&cookie, "/silences").await;
    has(&html, "2031-01-10 22:00 CET");
    let id = window["id"].as_i64().unwrap();
    let (st, _, _) = ctl
        .post_form(&cookie, &format!("/silences/{id}/end"), &[])
        .await;
    assert_eq!(st, 303);

    // People.
    let (st, _, text) = post(
        "/people",
        vec![
            ("name", s("val")),
            ("role", s("viewer")),
            ("password", s("val-password-1")),
        ],
    )
    .await;
    assert_eq!(st, 303, "{text}");
    let (st, _, _) = post(
        "/people/val",
        vec![("do", s("role")), ("role", s("dispatcher"))],
    )
    .await;
    assert_eq!(st, 303);
    let (st, _, _) = post("/people/val", vec![("do", s("disable"))]).await;
    assert_eq!(st, 303);
    let users = ctl.get("/api/v1/users").await;
    let val = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "val")
        .unwrap()
        .clone();
    assert_eq!(val["role"], "dispatcher");
    assert!(val["disabled_at"].is_i64(), "{val}");
    assert_eq!(
        ctl.post_login("val", "val-password-1").await.status,
        401,
        "disabled"
    );
    let (st, _, text) = post(
        "/people/val",
        vec![("do", s("password")), ("password", s("short"))],
    )
    .await;
    assert_eq!(st, 400, "{text}");
    let (st, _, _) = post("/people/val", vec![("do", s("delete"))]).await;
    assert_eq!(st, 303);
    let users = ctl.get("/api/v1/users").await;
    assert!(!users.to_string().contains("\"val\""), "{users}");

    // API tokens: shown once, working, revoked.
    let (st, _, html) = post(
        "/tokens",
        vec![("name", s("dashboard")), ("role", s("viewer"))],
    )
    .await;
    assert_eq!(st, 200, "{html}");
    let shown = html
        .split("<pre><code>")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .unwrap()
        .to_owned();
    let (st, _) = ctl
        .call_as(Some(&shown), "GET", "/api/v1/stores", None)
        .await;
    assert_eq!(st, 200);
    let (st, _) = ctl
        .call_as(
            Some(&shown),
            "POST",
            "/api/v1/stores",
            Some(&serde_json::json!({"code": "Z", "name": "Z"})),
        )
        .await;
    assert_eq!(st, 403, "a viewer token");
    let tokens = ctl.get("/api/v1/tokens").await;
    let tid = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "dashboard")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, _, _) = ctl
        .post_form(&cookie, &format!("/tokens/{tid}/revoke"), &[])
        .await;
    assert_eq!(st, 303);
    let (st, _) = ctl
        .call_as(Some(&shown), "GET", "/api/v1/stores", None)
        .await;
    assert_eq!(st, 401);

    // A task: previewed against the store's real enrolled gateway, then pushed.
    let _home = enrolled_home(&ctl, "U1", "");
    let agents = ctl.get("/api/v1/agents?store=U1").await;
    let agent = agents[0]["id"].as_str().unwrap().to_owned();
    let task = |what: &str| {
        vec![
            ("kind", s("routine")),
            ("routine", s("receipt-printer-unstick")),
            ("select", s("region=north tags=pilot")),
            ("canary", s("1")),
            ("waves", s("100")),
            ("window", s("closed")),
            ("do", what.to_owned()),
        ]
    };
    let (st, _, html) = post("/tasks/new", task("preview")).await;
    assert_eq!(st, 200, "{html}");
    has(&html, "Preview: 1 target");
    has(&html, &agent);
    has(&html, "value=\"region=north tags=pilot\"");
    let (st, _, html) = post(
        "/tasks/new",
        vec![
            ("kind", s("routine")),
            ("routine", s("x")),
            ("select", s("colour=red")),
            ("do", s("preview")),
        ],
    )
    .await;
    assert_eq!(st, 400);
    has(&html, "colour");
    let (st, to, _) = post("/tasks/new", task("push")).await;
    assert_eq!(st, 303);
    assert!(to.starts_with("/tasks/t-"), "{to}");
    let t = ctl.get(&format!("/api/v1{to}")).await;
    assert_eq!(t["spec"]["window"]["when"], "closed", "{t}");
    assert_eq!(t["created_by"].as_str().unwrap(), "user:admin");

    // The agent's page: a ping is a one-target task; a revoke is at once.
    let (st, to, _) = ctl
        .post_form(&cookie, &format!("/agents/{agent}/do"), &[("what", "ping")])
        .await;
    assert_eq!(st, 303);
    assert!(to.starts_with("/tasks/t-"), "{to}");
    let (st, _, _) = ctl
        .post_form(
            &cookie,
            &format!("/agents/{agent}/do"),
            &[("what", "revoke")],
        )
        .await;
    assert_eq!(st, 303);
    let a = ctl.get(&format!("/api/v1/agents/{agent}")).await;
    assert!(a["revoked_at"].is_i64(), "{a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_times_in_the_stores_or_the_persons_zone() {
    let ctl = Controller::start(None);
    crate::tickets::store(&ctl, "Z1", "north").await; // Europe/Berlin
    let cookie = ctl.admin_session().await;
    let id = crate::store_page::open(&ctl, "Z1", "Till slow").await;
    // A ticket's deadlines and timeline are in its store's zone.
    let (_, html) = ctl.page(&cookie, &format!("/tickets/{id}")).await;
    assert!(html.contains(" CET") || html.contains(" CEST"), "{html}");
    assert!(!html.contains(" UTC"), "{html}");
    // The person's own zone, set on their account page, is used elsewhere; a wrong one is
    // named.
    let (s, _, text) = ctl
        .post_form(&cookie, "/account/zone", &[("zone", "Mars/Olympus")])
        .await;
    assert_eq!(s, 400);
    has(&text, "Mars/Olympus");
    let (s, _, _) = ctl
        .post_form(&cookie, "/account/zone", &[("zone", "America/New_York")])
        .await;
    assert_eq!(s, 303);
    // An enrollment token's expiry, on the enrollment page, is in the person's zone.
    let (ok, token, err) = ctl.cli(&["enroll-token", "create", "--store", "Z1"]);
    assert!(ok, "{err}{token}");
    let (_, html) = ctl.page(&cookie, "/enroll").await;
    assert!(html.contains(" EST") || html.contains(" EDT"), "{html}");
    let (_, account) = ctl.page(&cookie, "/tokens").await;
    has(&account, "value=\"America/New_York\"");
}
