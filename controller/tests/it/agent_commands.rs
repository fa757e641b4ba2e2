//! `storefleet agents ping ID` and `agents reload ID`: a signed command through the real
//! controller and broker to the real agent binary, and its answer back.

use serde_json::json;

use crate::common::{enrolled_home, eventually, Controller};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_reload_reach_the_agent_and_its_answer_comes_back() {
    let ctl = Controller::start(None);
    let (s, v) = ctl
        .call(
            "PUT",
            "/api/v1/stores/S120",
            Some(&json!({"code": "S120", "name": "Commands"})),
            true,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let home = enrolled_home(&ctl, "S120", "");
    let mut agent = home.spawn();
    let id = home.id.clone();
    eventually(30, "the agent online", || async {
        let a = ctl.get(&format!("/api/v1/agents/{id}")).await;
        (a["online"] == true).then_some(())
    })
    .await;

    let (ok, out, err) = ctl.cli(&["agents", "ping", &id]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("{id}: succeeded: pong: {id} version")),
        "{out}"
    );

    // A device added in a drop-in: reload applies it and says so.
    let dropins = home.dir.path().join("agent.d");
    std::fs::create_dir_all(&dropins).unwrap();
    std::fs::write(
        dropins.join("60-scale.toml"),
        "[[devices]]\nid = \"scale-9\"\nclass = \"scale\"\nprobe = { type = \"push\" }\n",
    )
    .unwrap();
    let (ok, out, err) = ctl.cli(&["agents", "reload", &id]);
    assert!(ok, "{err}");
    assert!(out.contains("succeeded: applied: devices"), "{out}");

    // Who is not enrolled is refused; who does not answer is reported, not waited for.
    let (ok, _, err) = ctl.cli(&["agents", "ping", "gw-nobody"]);
    assert!(!ok);
    assert!(err.contains("no enrolled agent matches"), "{err}");
    assert!(agent.terminate().success());
    let (ok, _, err) = ctl.cli(&["agents", "ping", &id, "--wait", "2"]);
    assert!(!ok);
    assert!(err.contains("did not answer within 2 s"), "{err}");
}
