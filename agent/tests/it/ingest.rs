//! Bad input at the local ingest endpoint gets a 4xx that says what was wrong, and the
//! agent keeps running.

use crate::common::{agent_home, http, metric, post_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_the_agent_keeps_running() {
    // No broker at all: ingest does not need one.
    let nowhere = ([127, 0, 0, 1], storefleet_testkit::free_port()).into();
    let home = agent_home(nowhere, "");
    // The fixture's file already has an [ingest] table; a drop-in changes the body cap.
    std::fs::create_dir_all(home.dir.path().join("agent.d")).unwrap();
    std::fs::write(
        home.dir.path().join("agent.d/10-ingest.toml"),
        "[ingest]\nmax_body_bytes = 4096\n",
    )
    .unwrap();
    let mut agent = home.spawn();
    let addr = agent.ingest;

    // (path, content type, body, expected status, expected words in the error)
    type Case = (
        &'static str,
        Option<&'static str>,
        Vec<u8>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "/v1/telemetry",
            Some("application/json"),
            b"{not json".to_vec(),
            400,
            "invalid JSON body",
        ),
        (
            "/v1/telemetry",
            Some("application/json"),
            br#"{"series":[{"metric":"m","points":[{"v":"x"}]}]}"#.to_vec(),
            400,
            "series[0].points[0].v",
        ),
        (
            "/v1/telemetry",
            Some("application/json"),
            br#"{"series":[{"metric":"bad name!","points":[{"v":1}]}]}"#.to_vec(),
            400,
            "series[0].metric",
        ),
        (
            "/v1/telemetry",
            Some("application/json"),
            br#"{"series":[{"metric":"m","points":[]}]}"#.to_vec(),
            400,
            "no points",
        ),
        (
            "/v1/telemetry",
            Some("application/json"),
            br#"{"series":[],"extra":1}"#.to_vec(),
            400,
            "unknown field `extra`",
        ),
        (
            "/v1/telemetry",
            Some("text/plain"),
            br#"{"series":[]}"#.to_vec(),
            415,
            "application/json",
        ),
        (
            "/v1/telemetry",
            Some("application/json"),
            vec![b' '; 5000],
            413,
            "larger than 4096",
        ),
        (
            "/v1/events",
            Some("application/json"),
            br#"{"severity":"info"}"#.to_vec(),
            400,
            "missing field `code`",
        ),
        (
            "/v1/events",
            Some("application/json"),
            br#"{"code":"a.b","severity":"urgent"}"#.to_vec(),
            400,
            "severity",
        ),
        (
            "/v1/events",
            Some("application/json"),
            br#"[{"code":"a.b","severity":"info"},{"code":"a.c"}]"#.to_vec(),
            400,
            "[1]",
        ),
    ];
    for (path, ct, body, want, says) in cases {
        let (code, text) = http(addr, "POST", path, ct, body).await.unwrap();
        assert_eq!(code, want, "{path}: {text}");
        assert!(text.contains(says), "{path}: expected {says:?} in {text}");
        assert!(text.starts_with("{\"error\":"), "{text}");
    }
    assert_eq!(
        metric(addr, "storefleet_agent_ingest_rejected_total").await,
        10
    );

    let ok =
        serde_json::json!({"device": "pos-1", "series": [{"metric": "m", "points": [{"v": 1.5}]}]});
    let (code, text) = post_json(addr, "/v1/telemetry", &ok).await.unwrap();
    assert_eq!(
        (code, text.as_str()),
        (200, r#"{"accepted":1,"duplicates":0}"#)
    );
    let ev = serde_json::json!([{"id": "e1", "code": "app.x", "severity": "warning"}, {"id": "e1", "code": "app.x", "severity": "warning"}]);
    let (code, text) = post_json(addr, "/v1/events", &ev).await.unwrap();
    assert_eq!(
        (code, text.as_str()),
        (200, r#"{"accepted":1,"duplicates":1}"#)
    );
    let (code, health) = http(addr, "GET", "/v1/health", None, Vec::new())
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert!(health.contains(&home.id));
    assert!(agent.alive());
}
