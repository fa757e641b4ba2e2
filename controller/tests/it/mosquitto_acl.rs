//! Mosquitto with the files `storefleet broker-config mosquitto` writes, over TLS: the
//! controller and the agent both speak `mqtts://` with username and password; no anonymous
//! client, each agent logs in with the password it got at enrollment and is held to its
//! own topics, a revoked agent is out after the next `broker-config` and reload. A second
//! Mosquitto, started here with its own config on a free port (the machine's package,
//! `scripts/install-mosquitto.sh`), with certificates made by openssl; runs where
//! `STOREFLEET_TEST_MQTT` is set, as in CI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rumqttc::{MqttOptions, QoS};
use serde_json::json;

use crate::common::{enrolled_home, mqtt_login as login, Controller};

struct Mosquitto {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mosquitto {
    fn reload(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn binary() -> Option<PathBuf> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Starts Mosquitto on a free port with `conf.d` as its include directory.
fn start(bin: &Path, dir: &Path) -> Mosquitto {
    let port = storefleet_testkit::free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings false\nlistener {port} 127.0.0.1\npersistence false\n\
             cafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n\
             include_dir {0}/conf.d\n",
            dir.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("mosquitto.log")).unwrap();
    let child = Command::new(bin)
        .args(["-c", conf.to_str().unwrap(), "-v"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Mosquitto { child, addr }
}

/// Runs `storefleet broker-config mosquitto --dir confd`; checks it wrote `agents` agents.
fn broker_config(ctl: &Controller, confd: &Path, agents: usize) {
    let dir = confd.to_str().unwrap();
    let (ok, out, err) = ctl.cli(&["broker-config", "mosquitto", "--dir", dir]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("{agents} agents")), "{out}");
}

fn password_of(home: &crate::common::AgentHome) -> String {
    let text = std::fs::read_to_string(home.dir.path().join("agent.d/50-enrollment.toml")).unwrap();
    let v: toml::Table = toml::from_str(&text).unwrap();
    v["controller"]["mqtt_password"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_holds_each_agent_to_its_own_topics() {
    if std::env::var("STOREFLEET_TEST_MQTT").is_err() {
        eprintln!("skipped: STOREFLEET_TEST_MQTT is not set (CI sets it and installs Mosquitto)");
        return;
    }
    let Some(bin) = binary() else {
        eprintln!("skipped: no mosquitto binary (scripts/install-mosquitto.sh installs it)");
        return;
    };
    if !storefleet_testkit::certs::have("openssl") {
        eprintln!("skipped: no openssl binary to make the broker's certificate");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    storefleet_testkit::certs::make_ca(dir.path(), "ca");
    storefleet_testkit::certs::issue(
        dir.path(),
        "ca",
        "server",
        "127.0.0.1",
        "subjectAltName=IP:127.0.0.1\n",
    );
    let ca = dir.path().join("ca.pem");
    let confd = dir.path().join("conf.d");
    std::fs::create_dir_all(&confd).unwrap();
    // Mosquitto started as root drops to its own user and reads the files again on reload.
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let key = dir.path().join("server.key");
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    // To begin with, only the controller's user: what broker-config writes before any
    // gateway is enrolled.
    let ctl_password = "controller-password-for-mosquitto";
    let pwfile = dir.path().join("mqtt-password");
    std::fs::write(&pwfile, format!("{ctl_password}\n")).unwrap();
    std::fs::write(
        confd.join("storefleet.passwd"),
        format!(
            "storefleet-controller:{}\n",
            storefleet_controller::broker_config::mosquitto_hash(ctl_password)
        ),
    )
    .unwrap();
    std::fs::write(
        confd.join("storefleet.acl"),
        "user storefleet-controller\ntopic readwrite sf/v1/#\n",
    )
    .unwrap();
    std::fs::write(
        confd.join("storefleet.conf"),
        format!(
            "allow_anonymous false\npassword_file {0}/storefleet.passwd\nacl_file {0}/storefleet.acl\n",
            confd.display()
        ),
    )
    .unwrap();
    let broker = start(&bin, dir.path());
    let ctl = Controller::start_with(
        Some(broker.addr),
        &format!(
            "[mqtt]\nurl = \"mqtts://{}\"\nca_file = \"{}\"\nusername = \"storefleet-controller\"\npassword_file = \"{}\"\n",
            broker.addr,
            ca.display(),
            pwfile.display()
        ),
    );
    let (s, v) = ctl
        .call(
            "PUT",
            "/api/v1/stores/S900",
            Some(&json!({"code": "S900", "name": "Mosquitto"})),
            true,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let trust = format!("[controller]\nca_file = \"{}\"\n", ca.display());
    let a = enrolled_home(&ctl, "S900", "");
    let b = enrolled_home(&ctl, "S900", "");
    for home in [&a, &b] {
        std::fs::write(home.dir.path().join("agent.d/20-tls.toml"), &trust).unwrap();
    }
    let dropin = std::fs::read_to_string(a.dir.path().join("agent.d/50-enrollment.toml")).unwrap();
    assert!(dropin.contains("mqtts://"), "{dropin}");
    let (a_pw, b_pw) = (password_of(&a), password_of(&b));
    assert!(a_pw.len() >= 32 && a_pw != b_pw);

    // The files for both gateways, then a reload.
    broker_config(&ctl, &confd, 2);
    let acl = std::fs::read_to_string(confd.join("storefleet.acl")).unwrap();
    assert!(acl.contains("pattern write sf/v1/%u/up/#"), "{acl}");
    broker.reload();

    // Gateway A runs for real, through Mosquitto, with its password.
    let _agent = a.spawn();
    let a_id = a.id.clone();
    let online = crate::common::within(30, || async {
        let v = ctl.get(&format!("/api/v1/agents/{a_id}")).await;
        (v["online"] == true).then_some(())
    })
    .await;
    assert!(
        online.is_some(),
        "gateway A not online through Mosquitto: {}\n{}\n{}",
        a.log(),
        std::fs::read_to_string(dir.path().join("mosquitto.log")).unwrap_or_default(),
        std::fs::read_to_string(confd.join("storefleet.passwd")).unwrap_or_default()
    );

    // Nobody anonymous, no wrong password.
    let tls = std::sync::Arc::new(
        storefleet_support::tls::trusting(&storefleet_support::tls::Trust {
            pin: None,
            ca_file: ca.clone(),
        })
        .unwrap(),
    );
    let at = |id: &str| {
        let mut o = MqttOptions::new(id, broker.addr.ip().to_string(), broker.addr.port());
        o.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls.clone()),
        ));
        o
    };
    // Without TLS nothing gets through either.
    let mut plain = MqttOptions::new(&b.id, broker.addr.ip().to_string(), broker.addr.port());
    plain.set_credentials(b.id.clone(), b_pw.clone());
    assert!(login(plain).await.is_none(), "plain MQTT on the TLS port");
    assert!(login(at("curious")).await.is_none(), "anonymous");
    let mut wrong = at(&b.id);
    wrong.set_credentials(b.id.clone(), "guess");
    assert!(login(wrong).await.is_none(), "a wrong password");

    // Gateway B, logged in as itself, tries to read A's commands and A's uplinks and to
    // write into A's subtree: Mosquitto delivers none of it.
    let mut as_b = at(&b.id);
    as_b.set_credentials(b.id.clone(), b_pw.clone());
    let (spy, mut seen) = login(as_b).await.expect("B logs in with its own password");
    spy.subscribe(format!("sf/v1/{a_id}/down/#"), QoS::AtLeastOnce)
        .await
        .unwrap();
    spy.subscribe("sf/v1/+/up/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    spy.publish(
        format!("sf/v1/{a_id}/up/telemetry"),
        QoS::AtLeastOnce,
        false,
        b"forged".to_vec(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A command to A goes through to A (and its answer back), not to B.
    let (ok, out, err) = ctl.cli(&["agents", "ping", &a_id]);
    assert!(ok, "{err}");
    assert!(out.contains("pong"), "{out}");
    let mut leaked = Vec::new();
    while let Ok(p) = seen.try_recv() {
        let t = p.topic;
        if !t.starts_with(&format!("sf/v1/{}/", b.id)) {
            leaked.push(t);
        }
    }
    assert!(
        leaked.is_empty(),
        "B saw another agent's topics: {leaked:?}"
    );
    assert_eq!(
        ctl.metric("storefleet_controller_ingest_messages_rejected_total{reason=\"malformed\"}")
            .await,
        0,
        "B's forged publish reached the controller"
    );

    // Revoked, written out and reloaded: B is out.
    let (s, _) = ctl
        .call(
            "POST",
            &format!("/api/v1/agents/{}/revoke", b.id),
            None,
            true,
        )
        .await;
    assert_eq!(s, 204);
    broker_config(&ctl, &confd, 1);
    broker.reload();
    let mut again = at(&b.id);
    again.set_credentials(b.id.clone(), b_pw);
    assert!(login(again).await.is_none(), "revoked B still gets in");
}
