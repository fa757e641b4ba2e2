//! The store page: what is open at the store and what ended there lately.

use serde_json::{json, Value};

use crate::common::Controller;

/// Opens a minor ticket at `store` by hand; its id.
pub async fn open(ctl: &Controller, store: &str, title: &str) -> i64 {
    let (s, v) = ctl
        .call(
            "POST",
            "/api/v1/tickets",
            Some(&json!({"store": store, "title": title, "skill": "general", "severity": "minor"})),
            true,
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_i64().unwrap()
}

/// Applies `action` to ticket `id` as the admin.
pub async fn act(ctl: &Controller, id: i64, action: Value) {
    let (s, v) = ctl
        .call(
            "POST",
            &format!("/api/v1/tickets/{id}/actions"),
            Some(&action),
            true,
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

/// The part of `html` from the element with id `id` to the next `</section>`.
pub fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let rest = &html[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_page_lists_its_open_tickets_and_those_that_ended_lately() {
    let ctl = Controller::start(None);
    crate::tickets::store(&ctl, "P1", "north").await;
    crate::tickets::store(&ctl, "P2", "north").await;
    let door = open(&ctl, "P1", "Door sensor stuck").await;
    let scale = open(&ctl, "P1", "Scale weighs wrong").await;
    let other = open(&ctl, "P2", "Signage dark").await;
    act(
        &ctl,
        scale,
        json!({"action": "cancel", "reason": "a duplicate"}),
    )
    .await;

    let cookie = ctl.admin_session().await;
    let (s, html) = ctl.page(&cookie, "/stores/P1").await;
    assert_eq!(s, 200, "{html}");
    let tickets = section(&html, "store-tickets");
    assert!(tickets.contains("Open tickets (1)"), "{tickets}");
    let (open_part, ended_part) = tickets
        .split_once("Recently resolved or closed")
        .unwrap_or_else(|| panic!("no ended tickets: {tickets}"));
    assert!(
        open_part.contains(&format!("/tickets/{door}\"")),
        "{open_part}"
    );
    assert!(open_part.contains("Door sensor stuck"), "{open_part}");
    assert!(!open_part.contains("Scale weighs wrong"), "{open_part}");
    assert!(
        ended_part.contains(&format!("/tickets/{scale}\"")),
        "{ended_part}"
    );
    assert!(ended_part.contains("cancelled"), "{ended_part}");
    assert!(
        !tickets.contains(&format!("/tickets/{other}\"")),
        "another store's ticket: {tickets}"
    );

    let (_, html) = ctl.page(&cookie, "/stores/P2").await;
    let tickets = section(&html, "store-tickets");
    assert!(tickets.contains("Signage dark"), "{tickets}");
    assert!(!tickets.contains("Recently resolved"), "{tickets}");
}
