//! HTTPS by default: the controller makes a self-signed certificate on first start and
//! serves the API and UI over TLS; enrollment tokens carry its key's pin; the real agent
//! enrolls only with the controller that key belongs to and keeps the pin; the admin CLI
//! trusts the controller by its pin (from the config on its machine, `--tls-pin` elsewhere)
//! or by a CA; plain HTTP and dawdling handshakes get nothing; sessions are `Secure`; an
//! operator's own certificate is served instead; webhooks go to `https://` receivers that a
//! configured CA vouches for.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use storefleet_protocol::enroll::EnrollToken;
use storefleet_support::http::{self, Pin, Request, Trust};

use crate::common::{agent_binary, enrolled_home, eventually, AgentHome, Controller};
use crate::security::new_store;

/// `storefleet ARGS` as from another machine: no config, only what the arguments say.
fn remote_cli(ctl: &Controller, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(crate::common::STOREFLEET)
        .args(["--config", "/nonexistent/controller.toml"])
        .args(["--url", &ctl.url(), "--token", &ctl.token])
        .args(args)
        .env_remove("STOREFLEET_TLS_PIN")
        .env_remove("STOREFLEET_CA_FILE")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends `bytes` over plain TCP and reads until the peer closes (or 10 s).
async fn plain(addr: SocketAddr, bytes: &[u8]) -> (Vec<u8>, Duration) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let t = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
    (got, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_serves_https_and_gateways_and_the_cli_trust_only_its_key() {
    let ctl = Controller::start_with(
        None,
        "[http]\nheader_timeout_secs = 2\n\n[mqtt]\ntls_listen = \"127.0.0.1:0\"\n",
    );
    assert!(ctl.url().starts_with("https://"), "{}", ctl.url());
    let state = ctl.dir.path().join("state");
    let pin = Pin::of_pem_file(&state.join("https-cert.pem")).unwrap();
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&state.join("https-key.pem")), 0o600);

    // The pin as the controller prints it, and in every enrollment token.
    let (ok, printed, err) = ctl.cli(&["tls-pin"]);
    assert!(ok, "{err}");
    assert_eq!(printed.trim(), pin.to_string());
    new_store(&ctl, "S1").await;
    let (ok, text, err) = ctl.cli(&["enroll-token", "create", "--store", "S1"]);
    assert!(ok, "{err}");
    let token = EnrollToken::decode(&text).unwrap();
    assert_eq!(token.tls_pin, pin.to_string());
    assert!(token.api.starts_with("https://"));
    // The broker too: agents are given its TLS listener.
    let mqtts: SocketAddr = token
        .mqtt
        .strip_prefix("mqtts://")
        .unwrap_or_else(|| panic!("{}", token.mqtt))
        .parse()
        .unwrap();

    // A man in the middle: another controller (its own self-signed certificate) where the
    // token says the API is. The agent refuses it before sending anything.
    let impostor = Controller::start(None);
    let mut forged = token.clone();
    forged.api = impostor.url();
    let home = AgentHome::new(&agent_binary(), ([127, 0, 0, 1], 9).into(), "");
    let out = home
        .command()
        .args(["enroll", &forged.encode()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("pinned") && err.contains(&pin.to_string()),
        "{err}"
    );
    let (_, tokens) = impostor
        .call("GET", "/api/v1/enroll-tokens", None, true)
        .await;
    assert_eq!(
        tokens,
        json!([]),
        "the impostor learnt nothing it could use"
    );

    // The real controller: the agent enrolls over HTTPS, keeps the pin, and reports.
    let home = enrolled_home(&ctl, "S1", "");
    // What enrollment wrote among the drop-ins beside the config.
    let dropin: String = std::fs::read_dir(home.config_path().parent().unwrap().join("agent.d"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(dropin.contains(&pin.to_string()), "{dropin}");
    let mut agent = home.spawn();
    eventually(30, "the agent online", || async {
        let a = ctl.get(&format!("/api/v1/agents/{}", home.id)).await;
        (a["online"] == true).then_some(())
    })
    .await;
    agent.kill9();
    assert!(home.log().contains("mqtts://"), "{}", home.log());

    // Plain MQTT on the broker's TLS port: no CONNACK.
    let connect = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04anon";
    let (got, _) = plain(mqtts, connect).await;
    assert!(
        !got.starts_with(b"\x20"),
        "a CONNACK over plain TCP: {got:?}"
    );

    // The CLI elsewhere: with the pin it works; with another key's pin, or trusting only
    // the system's CAs, it refuses the certificate and says so.
    let (ok, out, err) = remote_cli(&ctl, &["--tls-pin", &pin.to_string(), "stores"]);
    assert!(ok && out.contains("S1"), "{out}{err}");
    let other = impostor.trust().pin.unwrap().to_string();
    let (ok, _, err) = remote_cli(&ctl, &["--tls-pin", &other, "stores"]);
    assert!(!ok && err.contains("does not match the pinned"), "{err}");
    let (ok, _, err) = remote_cli(&ctl, &["stores"]);
    assert!(!ok && err.contains("certificate"), "{err}");
    let (ok, _, err) = remote_cli(&ctl, &["--tls-pin", "sha256//nonsense", "stores"]);
    assert!(!ok && err.contains("bad TLS pin"), "{err}");

    // Plain HTTP on the TLS port gets no answer; a client that sends nothing is closed
    // after the handshake timeout (2 s here); both counted.
    let before = ctl
        .metric("storefleet_http_connections_total{outcome=\"tls_failed\"}")
        .await;
    let (got, _) = plain(ctl.http, b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(
        !got.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let (got, waited) = plain(ctl.http, b"").await;
    assert!(got.is_empty());
    assert!(waited < Duration::from_secs(8), "closed after {waited:?}");
    let after = ctl
        .metric("storefleet_http_connections_total{outcome=\"tls_failed\"}")
        .await;
    assert!(after >= before + 2, "{before} -> {after}");

    // The session cookie never travels over plain HTTP.
    let password = std::fs::read_to_string(state.join("admin-password")).unwrap();
    let r = ctl.post_login("admin", password.trim()).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = r.header("set-cookie").unwrap_or_default();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

/// A receiver of webhooks over HTTPS with `cert`/`key`; keeps the events it got.
async fn https_receiver(
    cert: &Path,
    key: &Path,
) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: axum::http::HeaderMap| {
            let g = g.clone();
            async move {
                let event = h
                    .get("x-storefleet-event")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                g.lock().unwrap().push(event);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    (crate::common::serve_tls(app, cert, key).await, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_certificate_is_served_and_webhooks_trust_the_configured_ca() {
    use storefleet_testkit::certs;
    if !certs::have("openssl") {
        eprintln!("skipped: needs the openssl binary to make a CA and certificates");
        return;
    }
    let pki = tempfile::tempdir().unwrap();
    certs::make_ca(pki.path(), "ca");
    certs::issue(
        pki.path(),
        "ca",
        "api",
        "127.0.0.1",
        "subjectAltName=IP:127.0.0.1\n",
    );
    certs::issue(
        pki.path(),
        "ca",
        "hook",
        "127.0.0.1",
        "subjectAltName=IP:127.0.0.1\n",
    );
    let (hook, got) =
        https_receiver(&pki.path().join("hook.pem"), &pki.path().join("hook.key")).await;
    let p = |n: &str| pki.path().join(n).display().to_string();
    let extra = format!(
        "[http]\ncert_file = \"{}\"\nkey_file = \"{}\"\n\n[[webhooks]]\nname = \"itsm\"\nurl = \"https://{hook}/hook\"\nca_file = \"{}\"\nsecret = \"a-very-secret-webhook-key\"\n\n[[webhooks]]\nname = \"untrusted\"\nurl = \"https://{hook}/hook\"\nsecret = \"a-very-secret-webhook-key\"\n",
        p("api.pem"),
        p("api.key"),
        p("ca.pem"),
    );
    let ctl = Controller::start_with(None, &extra);
    assert!(
        !ctl.dir.path().join("state/https-cert.pem").exists(),
        "no self-signed certificate beside the operator's"
    );
    // Tokens pin the operator's certificate's key.
    new_store(&ctl, "S2").await;
    let (ok, text, err) = ctl.cli(&["enroll-token", "create", "--store", "S2"]);
    assert!(ok, "{err}");
    let api_pin = Pin::of_pem_file(&pki.path().join("api.pem")).unwrap();
    assert_eq!(
        EnrollToken::decode(&text).unwrap().tls_pin,
        api_pin.to_string()
    );
    // A client elsewhere that trusts the CA needs no pin.
    let (ok, out, err) = remote_cli(&ctl, &["--ca-file", &p("ca.pem"), "stores"]);
    assert!(ok && out.contains("S2"), "{out}{err}");
    let by_ca = Trust {
        pin: None,
        ca_file: pki.path().join("ca.pem"),
    };
    let r = http::Client::new(&by_ca)
        .unwrap()
        .send(
            Request {
                method: "GET",
                url: &format!("{}/api/v1/health", ctl.url()),
                ..Request::default()
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);

    // A ticket: the webhook with the CA delivers over HTTPS; the one trusting only the
    // system's CAs does not, and its delivery says why.
    let (s, v) = ctl
        .call("POST", "/api/v1/tickets", Some(&json!({"store": "S2", "title": "Door sensor", "skill": "general", "severity": "minor"})), true)
        .await;
    assert_eq!(s, 201, "{v}");
    eventually(30, "the webhook over HTTPS", || async {
        got.lock()
            .unwrap()
            .contains(&"ticket.created".to_owned())
            .then_some(())
    })
    .await;
    let failed = eventually(30, "the untrusted delivery's error", || async {
        ctl.log()
            .lines()
            .find(|l| l.contains("Webhook failed") && l.contains("untrusted"))
            .map(str::to_owned)
    })
    .await;
    assert!(failed.contains("certificate"), "{failed}");
}
