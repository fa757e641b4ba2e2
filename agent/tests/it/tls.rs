//! TLS to the broker: mutual TLS against a real Mosquitto with certificates made by
//! openssl, and an agent that trusts the wrong CA never sends a byte of data.
//!
//! Needs the `mosquitto` and `openssl` binaries (present where Mosquitto is installed,
//! as on the CI machine); skipped, and says so, where they are missing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use storefleet_testkit::certs::{have, issue, make_ca};
use storefleet_testkit::sink::Sink;

use crate::common::{agent_home, keys, metric, points_body, post_json, AgentHome};

struct Mosquitto(Child);

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tls_home(tls_port: u16, dir: &Path, ca: &str) -> AgentHome {
    let home = agent_home(([127, 0, 0, 1], tls_port).into(), "");
    let d = home.dir.path().join("agent.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("20-tls.toml"),
        format!(
            "[controller]\nmqtt_url = \"mqtts://127.0.0.1:{tls_port}\"\nca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
            dir.join(format!("{ca}.pem")).display(),
            dir.join("client.pem").display(),
            dir.join("client.key").display()
        ),
    )
    .unwrap();
    home
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_delivers_and_a_wrong_ca_is_refused() {
    if !(have("mosquitto") && have("openssl")) {
        eprintln!("skipped: needs the mosquitto and openssl binaries (the CI machine has them)");
        return;
    }
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    make_ca(dir, "ca");
    make_ca(dir, "other-ca");
    issue(
        dir,
        "ca",
        "server",
        "localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    );
    issue(
        dir,
        "ca",
        "client",
        "storefleet-agent",
        "extendedKeyUsage=clientAuth\n",
    );

    let tls_port = storefleet_testkit::free_port();
    let plain_port = storefleet_testkit::free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "user root\npersistence false\nallow_anonymous true\nper_listener_settings false\n\
             listener {tls_port} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\nrequire_certificate true\n\
             listener {plain_port} 127.0.0.1\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let _broker = Mosquitto(
        Command::new("mosquitto")
            .args(["-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for port in [tls_port, plain_port] {
        let mut tries = 0;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            tries += 1;
            assert!(tries < 200, "mosquitto did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    let good = tls_home(tls_port, dir, "ca");
    let bad = tls_home(tls_port, dir, "other-ca");
    let mut all = keys(&good);
    all.extend(keys(&bad));
    let sink = Sink::start(([127, 0, 0, 1], plain_port).into(), all).await;

    let a = good.spawn();
    let b = bad.spawn();
    for (agent, metric_name) in [(&a, "good"), (&b, "bad")] {
        let body = points_body(
            "pos-1",
            metric_name,
            &[(storefleet_protocol::now_ms(), 1.0)],
        );
        assert_eq!(
            post_json(agent.ingest, "/v1/telemetry", &body)
                .await
                .unwrap()
                .0,
            200
        );
    }
    let key = ("pos-1".to_owned(), "good".to_owned());
    assert!(
        sink.wait(Duration::from_secs(20), |s| s.series.contains_key(&key))
            .await,
        "nothing arrived over mutual TLS; log:\n{}",
        good.log()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let refused = ("pos-1".to_owned(), "bad".to_owned());
    assert!(!sink.with(|s| s.series.contains_key(&refused)));
    assert!(metric(b.ingest, "storefleet_agent_connect_failures_total").await >= 1);
    assert_eq!(metric(b.ingest, "storefleet_agent_connected").await, 0);
    assert!(
        metric(b.ingest, "storefleet_agent_buffer_points").await >= 1,
        "the refused agent keeps its data"
    );
    let log = bad.log();
    assert!(log.contains("Broker connection lost or refused"), "{log}");
}
