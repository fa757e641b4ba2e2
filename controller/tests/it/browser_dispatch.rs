//! Dispatch by distance in a real headless Chromium: the dispatcher opens a ticket by hand
//! from the store's page, and the ticket's page names the engineer who lives nearer (not
//! the one first by id), with the drive in the reasons and the other engineer's longer one.
//! Skipped like `browser` when chromedriver is missing.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;

use crate::browser::{chromedriver, session, sign_in};
use crate::common::Controller;

type Cmd<T> = Result<T, fantoccini::error::CmdError>;

async fn put(ctl: &Controller, path: &str, body: serde_json::Value) {
    let (s, v) = ctl.call("PUT", path, Some(&body), true).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_opened_in_the_browser_goes_to_the_nearer_engineer_and_says_why() {
    let Some((_driver, webdriver)) = chromedriver() else {
        return;
    };
    let ctl = Controller::start(None);
    put(
        &ctl,
        "/api/v1/stores/HH7",
        json!({"code": "HH7", "name": "Hamburg Altona", "region": "north", "timezone": "Europe/Berlin",
               "place": {"lat": 53.55, "lon": 9.93}}),
    )
    .await;
    // Both fit alike; the first by id lives in Berlin, the other in Hamburg.
    for (id, lat, lon) in [("a.berlin", 52.52, 13.40), ("b.hamburg", 53.57, 10.02)] {
        put(
            &ctl,
            &format!("/api/v1/engineers/{id}"),
            json!({"id": id, "name": id, "skills": ["printers"], "regions": ["north"], "shift": "24/7",
                   "home": {"lat": lat, "lon": lon}}),
        )
        .await;
    }
    let base = ctl.url();
    let c = session(&webdriver, (1280, 900), &ctl).await;
    let result: Cmd<()> = async {
        c.goto(&format!("{base}/stores/HH7")).await?;
        let password =
            std::fs::read_to_string(ctl.dir.path().join("state/admin-password")).unwrap();
        sign_in(&c, "admin", password.trim()).await?;
        c.wait()
            .for_element(Locator::LinkText("Open a ticket"))
            .await?
            .click()
            .await?;
        c.wait()
            .for_element(Locator::Css("#ticket-form input[name=title]"))
            .await?
            .send_keys("Label printer smears")
            .await?;
        c.find(Locator::Css("#ticket-form input[name=skill]"))
            .await?
            .send_keys("printers")
            .await?;
        c.find(Locator::Css("#ticket-form button"))
            .await?
            .click()
            .await?;
        // Dispatch runs right after; the page shows whom it chose.
        let mut who = String::new();
        for _ in 0..40 {
            if let Ok(e) = c.find(Locator::Css("#engineer")).await {
                who = e.text().await.unwrap_or_default();
                if who == "b.hamburg" {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            c.refresh().await?;
        }
        assert_eq!(who, "b.hamburg", "the nearer engineer");
        let url = c.current_url().await?;
        assert!(url.path().starts_with("/tickets/"), "{url}");
        let timeline = c.find(Locator::Css("#timeline")).await?.text().await?;
        assert!(
            timeline.contains("Assigned b.hamburg") && timeline.contains("from home base"),
            "{timeline}"
        );
        // Berlin to Hamburg is some 250 km in a straight line: hours, not minutes.
        let berlin = timeline
            .split("also fit: a.berlin (")
            .nth(1)
            .unwrap_or_else(|| panic!("the other engineer's drive: {timeline}"));
        assert!(berlin.contains(" h "), "{berlin}");
        Ok(())
    }
    .await;
    let _ = c.close().await;
    result.unwrap();
}
