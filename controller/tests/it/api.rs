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
