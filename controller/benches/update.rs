//! A fleet update end to end: the controller in this process (embedded broker), N real agent
//! processes under their supervisors (`storefleet-agent supervise`, 2 processes each),
//! enrolled with tokens, running v1; a v2 release (the agent built again with another
//! version) published and pushed as one update task to all of them at once.
//!
//! Reported: the release's download size, and the time from the push until every agent has
//! downloaded, checked, started and confirmed v2 (the task completed, all succeeded).
//!
//! ```sh
//! cargo bench -p storefleet-controller --bench update         # BENCH_AGENTS=100
//! ```

mod support;

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use storefleet_controller::client::Client;
use storefleet_protocol::release::Release;
use storefleet_protocol::SigningKey;
use storefleet_testkit::agent::AgentHome;
use storefleet_testkit::broker::agent_as_version;
use support::env_u64;

const V1: &str = "0.1.0-bench.1";
const V2: &str = "0.1.0-bench.2";

struct Supervised(Child);

impl Drop for Supervised {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let n = env_u64("BENCH_AGENTS", 100) as usize;
    let bins = tempfile::tempdir().unwrap();
    let (v1, v2): (PathBuf, PathBuf) = (bins.path().join("v1"), bins.path().join("v2"));
    agent_as_version(V1, &v1);
    agent_as_version(V2, &v2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let (mut config, _broker) = support::controller_config(dir.path(), "update");
        config.releases.public_key = key.public_key().to_base64();
        let token = tokio_util::sync::CancellationToken::new();
        let running = storefleet_controller::server::start(config, token.clone()).await.unwrap();
        let client = Client::new(format!("http://{}", running.http), running.first_login.as_ref().unwrap().api_token.clone());

        // The fleet: a store, a token and an enrolled agent under its supervisor each.
        let t = Instant::now();
        let mut homes = Vec::new();
        for i in 0..n {
            let code = format!("B{i:04}");
            client
                .call("PUT", &format!("/api/v1/stores/{code}"), Some(&json!({"code": code, "name": code, "region": "north"})))
                .await
                .unwrap();
            let tok = client
                .call("POST", "/api/v1/enroll-tokens", Some(&json!({"store": code})))
                .await
                .unwrap();
            let home = AgentHome::new(&v1, ([127, 0, 0, 1], 9).into(), "");
            let out = home
                .command()
                .args(["enroll", tok["token"].as_str().unwrap()])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            homes.push(home);
        }
        let agents: Vec<Supervised> = homes
            .iter()
            .map(|h| {
                Supervised(
                    h.command()
                        .arg("supervise")
                        .env("STOREFLEET_LOG", "warn")
                        // No store software here: no ingest port for 100 agents to share out.
                        .env("STOREFLEET_AGENT__INGEST__ENABLED", "false")
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap(),
                )
            })
            .collect();
        let online = |version: &'static str| {
            let client = client.clone();
            async move {
                let a = client.call("GET", "/api/v1/agents", None).await.unwrap();
                a.as_array()
                    .unwrap()
                    .iter()
                    .filter(|a| a["online"] == true && a["agent_version"] == version)
                    .count()
            }
        };
        while online(V1).await < n {
            assert!(t.elapsed() < Duration::from_secs(300), "the fleet did not come online");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        eprintln!("{n} agents enrolled and online on {V1} in {:.1?}", t.elapsed());

        let binary = std::fs::read(&v2).unwrap();
        let r = Release::sign(V2, std::env::consts::ARCH, &binary, &key).unwrap();
        client
            .call_with(
                "PUT",
                &format!("/api/v1/releases/{V2}/{}", std::env::consts::ARCH),
                vec![("storefleet-release-signature", r.signature.clone())],
                Some(("application/octet-stream", binary)),
            )
            .await
            .unwrap();

        let t0 = Instant::now();
        let task = client
            .call("POST", "/api/v1/tasks", Some(&json!({
                "action": {"type": "update", "version": V2, "confirm_secs": 300},
                "select": {"all": true},
                "plan": {"canary": 0, "waves": [100], "target_timeout_ms": 900_000}
            })))
            .await
            .unwrap();
        let id = task["id"].as_str().unwrap().to_owned();
        let done = loop {
            let t = client.call("GET", &format!("/api/v1/tasks/{id}"), None).await.unwrap();
            if t["phase"] == "completed" || t["phase"] == "aborted" {
                assert_eq!(t["counts"]["succeeded"], n, "{t}");
                break t0.elapsed();
            }
            assert!(t0.elapsed() < Duration::from_secs(900), "not done after 900 s: {}", t["counts"]);
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let reporting = online(V2).await;
        println!(
            "fleet update of {n} supervised agents to a {} byte release: every agent confirmed v2 {done:.2?} after the push ({reporting} online reporting {V2})",
            r.size
        );
        drop(agents);
        token.cancel();
        running.wait().await;
    });
}
