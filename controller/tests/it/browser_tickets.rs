//! Tickets in a real headless Chromium, with a real agent whose printer its routine cannot
//! heal: the engineer, on a phone-sized window, sees the next stop with what the agent
//! already tried, accepts, goes, checks in and resolves with a report; the dispatcher, on a
//! desktop window, reads the timeline, closes with a rating and sees the KPIs move.
//! Skipped like `browser` when chromedriver is missing.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;

use crate::browser::{chromedriver, session, sign_in};
use crate::common::{eventually, Controller, STOREFLEET};
use crate::store_page::{act, open};
use crate::tickets::{broken_printer, full, printer, tickets_of, RULES};

type Cmd<T> = Result<T, fantoccini::error::CmdError>;

fn set_password(ctl: &Controller, user: &str, password: &str, role: &str) {
    let mut child = Command::new(STOREFLEET)
        .arg("--config")
        .arg(ctl.config_path())
        .args(["set-password", user, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The text of `css`; a page that navigates meanwhile (after a click) is read again.
async fn text(c: &Client, css: &str) -> Cmd<String> {
    let mut tries = 0;
    loop {
        let read = match c.wait().for_element(Locator::Css(css)).await {
            Ok(e) => e.text().await,
            Err(e) => Err(e),
        };
        match read {
            Err(fantoccini::error::CmdError::Standard(e))
                if tries < 50
                    && e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// Clicks the next-step button labelled `label` and waits for the status to become `after`.
async fn step(c: &Client, label: &str, after: &str) -> Cmd<()> {
    let buttons = c.find_all(Locator::Css("#next-stop button.big")).await?;
    let mut found = None;
    for b in buttons {
        if b.text().await? == label {
            found = Some(b);
        }
    }
    let Some(b) = found else {
        panic!(
            "no button {label:?} on {}",
            text(c, "#next-stop").await.unwrap_or_default()
        );
    };
    b.click().await?;
    let mut seen = String::new();
    for _ in 0..100 {
        if let Ok(e) = c.find(Locator::Css("#next-status")).await {
            seen = e.text().await.unwrap_or_default();
            if seen == after {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("after {label:?} the status is {seen:?}, not {after:?}");
}

/// Opens a ticket at `store` and assigns it to anna; its id.
async fn assign_another(ctl: &Controller, store: &str, title: &str) -> i64 {
    let id = open(ctl, store, title).await;
    act(ctl, id, json!({"action": "assign", "engineer": "anna"})).await;
    id
}

/// Waits (up to 45 s: the strip checks every 30 s) until the field view's live strip says
/// `what`; its text.
async fn live_says(c: &Client, what: &str) -> Cmd<String> {
    let mut said = String::new();
    for _ in 0..90 {
        c.find(Locator::Css("iframe#live"))
            .await?
            .enter_frame()
            .await?;
        said = match c.find(Locator::Css("#live-state")).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        c.enter_parent_frame().await?;
        if said.contains(what) {
            return Ok(said);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the live strip says {said:?}, not {what:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engineer_works_a_ticket_on_a_phone_and_the_dispatcher_closes_it() {
    let Some((_driver, webdriver)) = chromedriver() else {
        return;
    };
    let ctl = Controller::start_with(None, RULES);
    let (home, _agent) = broken_printer(&ctl, "B1").await;
    let id = eventually(
        60,
        "a printer ticket assigned to anna with the attempt",
        || async {
            let t = tickets_of(&ctl, "B1").await.into_iter().next()?;
            let id = t["id"].as_i64()?;
            let f = full(&ctl, id).await;
            let tried = f["timeline"]
                .as_array()?
                .iter()
                .any(|e| e["kind"] == "self_heal" && e["data"]["outcome"] == "escalated");
            let assets = f["ticket"]["assets"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            (f["ticket"]["engineer"] == "anna" && tried && assets).then_some(id)
        },
    )
    .await;
    set_password(&ctl, "anna", "field-pass-1", "engineer");
    let base = ctl.url();

    let phone = session(&webdriver, (390, 844), &ctl).await;
    let result: Cmd<()> = async {
        phone.goto(&format!("{base}/field")).await?;
        sign_in(&phone, "anna", "field-pass-1").await?;
        let next = text(&phone, "#next-stop").await?;
        assert!(
            next.contains("Receipt printer down") && next.contains("Hauptstrasse 1"),
            "{next}"
        );
        let tried = text(&phone, "ul.tried").await?;
        assert!(tried.contains("Self-heal printer-reset"), "{tried}");
        assert!(next.contains("X5E-"), "the printer's serial: {next}");
        // Usable on a phone: nothing wider than the screen.
        let fits = phone
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth",
                vec![],
            )
            .await?;
        assert_eq!(fits, json!(true), "the field view scrolls sideways");

        step(&phone, "Accept", "accepted").await?;
        step(&phone, "On my way", "en route").await?;
        step(&phone, "Check in: I am on site", "on site").await?;
        // The engineer replaces the part: the printer reports back up.
        printer(&home, true).await;
        let report = "Cutter blade broken; replaced it, printed a test receipt";
        let (first, rest) = report.split_at(20);
        phone
            .find(Locator::Css("form.resolve textarea[name=report]"))
            .await?
            .send_keys(first)
            .await?;
        // A mark on this very page: a reload would wipe it.
        phone
            .execute("window.drawnOnce = 'yes'; return null", vec![])
            .await?;
        // Half-way through the report the dispatcher sends anna another ticket: the view's
        // live strip says so, and the page with the report is not reloaded under her.
        let second = assign_another(&ctl, "B1", "Scale weighs wrong").await;
        let said = live_says(&phone, &format!("New: #{second} Scale weighs wrong")).await?;
        assert!(said.contains("Show"), "{said}");
        let area = phone
            .find(Locator::Css("form.resolve textarea[name=report]"))
            .await?;
        assert_eq!(
            area.prop("value").await?.as_deref(),
            Some(first),
            "typed text lost"
        );
        let mark = phone
            .execute("return window.drawnOnce || null", vec![])
            .await?;
        assert_eq!(mark, json!("yes"), "the page was reloaded");
        area.send_keys(rest).await?;
        phone
            .find(Locator::Css("form.resolve button"))
            .await?
            .click()
            .await?;
        let mut after = String::new();
        for _ in 0..100 {
            after = text(&phone, "#next-stop").await?;
            if after.contains("Scale weighs wrong") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            after.contains("Scale weighs wrong"),
            "the next ticket: {after}"
        );
        // A refused action keeps what was typed: anna writes why she holds the second
        // ticket while the dispatcher cancels it.
        phone
            .find(Locator::Css("#next-stop input[name=reason]"))
            .await?
            .send_keys("waiting for the store manager")
            .await?;
        act(
            &ctl,
            second,
            json!({"action": "cancel", "reason": "sent by mistake"}),
        )
        .await;
        phone
            .find(Locator::Css("#next-stop form.act button"))
            .await?
            .click()
            .await?;
        let refused = text(&phone, "#refused").await?;
        assert!(refused.contains("cancelled"), "{refused}");
        let kept = phone.find(Locator::Css("textarea#kept")).await?;
        assert_eq!(
            kept.prop("value").await?.as_deref(),
            Some("waiting for the store manager")
        );
        phone.goto(&format!("{base}/field")).await?;
        let after = text(&phone, "#next-stop").await?;
        assert!(after.contains("No open tickets"), "{after}");
        // An engineer's session does not reach the admin's pages, nor shows them.
        let nav = text(&phone, "header nav").await?;
        assert!(!nav.contains("Enrollment"), "{nav}");
        phone.goto(&format!("{base}/enroll")).await?;
        let body = text(&phone, "main").await?;
        assert!(
            body.contains("403") && body.contains("admin role"),
            "{body}"
        );
        Ok(())
    }
    .await;
    let _ = phone.close().await;
    result.expect("the engineer's walk");

    let f = full(&ctl, id).await;
    assert_eq!(f["ticket"]["status"], "resolved", "{f}");
    assert!(f["ticket"]["on_site_at"].is_i64(), "{f}");
    assert!(f["ticket"]["report"]
        .as_str()
        .unwrap()
        .contains("Cutter blade"));
    let by_anna = f["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "user:anna")
        .count();
    assert!(by_anna >= 4, "accept, en route, check in, resolve: {f}");

    let desk = session(&webdriver, (1280, 900), &ctl).await;
    let result: Cmd<()> = async {
        desk.goto(&format!("{base}/tickets?status=all")).await?;
        let password =
            std::fs::read_to_string(ctl.dir.path().join("state/admin-password")).unwrap();
        sign_in(&desk, "admin", password.trim()).await?;
        desk.wait().for_element(Locator::Css("#tickets")).await?;
        desk.find(Locator::Css(&format!(
            "a.ticket-link[href='/tickets/{id}']"
        )))
        .await?
        .click()
        .await?;
        let tl = text(&desk, "#timeline").await?;
        assert!(
            tl.contains("Self-heal printer-reset") && tl.contains("user:anna"),
            "{tl}"
        );
        assert!(text(&desk, "#report").await?.contains("Cutter blade"));
        desk.find(Locator::Css("select[name=rating] option[value='4']"))
            .await?
            .click()
            .await?;
        desk.find(Locator::Css("form.act input[value=close] ~ button"))
            .await?
            .click()
            .await?;
        let mut status = String::new();
        for _ in 0..100 {
            status = text(&desk, "#status").await?;
            if status == "closed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status, "closed");

        desk.find(Locator::Css("header nav a[href='/kpis']"))
            .await?
            .click()
            .await?;
        // The printer's ticket and the cancelled second one opened; one resolved.
        assert_eq!(text(&desk, "#kpi-tickets").await?, "2 / 1");
        assert_eq!(text(&desk, "#kpi-self-heal").await?, "0 %");
        let charts = desk.find_all(Locator::Css("figure.chart svg")).await?;
        assert_eq!(charts.len(), 3, "opened, resolved and healed per day");
        Ok(())
    }
    .await;
    let _ = desk.close().await;
    result.expect("the dispatcher's walk");
    assert_eq!(full(&ctl, id).await["ticket"]["rating"], 4);
}
