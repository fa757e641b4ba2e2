//! The API's answers to bad input: 4xx with a message naming what was wrong.

use serde_json::json;

use crate::common::Controller;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_api_input_gets_4xx_with_a_message() {
    let ctl = Controller::start(None);
    let (s, v) = ctl.call("GET", "/api/v1/stores", None, false).await;
    assert_eq!(s, 401);
    assert!(v["error"].as_str().unwrap().contains("Bearer"), "{v}");
    let (s, v) = ctl
        .call_as(Some("sft_not-a-real-token"), "GET", "/api/v1/stores", None)
        .await;
    assert_eq!(s, 401);
    assert!(
        v["error"].as_str().unwrap().contains("unknown or revoked"),
        "{v}"
    );

    let (s, v) = ctl
        .call(
            "POST",
            "/api/v1/stores",
            Some(&json!({"code": "S1", "name": 5})),
            true,
        )
        .await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("`name`"), "{v}");
    let (s, v) = ctl
        .call(
            "POST",
            "/api/v1/stores",
            Some(&json!({"code": "bad code!", "name": "x"})),
            true,
        )
        .await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("store code"), "{v}");
    let (s, _) = ctl
        .call(
            "POST",
            "/api/v1/stores",
            Some(&json!({"code": "S1", "name": "One"})),
            true,
        )
        .await;
    assert_eq!(s, 201);
    let (s, v) = ctl
        .call(
            "POST",
            "/api/v1/stores",
            Some(&json!({"code": "S1", "name": "One"})),
            true,
        )
        .await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = ctl.call("GET", "/api/v1/stores/S404", None, true).await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = ctl
        .call(
            "POST",
            "/api/v1/enroll-tokens",
            Some(&json!({"store": "S404"})),
            true,
        )
        .await;
    assert_eq!(s, 404);
    assert!(
        v["error"].as_str().unwrap().contains("unknown store"),
        "{v}"
    );
    let (s, v) = ctl
        .call("GET", "/api/v1/assets?warranty_days=soon", None, true)
        .await;
    assert_eq!(s, 400);
    assert!(
        v["error"].as_str().unwrap().contains("warranty_days"),
        "{v}"
    );
    let (s, v) = ctl
        .call(
            "PATCH",
            "/api/v1/assets/1",
            Some(&json!({"lifecycle": "broken"})),
            true,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("expected one of"),
        "{v}"
    );
    let (s, v) = ctl
        .call("GET", "/api/v1/series/1/points?res=7", None, true)
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = ctl
        .call(
            "POST",
            "/api/v1/enroll",
            Some(&json!({"token": "x"})),
            false,
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        v["error"].as_str().unwrap().contains("missing field"),
        "{v}"
    );

    // The OpenAPI document is served and describes every API route of the router, with
    // the role it needs.
    let (s, doc) = ctl.call("GET", "/api/v1/openapi.json", None, false).await;
    assert_eq!(s, 200);
    let mut missing = Vec::new();
    for rule in storefleet_controller::api::routes().rules() {
        if !rule.path.starts_with("/api/") {
            continue;
        }
        let op = &doc["paths"][rule.path][rule.method.as_str().to_ascii_lowercase()];
        if !op["x-role"].is_string() {
            missing.push(format!("{} {}", rule.method, rule.path));
        }
    }
    assert!(
        missing.is_empty(),
        "not in the OpenAPI document: {missing:?}"
    );
    assert_eq!(doc["paths"]["/api/v1/users"]["post"]["x-role"], "admin");
    assert_eq!(doc["paths"]["/api/v1/enroll"]["post"]["x-role"], "public");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_finds_a_store_and_refuses_an_unknown_filter() {
    let ctl = Controller::start(None);
    for (code, region) in [("S100", "north"), ("S200", "south"), ("S210", "south")] {
        crate::tickets::store(&ctl, code, region).await;
    }
    let cookie = ctl.admin_session().await;
    let page = |path: &'static str| ctl.page(&cookie, path);
    let links = |html: &str| {
        html.match_indices("class=\"store-link\" href=\"/stores/")
            .map(|(i, m)| html[i + m.len()..].split('"').next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let (s, html) = page("/").await;
    assert_eq!(s, 200, "{html}");
    assert_eq!(
        links(&html),
        ["S100", "S200", "S210"],
        "a small fleet is listed whole"
    );
    let (s, html) = page("/?q=SOUTH").await;
    assert_eq!(s, 200, "{html}");
    assert_eq!(links(&html), ["S200", "S210"], "found by region, any case");
    let (_, html) = page("/?q=s21").await;
    assert_eq!(links(&html), ["S210"]);
    // Stores without a gateway are "empty", none is "ok".
    let (_, html) = page("/?health=ok").await;
    assert!(links(&html).is_empty(), "{html}");
    let (s, html) = page("/?health=burning").await;
    assert_eq!(s, 400, "{html}");
    assert!(html.contains("unknown health"), "{html}");

    // The map: only once stores have places, each store that is not well a link there.
    assert!(!html.contains("fleet-map"), "no places, no map");
    for (code, lat, lon) in [("S100", 53.55, 9.99), ("S200", 48.14, 11.58)] {
        let (s, v) = ctl
            .call(
                "PUT",
                &format!("/api/v1/stores/{code}"),
                Some(&json!({"code": code, "name": code, "region": "x", "place": {"lat": lat, "lon": lon}})),
                true,
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let (_, html) = page("/").await;
    let map = &html[html.find("id=\"fleet-map\"").expect("a map")..];
    let map = &map[..map.find("</figure>").unwrap()];
    assert!(map.contains("<svg"), "{map}");
    for code in ["S100", "S200"] {
        assert!(
            map.contains(&format!("<a href=\"/stores/{code}\">")),
            "{code}: {map}"
        );
        assert!(map.contains(&format!("data-store=\"{code}\"")), "{map}");
    }
    assert!(
        !map.contains("S210"),
        "a store without a place is not drawn: {map}"
    );
    assert!(map.contains("2 stores with a place; 2 not well"), "{map}");
    // North is up: Hamburg above Munich.
    let cy = |code: &str| -> f64 {
        let at = map.find(&format!("data-store=\"{code}\"")).unwrap();
        let rest = &map[at..];
        let v = &rest[rest.find("cy=\"").unwrap() + 4..];
        v[..v.find('"').unwrap()].parse().unwrap()
    };
    assert!(cy("S100") < cy("S200"), "{map}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_stores_tokens_and_reads_the_registry_through_the_typed_client() {
    let ctl = Controller::start(None);
    let run = |args: &[&str]| {
        let (ok, out, err) = ctl.cli(args);
        assert!(ok, "{args:?}: {err}");
        out
    };
    let out = run(&[
        "stores",
        "add",
        "S300",
        "--name",
        "Cli store",
        "--region",
        "west",
        "--tags",
        "pilot,mall",
    ]);
    assert_eq!(out, "store S300 saved\n");
    let (ok, _, err) = ctl.cli(&["stores", "add", "S300", "--name", "Twice"]);
    assert!(
        !ok && err.contains("S300"),
        "adding it twice is refused: {err}"
    );
    run(&["stores", "add", "S300", "--name", "Renamed", "--update"]);
    let list = run(&["stores"]);
    assert!(
        list.contains("S300") && list.contains("Renamed") && list.contains("pilot,mall"),
        "{list}"
    );
    let json: serde_json::Value = serde_json::from_str(&run(&["--json", "stores"])).unwrap();
    assert_eq!(json[0]["code"], "S300", "{json}");
    assert_eq!(
        json[0]["tags"],
        serde_json::json!(["pilot", "mall"]),
        "{json}"
    );
    // An update changes only what it is given; a new store needs a name.
    assert_eq!(json[0]["region"], "west", "{json}");
    run(&["stores", "add", "S300", "--tags", "", "--update"]);
    let json: serde_json::Value = serde_json::from_str(&run(&["--json", "stores"])).unwrap();
    assert_eq!(json[0]["tags"], serde_json::json!([]), "{json}");
    assert_eq!(json[0]["name"], "Renamed", "{json}");
    let (ok, _, err) = ctl.cli(&["stores", "add", "S301", "--update"]);
    assert!(!ok && err.contains("--name is needed"), "{err}");
    run(&[
        "stores",
        "add",
        "S301",
        "--name",
        "New by update",
        "--update",
    ]);

    let token = run(&[
        "enroll-token",
        "create",
        "--store",
        "S300",
        "--note",
        "till 2",
    ]);
    assert!(token.starts_with("sfe1."), "{token}");
    let tokens: serde_json::Value =
        serde_json::from_str(&run(&["--json", "enroll-token", "list"])).unwrap();
    let id = tokens[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(tokens[0]["note"], "till 2", "{tokens}");
    assert_eq!(
        run(&["enroll-token", "revoke", &id]),
        format!("token {id} revoked\n")
    );
    // Times for people: when the token was made, when it expires, when it was revoked.
    let list = run(&["enroll-token", "list"]);
    assert!(list.contains(&id), "{list}");
    assert!(
        list.contains(" UTC, ") && list.contains(" ago") && list.contains("UTC, in "),
        "{list}"
    );
    assert!(
        !list
            .split_whitespace()
            .any(|w| w.len() == 13 && w.bytes().all(|b| b.is_ascii_digit())),
        "an instant in milliseconds: {list}"
    );

    assert!(run(&["agents", "--store", "S300"]).contains("AGENT_VERSION"));
    assert!(run(&["assets", "--store", "S300"]).contains("0 of 0 shown"));
    assert!(run(&["assets", "--csv"]).starts_with("id,"));
    assert!(run(&["events", "--store", "S300"]).contains("SEVERITY"));
    let (ok, _, err) = ctl.cli(&["agents", "revoke", "gw-nobody"]);
    assert!(!ok && err.contains("gw-nobody"), "{err}");
    let (ok, _, err) = ctl.cli(&["users", "add", "wiz", "--role", "wizard"]);
    assert!(
        !ok && err.contains("unknown role \"wizard\": one of viewer, engineer"),
        "{err}"
    );
    let users: serde_json::Value =
        serde_json::from_str(&run(&["--json", "users", "list"])).unwrap();
    assert_eq!(users[0]["role"], "admin", "{users}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_tasks_through_the_typed_client_and_names_an_unknown_one() {
    let ctl = Controller::start(None);
    let (ok, out, err) = ctl.cli(&["task", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains("PHASE"), "{out}");
    let (ok, out, _) = ctl.cli(&["--json", "task", "list"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        json!([])
    );
    // A dry run previews a task over the stores there are (none has a gateway yet).
    crate::tickets::store(&ctl, "S400", "east").await;
    let (ok, out, err) = ctl.cli(&[
        "--json",
        "task",
        "push",
        "--routine",
        "printer-check",
        "--select",
        "all",
        "--dry-run",
    ]);
    assert!(ok, "{err}");
    let preview: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(preview["total"], 0, "{preview}");
    let (ok, out, err) = ctl.cli(&["release", "list"]);
    assert!(ok && out.contains("PUBLISHED BY"), "{out}{err}");
    let (ok, out, err) = ctl.cli(&["ingest", "held"]);
    assert!(ok && out.contains("no message is held"), "{out}{err}");
    let (ok, _, err) = ctl.cli(&["ingest", "retry", "gw-nope", "3"]);
    assert!(
        !ok && err.contains("no held message 3 of agent gw-nope"),
        "{err}"
    );
    for args in [["task", "status", "t-nope"], ["task", "pause", "t-nope"]] {
        let (ok, _, err) = ctl.cli(&args);
        assert!(!ok && err.contains("t-nope"), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_naming_nothing_known_is_an_error_not_an_empty_list() {
    let ctl = Controller::start(None);
    crate::tickets::store(&ctl, "S1", "north").await;
    // Known names answer, even with nothing to list.
    for path in [
        "/api/v1/agents?store=S1",
        "/api/v1/devices?store=S1",
        "/api/v1/events?store=S1",
        "/api/v1/runs?store=S1",
        "/api/v1/tickets?store=S1&region=north",
        "/api/v1/alerts?store=S1",
        "/api/v1/assets?store=S1&region=north",
        "/api/v1/stores/S1/series",
    ] {
        ctl.get(path).await;
    }
    for (path, named) in [
        ("/api/v1/agents?store=S9", "no store \"S9\""),
        ("/api/v1/devices?store=S9", "no store \"S9\""),
        ("/api/v1/events?store=S9", "no store \"S9\""),
        ("/api/v1/events?agent=gw-9", "no agent \"gw-9\""),
        ("/api/v1/runs?store=S9", "no store \"S9\""),
        ("/api/v1/tickets?store=S9", "no store \"S9\""),
        ("/api/v1/tickets?region=nowhere", "no region \"nowhere\""),
        ("/api/v1/tickets?engineer=zed", "no engineer \"zed\""),
        ("/api/v1/alerts?store=S9", "no store \"S9\""),
        ("/api/v1/assets?region=nowhere", "no region \"nowhere\""),
        ("/api/v1/assets.csv?store=S9", "no store \"S9\""),
        ("/api/v1/stores/S9/series", "no store \"S9\""),
    ] {
        let (s, v) = ctl.call("GET", path, None, true).await;
        assert_eq!(s, 404, "{path}: {v}");
        assert_eq!(v["error"], named, "{path}");
    }
    // A misspelt filter or an unknown value is refused, naming what is known.
    for (path, says) in [
        ("/api/v1/tickets?stor=S1", "unknown field `stor`"),
        ("/api/v1/agents?shop=S1", "unknown field `shop`"),
        ("/api/v1/events?severity=x", "unknown field `severity`"),
        ("/api/v1/assets?lifecycle=lost", "lifecycle \"lost\""),
        ("/api/v1/assets?kind=robot", "gateway or device"),
        ("/api/v1/tickets?status=burning", "status \"burning\""),
        ("/api/v1/tasks?limit=5&x=1", "unknown field `x`"),
    ] {
        let (s, v) = ctl.call("GET", path, None, true).await;
        assert_eq!(s, 400, "{path}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{path}: {v}");
    }
    // The CLI says so and fails, instead of printing an empty table.
    for args in [
        &["tickets", "--store", "S9"][..],
        &["agents", "--store", "S9"],
        &["events", "--store", "S9"],
        &["assets", "--store", "S9"],
    ] {
        let (ok, out, err) = ctl.cli(args);
        assert!(!ok, "{args:?}: {out}");
        assert!(err.contains("no store \"S9\""), "{args:?}: {err}");
    }
    let (ok, _, err) = ctl.cli(&["tickets", "--engineer", "zed"]);
    assert!(!ok && err.contains("no engineer \"zed\""), "{err}");
}
