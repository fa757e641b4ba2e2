//! Fleet tasks over simulated stores: the controller (in this process, so that its task
//! clock can be moved), its embedded broker, and N simulated stores each running the real
//! agent library with a local routine `till-check` (a TCP check of the store's till). A
//! store whose till does not answer fails the routine: that is how failures are injected.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use storefleet_controller::cli::task::{PushArgs, TaskCmd};
use storefleet_controller::cli::AdminCmd;
use storefleet_controller::client::Client;
use storefleet_controller::server::{self, Running};
use storefleet_controller::tasks::engine::Clock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::{eventually, within};

struct Fleet {
    client: Client,
    token: CancellationToken,
    tracker: TaskTracker,
    running: Option<Running>,
    _closed: storefleet_testkit::ClosedPort,
    _dir: tempfile::TempDir,
}

impl Fleet {
    /// A controller on `clock` and `n` simulated stores; the stores in `broken` have a
    /// till that does not answer.
    async fn start(n: usize, clock: Clock, broken: &[usize]) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::common::in_process_config(dir.path());
        let token = CancellationToken::new();
        let running = server::start_with_clock(config, token.clone(), clock)
            .await
            .unwrap();
        let client = crate::common::client_of(&running);
        // Healthy tills answer like the controller's HTTP port does; broken ones are a
        // port nobody listens on.
        let closed = storefleet_testkit::ClosedPort::bind();
        for i in 1..=n {
            let till = if broken.contains(&i) {
                closed.addr().to_string()
            } else {
                running.http.to_string()
            };
            write_routine(&dir.path().join("agents").join(format!("S{i:04}")), &till);
        }
        let tracker = TaskTracker::new();
        let opts = storefleet_sim::Options::new(n, dir.path().join("agents"), client.clone());
        storefleet_sim::start(opts, token.clone(), &tracker)
            .await
            .unwrap();
        let fleet = Fleet {
            client,
            token,
            tracker,
            running: Some(running),
            _closed: closed,
            _dir: dir,
        };
        eventually(120, "every simulated agent online", || async {
            let v = fleet.get("/api/v1/agents").await;
            let online = v.as_array()?.iter().filter(|a| a["online"] == true).count();
            (online == n).then_some(())
        })
        .await;
        fleet
    }

    async fn get(&self, path: &str) -> Value {
        self.client.call("GET", path, None).await.unwrap()
    }

    /// A page of the UI, read with the admin token.
    async fn page(&self, path: &str) -> String {
        match self.get(path).await {
            Value::String(html) => html,
            other => panic!("{path} is not a page: {other}"),
        }
    }

    /// What `storefleet task status ID` prints.
    async fn status(&self, id: &str) -> String {
        storefleet_controller::cli::run(
            &self.client,
            AdminCmd::Task {
                cmd: TaskCmd::Status {
                    id: id.to_owned(),
                    watch: false,
                },
            },
            false,
        )
        .await
        .unwrap()
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        self.client.call("POST", path, Some(body)).await.unwrap()
    }

    async fn task_where(
        &self,
        id: &str,
        secs: u64,
        what: &str,
        f: impl Fn(&Value) -> bool,
    ) -> Value {
        let found = within(secs, || async {
            let t = self.get(&format!("/api/v1/tasks/{id}")).await;
            f(&t).then_some(t)
        })
        .await;
        if let Some(t) = found {
            return t;
        }
        // What the task and its targets looked like, to tell a lost command from a slow
        // agent or a failed routine.
        let task = self.get(&format!("/api/v1/tasks/{id}")).await;
        let targets = self.targets(id).await;
        let agents = self.get("/api/v1/agents").await;
        panic!(
            "timed out waiting for {what}\ntask: {task}\ntargets: {targets:#?}\nagents: {agents}"
        );
    }

    async fn targets(&self, id: &str) -> Vec<Value> {
        self.get(&format!("/api/v1/tasks/{id}/targets"))
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    async fn stop(mut self) {
        self.token.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.tracker.wait()).await;
        if let Some(r) = self.running.take() {
            r.wait().await;
        }
    }
}

pub(crate) fn write_routine(store_dir: &Path, till: &str) {
    let d = store_dir.join("routines.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("till-check.toml"),
        format!(
            "name = \"till-check\"\nversion = 1\n\n[[steps]]\nkind = \"check\"\nname = \"till answers\"\n\
             action = \"tcp.check\"\nargs = {{ address = \"{till}\", timeout_secs = 2 }}\n"
        ),
    )
    .unwrap();
}

pub(crate) fn count(t: &Value, state: &str) -> u64 {
    t["counts"][state].as_u64().unwrap_or(0)
}

fn spec(select: Value, plan: Value, window: Value) -> Value {
    let mut v = json!({"action": {"type": "routine", "name": "till-check"}});
    v["select"] = select;
    v["plan"] = plan;
    v["window"] = window;
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_failures_abort_a_staged_rollout_over_50_stores() {
    let fleet = Fleet::start(50, Clock::system(), &[1, 2]).await;
    let commands = CommandLog::listen(&fleet).await;

    // What people get wrong is refused with the reason.
    let (status, msg) = match fleet
        .client
        .call(
            "POST",
            "/api/v1/tasks",
            Some(&spec(json!({}), json!({}), json!({}))),
        )
        .await
    {
        Err(storefleet_controller::cli::CliError::Api { status, message }) => (status, message),
        other => panic!("an empty selector was accepted: {other:?}"),
    };
    assert_eq!(status, 400);
    assert!(msg.contains("all = true"), "{msg}");
    let none = fleet
        .client
        .call(
            "POST",
            "/api/v1/tasks",
            Some(&spec(json!({"regions": ["mars"]}), json!({}), json!({}))),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(none.contains("no enrolled agent matches"), "{none}");

    // Canary of 2 (S0001 and S0002, whose tills are down), then 10%, 50%, 100%.
    let plan = json!({"canary": 2, "waves": [10, 50, 100], "abort_failure_rate": 0.2, "abort_min_finished": 2, "target_timeout_ms": 60_000});
    let preview = fleet
        .post(
            "/api/v1/tasks/preview",
            &spec(json!({"all": true}), plan.clone(), json!({})),
        )
        .await;
    assert_eq!(preview["waves"], json!([2, 5, 19, 24]));
    let task = fleet
        .post(
            "/api/v1/tasks",
            &spec(json!({"all": true}), plan, json!({})),
        )
        .await;
    let id = task["id"].as_str().unwrap().to_owned();
    assert_eq!(task["total"], 50);
    let t = fleet
        .task_where(&id, 60, "the rollout to abort", |t| {
            !t["finished_at"].is_null()
        })
        .await;
    assert_eq!(t["phase"], "aborted", "{t}");
    assert_eq!(
        (count(&t, "failed"), count(&t, "cancelled")),
        (2, 48),
        "{t}"
    );
    let targets = fleet.targets(&id).await;
    let sent: Vec<&str> = targets
        .iter()
        .filter(|x| !x["sent_at"].is_null())
        .map(|x| x["store"].as_str().unwrap())
        .collect();
    assert_eq!(sent, ["S0001", "S0002"], "only the canary was ever sent");
    assert!(
        targets[0]["outcome"] == "failed" || targets[0]["outcome"] == "escalated",
        "{}",
        targets[0]
    );

    // The agents' own run records reach the controller: two, both from the canary.
    let runs = eventually(30, "the canary's run records", || async {
        let v = fleet.get("/api/v1/runs?routine=till-check").await;
        (v.as_array()?.len() >= 2).then_some(v)
    })
    .await;
    let mut stores: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["store"].as_str().unwrap())
        .collect();
    stores.sort_unstable();
    assert_eq!(stores, ["S0001", "S0002"]);

    // The CLI shows it, with the bar and the failures.
    let text = fleet.status(&id).await;
    assert!(text.contains("aborted") && text.contains("[xx--"), "{text}");
    // The waves after the canary never ran: said so, not shown as finished.
    for (wave, cancelled) in [(1, 5), (2, 19), (3, 24)] {
        let line = format!(
            "{:<8} never started ({cancelled} cancelled)",
            format!("wave {wave}")
        );
        assert!(text.contains(&line), "{line}:\n{text}");
    }
    assert!(!text.contains("24/24 finished"), "{text}");
    // The task's page says the same.
    let html = fleet.page(&format!("/tasks/{id}")).await;
    for cancelled in [5, 19, 24] {
        let cell = format!("<td class=\"never\">never started ({cancelled} cancelled)</td>");
        assert!(html.contains(&cell), "{cell}:\n{html}");
    }
    assert!(
        text.contains("S0001") && text.contains("not succeeded"),
        "{text}"
    );

    // A healthy region through the CLI: canary 1, then half, then the rest, one store of
    // the region in flight at a time. Every wave waits for the one before it.
    let out = storefleet_controller::cli::run(
        &fleet.client,
        AdminCmd::Task {
            cmd: TaskCmd::Push(Box::new(PushArgs {
                file: None,
                routine: Some("till-check".into()),
                config: None,
                config_name: None,
                update: None,
                confirm: "2m".into(),
                select: vec!["region=alps".into()],
                name: Some("alps till check".into()),
                canary: 1,
                waves: vec![50, 100],
                region_cap: 1,
                window: "any".into(),
                margin_minutes: 0,
                avoid: String::new(),
                timeout: "1m".into(),
                abort_rate: 0.2,
                abort_min: 1,
                expiry: "1h".into(),
                ignore_window: false,
                dry_run: false,
            })),
        },
        true,
    )
    .await
    .unwrap();
    let pushed: Value = serde_json::from_str(&out).unwrap();
    let id = pushed["id"].as_str().unwrap().to_owned();
    let t = fleet
        .task_where(&id, 60, "the alps task to complete", |t| {
            t["phase"] == "completed"
        })
        .await;
    assert_eq!(count(&t, "succeeded"), 6, "{t}");
    let mut targets = fleet.targets(&id).await;
    targets.sort_by_key(|x| x["sent_at"].as_i64());
    for pair in targets.windows(2) {
        assert!(
            pair[1]["sent_at"].as_i64() >= pair[0]["finished_at"].as_i64(),
            "two alps stores in flight at once: {pair:?}"
        );
    }
    assert!(
        targets.iter().all(|x| x["outcome"] == "already_fine"),
        "{targets:?}"
    );
    // Regression: the engine published every command twice (its resend pass picked up the
    // targets the same step had just sent). All answered within the resend delay: once each.
    let seen = commands.counts();
    assert_eq!(seen.len(), 2 + 6, "commands on the wire: {seen:?}");
    assert!(
        seen.values().all(|n| *n == 1),
        "published more than once: {seen:?}"
    );
    fleet.stop().await;
}

/// Every command the controller publishes, counted by command id, as a broker client sees
/// them.
struct CommandLog(std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>);

impl CommandLog {
    async fn listen(fleet: &Fleet) -> CommandLog {
        let running = fleet.running.as_ref().unwrap();
        let addr: std::net::SocketAddr = running
            .mqtt_url
            .trim_start_matches("mqtt://")
            .parse()
            .unwrap();
        let config = &running.state.config;
        let (client, mut ev) = rumqttc::AsyncClient::new(
            crate::common::controller_mqtt(
                addr,
                &config.controller.state_dir,
                &config.mqtt.client_id,
                "command-log",
            ),
            64,
        );
        client
            .subscribe("sf/v1/+/down/command", rumqttc::QoS::AtLeastOnce)
            .await
            .unwrap();
        let log = CommandLog(std::sync::Arc::default());
        let counts = log.0.clone();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            while let Ok(e) = ev.poll().await {
                match e {
                    rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)) => {
                        if let Some(t) = ready_tx.take() {
                            let _ = t.send(());
                        }
                    }
                    rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => {
                        let frame = storefleet_protocol::envelope::open(&p.payload).unwrap();
                        if let storefleet_protocol::Message::Command(c) = frame.envelope.message {
                            *counts.lock().unwrap().entry(c.id).or_default() += 1;
                        }
                    }
                    _ => {}
                }
            }
        });
        ready.await.unwrap();
        log
    }

    fn counts(&self) -> std::collections::HashMap<String, u32> {
        self.0.lock().unwrap().clone()
    }
}

/// 2026-11-23 is a Monday; the simulated stores are in Berlin, Vienna and Zurich (UTC+1).
fn at(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_window_keeps_open_stores_waiting_until_they_close() {
    // 20:30 local: stores open 08:00-20:00 are closed; S0005 and S0010 (07:00-22:00) are
    // still open.
    let clock = Clock::manual(at("2026-11-23T19:30:00Z"));
    let fleet = Fleet::start(12, clock.clone(), &[]).await;
    let window = json!({"when": "closed"});
    let task = fleet
        .post(
            "/api/v1/tasks",
            &spec(
                json!({"all": true}),
                json!({"target_timeout_ms": 3_600_000}),
                window.clone(),
            ),
        )
        .await;
    let id = task["id"].as_str().unwrap().to_owned();
    let t = fleet
        .task_where(&id, 60, "the closed stores to finish", |t| {
            count(t, "succeeded") == 10
        })
        .await;
    assert_eq!(count(&t, "queued"), 2, "{t}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting: Vec<String> = fleet
        .targets(&id)
        .await
        .iter()
        .filter(|x| x["state"] == "queued")
        .map(|x| x["store"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(waiting, ["S0005", "S0010"], "open stores must wait");
    // It says when it will start: when S0005 (and S0010) close at 22:00 local.
    let t = fleet.get(&format!("/api/v1/tasks/{id}")).await;
    assert_eq!(
        t["window_opens"],
        json!({"at": at("2026-11-23T21:00:00Z"), "store": "S0005", "timezone": "Europe/Berlin"}),
        "{t}"
    );
    let text = fleet.status(&id).await;
    assert!(
        text.contains("waiting for its window: starts Mon 23 Nov 22:00 CET")
            && text.contains("at S0005"),
        "{text}"
    );
    let html = fleet.page(&format!("/tasks/{id}")).await;
    let wait = html
        .split("id=\"window-wait\"")
        .nth(1)
        .and_then(|p| p.split("</p>").next())
        .unwrap_or_else(|| panic!("no window line on the task's page: {html}"));
    assert!(
        wait.contains("Mon 23 Nov 22:00 CET") && wait.contains("at S0005"),
        "{wait}"
    );

    // 22:30 local: they have closed.
    clock.set(at("2026-11-23T21:30:00Z"));
    let t = fleet
        .task_where(&id, 60, "the late stores after closing", |t| {
            t["phase"] == "completed"
        })
        .await;
    assert_eq!(count(&t, "succeeded"), 12, "{t}");

    // Tuesday 11:00 local, every store open: a closed-window task waits everywhere; it
    // can be paused, resumed and cancelled, and cancelling finishes it.
    clock.set(at("2026-11-24T10:00:00Z"));
    let task = fleet
        .post(
            "/api/v1/tasks",
            &spec(json!({"tags": ["pilot"]}), json!({}), window),
        )
        .await;
    let id = task["id"].as_str().unwrap().to_owned();
    assert_eq!(task["total"], 2, "S0001 and S0011 are tagged pilot");
    let paused = fleet
        .post(&format!("/api/v1/tasks/{id}/pause"), &json!({}))
        .await;
    assert_eq!(
        paused["phase"], "running",
        "the request is taken by the engine"
    );
    fleet
        .task_where(&id, 10, "paused", |t| t["phase"] == "paused")
        .await;
    fleet
        .post(&format!("/api/v1/tasks/{id}/resume"), &json!({}))
        .await;
    fleet
        .task_where(&id, 10, "resumed", |t| t["phase"] == "running")
        .await;
    fleet
        .post(&format!("/api/v1/tasks/{id}/cancel"), &json!({}))
        .await;
    let t = fleet
        .task_where(&id, 10, "cancelled", |t| !t["finished_at"].is_null())
        .await;
    assert_eq!(
        (t["phase"].as_str(), count(&t, "cancelled")),
        (Some("cancelled"), 2)
    );
    let again = fleet
        .client
        .call("POST", &format!("/api/v1/tasks/{id}/resume"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("no longer be changed"), "{again}");

    // A config change these gateways do not allow (their controller.remote_config is
    // empty): rejected by the agent, with its reason, and the rollout stops there.
    let task = fleet
        .post(
            "/api/v1/tasks",
            &json!({"action": {"type": "config", "name": "inventory-rate", "toml": "[inventory]\ninterval_secs = 600\n"},
                    "select": {"stores": ["S0003", "S0004"]}, "plan": {"canary": 1}}),
        )
        .await;
    let id = task["id"].as_str().unwrap().to_owned();
    let t = fleet
        .task_where(&id, 30, "the config task to stop", |t| {
            !t["finished_at"].is_null()
        })
        .await;
    assert_eq!(t["phase"], "aborted", "{t}");
    let targets = fleet.targets(&id).await;
    assert_eq!(targets[0]["state"], "rejected", "{targets:?}");
    assert!(
        targets[0]["message"]
            .as_str()
            .unwrap()
            .contains("remote_config"),
        "{targets:?}"
    );
    assert_eq!(targets[1]["state"], "cancelled");
    fleet.stop().await;
}
