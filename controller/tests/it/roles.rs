//! Roles against the real process: every route of the router, tried by every role and by
//! nobody (the list comes from the routes themselves, so a new route without a rule, or
//! with a wrong one, fails here); users and tokens; an engineer's own tickets; the actor in
//! the timeline.

use serde_json::{json, Value};
use storefleet_controller::auth::{Access, Role};

use crate::common::Controller;

/// An HTTP exchange as a browser or a script would make it; returns status and body.
pub async fn call(
    ctl: &Controller,
    method: &str,
    path: &str,
    auth: &Auth,
    body: Option<&Value>,
) -> (u16, String) {
    let mut headers = vec![("origin", ctl.url())];
    match auth {
        Auth::Nobody => {}
        Auth::Cookie(c) => headers.push(("cookie", c.clone())),
        Auth::Bearer(t) => headers.push(("authorization", format!("Bearer {t}"))),
    }
    let r = ctl.request(method, path, headers, body).await;
    (r.status, r.text())
}

#[derive(Debug, Clone)]
pub enum Auth {
    Nobody,
    Cookie(String),
    Bearer(String),
}

/// Signs `user` in through the login form; returns the session cookie.
async fn sign_in(ctl: &Controller, user: &str, password: &str) -> String {
    let r = ctl.post_login(user, password).await;
    assert_eq!(r.status, 303, "sign-in of {user}: {}", r.text());
    r.header("set-cookie")
        .and_then(|c| c.split(';').next().map(str::to_owned))
        .expect("a session cookie")
}

pub async fn add_user(ctl: &Controller, name: &str, role: &str) -> String {
    let (s, v) = ctl
        .call(
            "POST",
            "/api/v1/users",
            Some(&json!({"name": name, "role": role, "password": format!("{name}-password")})),
            true,
        )
        .await;
    assert_eq!(s, 201, "{v}");
    sign_in(ctl, name, &format!("{name}-password")).await
}

fn is_page(path: &str) -> bool {
    !(path.starts_with("/api/") || path == "/metrics" || path.starts_with("/releases/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_holds_to_its_rule_for_every_role() {
    let ctl = Controller::start(None);
    let mut callers: Vec<(Option<Role>, String, Auth)> = vec![(None, String::new(), Auth::Nobody)];
    for role in Role::ALL {
        let name = format!("m-{role}");
        let cookie = add_user(&ctl, &name, role.as_str()).await;
        callers.push((Some(role), name, Auth::Cookie(cookie)));
    }
    let routes = storefleet_controller::access::Routes::default()
        .merge(storefleet_controller::api::routes())
        .merge(storefleet_controller::ui::routes());
    let rules = routes.rules().to_vec();
    assert!(rules.len() > 70, "{} routes", rules.len());
    let mut failures = Vec::new();
    let mut tried = 0;
    for rule in rules.iter().filter(|r| r.path != "/logout") {
        for (role, name, auth) in &callers {
            // Path parameters: the caller's own name (what a route about oneself needs); a
            // delete gets a name nobody has.
            let fill = if rule.method == "DELETE" {
                "nobody-here"
            } else {
                name.as_str()
            };
            let fill = if fill.is_empty() { "x" } else { fill };
            let mut path = String::new();
            for seg in rule.path.split('/').skip(1) {
                path.push('/');
                path.push_str(if seg.starts_with('{') { fill } else { seg });
            }
            let body = (rule.method != "GET").then(|| json!({}));
            let (status, text) = call(&ctl, rule.method.as_str(), &path, auth, body.as_ref()).await;
            tried += 1;
            let allowed = match (rule.access, role) {
                (Access::Public, _) | (Access::Metrics, Some(_)) => true,
                (Access::Metrics | Access::AtLeast(_), None) => false,
                (Access::AtLeast(need), Some(r)) => *r >= need,
            };
            let refused_as_expected = match role {
                None if is_page(rule.path) && rule.method == "GET" => {
                    status == 303 || status == 401
                }
                None => status == 401 || (is_page(rule.path) && status == 303),
                Some(_) => status == 403,
            };
            let ok = if allowed {
                status != 401 && status != 403 && status != 405 && status < 500
            } else {
                refused_as_expected
            };
            if !ok {
                failures.push(format!(
                    "{} {} as {}: {status} {}",
                    rule.method,
                    rule.path,
                    role.map_or("nobody", Role::as_str),
                    text.chars().take(120).collect::<String>()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {tried}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Sign-out ends the session; the cookie opens nothing after it.
    let (_, _, cookie) = &callers[1];
    let (s, _) = call(&ctl, "POST", "/logout", cookie, None).await;
    assert_eq!(s, 303);
    let (s, _) = call(&ctl, "GET", "/api/v1/fleet", cookie, None).await;
    assert_eq!(s, 401);
}

fn cli_in(ctl: &Controller, token: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = std::process::Command::new(crate::common::STOREFLEET)
        .args(["--url", &ctl.url(), "--token", token, "--tls-pin"])
        .arg(ctl.trust().pin.map(|p| p.to_string()).unwrap_or_default())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_tokens_hold_to_their_roles_and_name_the_real_actor() {
    let ctl = Controller::start(None);
    // People through the CLI.
    let (ok, _, err) = cli_in(
        &ctl,
        &ctl.token,
        &["users", "add", "dora", "--role", "dispatcher"],
        "dora-password\n",
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cli_in(
        &ctl,
        &ctl.token,
        &["users", "add", "vic", "--role", "viewer"],
        "vic-password\n",
    );
    assert!(ok, "{err}");
    let (ok, out, err) = cli_in(&ctl, &ctl.token, &["users", "list"], "");
    assert!(ok, "{err}");
    assert!(
        out.contains("dora") && out.contains("dispatcher") && out.contains("viewer"),
        "{out}"
    );

    // A token of dora's, made with her session, with a role at most hers.
    let dora = Auth::Cookie(sign_in(&ctl, "dora", "dora-password").await);
    let (s, v) = call(
        &ctl,
        "POST",
        "/api/v1/tokens",
        &dora,
        Some(&json!({"name": "too much", "role": "admin"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v.contains("above the user's role"), "{v}");
    let (s, v) = call(
        &ctl,
        "POST",
        "/api/v1/tokens",
        &dora,
        Some(&json!({"name": "ops script"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let v: Value = serde_json::from_str(&v).unwrap();
    let dora_token = v["token"].as_str().unwrap().to_owned();
    let dora_token_id = v["info"]["id"].as_str().unwrap().to_owned();
    let bearer = Auth::Bearer(dora_token.clone());
    // A dispatcher cannot push fleet tasks or make enrollment tokens; she can run tickets.
    let (s, _) = call(
        &ctl,
        "POST",
        "/api/v1/enroll-tokens",
        &bearer,
        Some(&json!({"store": "S1"})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, v) = ctl
        .call(
            "PUT",
            "/api/v1/stores/S700",
            Some(&json!({"code": "S700", "name": "Roles", "region": "north"})),
            true,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(&ctl, "POST", "/api/v1/tickets", &bearer, Some(&json!({"store": "S700", "title": "Till screen flickers", "skill": "pos", "severity": "minor"}))).await;
    assert_eq!(s, 201, "{v}");
    let ticket: Value = serde_json::from_str(&v).unwrap();
    let id = ticket["id"].as_i64().unwrap();
    // The timeline names her and her token, not a shared name.
    let t = ctl.get(&format!("/api/v1/tickets/{id}")).await;
    let actors: Vec<&str> = t["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert!(actors.contains(&"user:dora/token:ops script"), "{actors:?}");
    // Its last use is listed.
    let (ok, out, _) = cli_in(&ctl, &dora_token, &["tokens", "list"], "");
    assert!(ok);
    assert!(
        out.contains(&dora_token_id) && out.contains("ops script"),
        "{out}"
    );
    let listed: Value =
        serde_json::from_str(&call(&ctl, "GET", "/api/v1/tokens", &bearer, None).await.1).unwrap();
    assert!(listed[0]["last_used"].is_i64(), "{listed}");

    // An engineer works only their own tickets.
    let (s, v) = ctl
        .call(
            "PUT",
            "/api/v1/engineers/eddie",
            Some(
                &json!({"id": "eddie", "name": "Eddie", "regions": ["south"], "skills": ["scale"]}),
            ),
            true,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let eddie = Auth::Cookie(add_user(&ctl, "eddie", "engineer").await);
    let act = |who: &Auth, body: Value| {
        let (ctl, who) = (&ctl, who.clone());
        async move {
            call(
                ctl,
                "POST",
                &format!("/api/v1/tickets/{id}/actions"),
                &who,
                Some(&body),
            )
            .await
        }
    };
    let (s, _) = act(&eddie, json!({"action": "accept"})).await;
    assert_eq!(s, 404, "not his ticket");
    let (s, v) = act(&bearer, json!({"action": "assign", "engineer": "eddie"})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = act(&eddie, json!({"action": "accept"})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = act(&eddie, json!({"action": "cancel", "reason": "meh"})).await;
    assert_eq!(s, 403, "{v}");
    let (s, _) = call(
        &ctl,
        "POST",
        "/api/v1/tickets",
        &bearer,
        Some(
            &json!({"store": "S700", "title": "Scale drifts", "skill": "pos", "severity": "minor"}),
        ),
    )
    .await;
    assert_eq!(s, 201);
    let (_, v) = call(&ctl, "GET", "/api/v1/tickets", &eddie, None).await;
    let mine: Value = serde_json::from_str(&v).unwrap();
    let mine = mine.as_array().unwrap();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["engineer"], "eddie");
    assert_eq!(
        ctl.get("/api/v1/tickets").await.as_array().unwrap().len(),
        2
    );
    let (s, _) = call(
        &ctl,
        "POST",
        "/api/v1/engineers/someone-else/status",
        &eddie,
        Some(&json!({"status": "off"})),
    )
    .await;
    assert_eq!(s, 403);

    // Her role comes down: so does her token's. Disabled: token and session stop.
    let (ok, _, err) = cli_in(&ctl, &ctl.token, &["users", "role", "dora", "viewer"], "");
    assert!(ok, "{err}");
    let (s, _) = call(
        &ctl,
        "POST",
        "/api/v1/tickets",
        &bearer,
        Some(&json!({"store": "S700", "title": "x", "skill": "pos", "severity": "minor"})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = call(&ctl, "GET", "/api/v1/fleet", &bearer, None).await;
    assert_eq!(s, 200);
    let (ok, _, err) = cli_in(&ctl, &ctl.token, &["users", "disable", "dora"], "");
    assert!(ok, "{err}");
    assert_eq!(
        call(&ctl, "GET", "/api/v1/fleet", &bearer, None).await.0,
        401
    );
    assert_eq!(call(&ctl, "GET", "/api/v1/fleet", &dora, None).await.0, 401);
    // Enabled again: she signs in anew (the old session stays ended), as a viewer.
    let (ok, _, err) = cli_in(&ctl, &ctl.token, &["users", "enable", "dora"], "");
    assert!(ok, "{err}");
    assert_eq!(call(&ctl, "GET", "/api/v1/fleet", &dora, None).await.0, 401);
    let dora_again = Auth::Cookie(sign_in(&ctl, "dora", "dora-password").await);
    let (s, me) = call(&ctl, "GET", "/api/v1/me", &dora_again, None).await;
    assert_eq!(s, 200);
    assert!(me.contains("viewer"), "{me}");

    // A password change ends the user's other sessions; the caller's own stays.
    let vic1 = Auth::Cookie(sign_in(&ctl, "vic", "vic-password").await);
    let vic2 = Auth::Cookie(sign_in(&ctl, "vic", "vic-password").await);
    let (s, v) = call(
        &ctl,
        "POST",
        "/api/v1/users/vic/password",
        &vic1,
        Some(&json!({"password": "vic-new-password"})),
    )
    .await;
    assert_eq!(s, 403, "the old password is needed: {v}");
    let (s, v) = call(
        &ctl,
        "POST",
        "/api/v1/users/vic/password",
        &vic1,
        Some(&json!({"password": "vic-new-password", "old_password": "vic-password"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(call(&ctl, "GET", "/api/v1/me", &vic1, None).await.0, 200);
    assert_eq!(call(&ctl, "GET", "/api/v1/me", &vic2, None).await.0, 401);
    // Another user's password is an admin's business.
    let (s, _) = call(
        &ctl,
        "POST",
        "/api/v1/users/dora/password",
        &vic1,
        Some(&json!({"password": "whatever-123"})),
    )
    .await;
    assert_eq!(s, 403);

    // The last admin stays.
    let (ok, _, err) = cli_in(&ctl, &ctl.token, &["users", "role", "admin", "viewer"], "");
    assert!(!ok);
    assert!(err.contains("last enabled admin"), "{err}");
    // Revoked: gone.
    let (ok, _, err) = cli_in(&ctl, &ctl.token, &["tokens", "revoke", &dora_token_id], "");
    assert!(ok, "{err}");
    assert_eq!(
        call(&ctl, "GET", "/api/v1/fleet", &bearer, None).await.0,
        401
    );
    // Deleted: her session ends, she is no longer listed and cannot sign in.
    let (ok, _, err) = cli_in(&ctl, &ctl.token, &["users", "delete", "dora"], "");
    assert!(ok, "{err}");
    assert_eq!(
        call(&ctl, "GET", "/api/v1/me", &dora_again, None).await.0,
        401
    );
    let (ok, out, err) = cli_in(&ctl, &ctl.token, &["users", "list"], "");
    assert!(ok && !out.contains("dora"), "{out}{err}");
    let r = ctl.post_login("dora", "dora-password").await;
    assert_ne!(r.status, 303, "a deleted user signed in");
}
