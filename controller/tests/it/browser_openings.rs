//! Opening a store, all in a real headless Chromium: the admin writes a store format on the
//! formats page, opens a new store from it on the board's form, watches its readiness page
//! go from everything missing to the real gateway's devices ready (the format's routine run
//! on it), ticks the go-live check, and sees the store ready on the board. Skipped like
//! `browser` when chromedriver is missing.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;

use crate::browser::{chromedriver, session, sign_in};
use crate::common::Controller;

type Cmd<T> = Result<T, fantoccini::error::CmdError>;

const FORMAT: &str = r#"name = "corner"
description = "Corner shop"
checklist = ["Staff trained"]

[[devices]]
class = "receipt-printer"
profile = "Epson TM-T88"

[[devices]]
class = "ups"

[[tasks]]
type = "routine"
name = "printer-reset"
ignore_window = true
"#;

/// Reloads until `css` holds `what` (up to `secs`); its text.
async fn until(c: &Client, css: &str, what: &str, secs: u64) -> Cmd<String> {
    until_n(c, css, what, 1, secs).await
}

/// Reloads until `css` holds `what` at least `n` times (up to `secs`); its text.
async fn until_n(c: &Client, css: &str, what: &str, n: usize, secs: u64) -> Cmd<String> {
    let mut seen = String::new();
    for _ in 0..secs * 2 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            seen = e.text().await.unwrap_or_default();
            if seen.matches(what).count() >= n {
                return Ok(seen);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.refresh().await?;
    }
    panic!("{css} says {seen:?}, not {n} x {what:?}");
}

async fn field(c: &Client, name: &str, value: &str) -> Cmd<()> {
    c.find(Locator::Css(&format!("#open-store input[name={name}]")))
        .await?
        .send_keys(value)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_is_opened_from_a_format_and_made_ready_in_the_browser() {
    let Some((_driver, webdriver)) = chromedriver() else {
        return;
    };
    let config =
        crate::tickets::RULES.replacen("[tickets]\n", "[tickets]\nopening_check_secs = 1\n", 1);
    let ctl = Controller::start_with(None, &config);
    let base = ctl.url();
    let opens = jiff::Timestamp::now()
        .in_tz("Europe/Berlin")
        .unwrap()
        .date()
        .checked_add(jiff::Span::new().days(10))
        .unwrap()
        .to_string();
    let c = session(&webdriver, (1280, 900), &ctl).await;
    let result: Cmd<()> = async {
        c.goto(&format!("{base}/formats")).await?;
        let password =
            std::fs::read_to_string(ctl.dir.path().join("state/admin-password")).unwrap();
        sign_in(&c, "admin", password.trim()).await?;
        // After the sign-in, the formats page it came for.
        c.wait()
            .for_element(Locator::Css("#format-form textarea[name=toml]"))
            .await?
            .send_keys(FORMAT)
            .await?;
        c.find(Locator::Css("#format-form button")).await?.click().await?;
        let shown = c
            .wait()
            .for_element(Locator::Css("#format-corner"))
            .await?
            .text()
            .await?;
        assert!(
            shown.contains("1 × receipt-printer (Epson TM-T88)") && shown.contains("printer-reset"),
            "{shown}"
        );

        // The board's form makes the store and its opening at once.
        c.goto(&format!("{base}/openings")).await?;
        field(&c, "code", "O7").await?;
        field(&c, "name", "Corner Altona").await?;
        field(&c, "region", "north").await?;
        field(&c, "timezone", "Europe/Berlin").await?;
        field(&c, "at", "53.55,9.93").await?;
        // A date input's typing depends on the browser's locale; its value does not.
        c.execute(
            "document.querySelector('#open-store input[name=opens_on]').value = arguments[0]; return null",
            vec![json!(opens)],
        )
        .await?;
        c.find(Locator::Css("#open-store button")).await?.click().await?;
        let head = until(&c, "#readiness-head", "format corner", 10).await?;
        assert!(head.contains("on track") && head.contains("in 10 days"), "{head}");
        let expected = c.find(Locator::Css("#expected")).await?.text().await?;
        assert_eq!(expected.matches("missing").count(), 2, "{expected}");
        let store = ctl.get("/api/v1/stores/O7").await;
        assert_eq!(store["name"], "Corner Altona", "{store}");
        assert_eq!(store["place"]["lat"], 53.55, "{store}");

        // The gateway arrives with its devices; the format's routine runs on it.
        let home = crate::tickets::gateway(&ctl, "O7", true);
        let _agent = home.spawn();
        crate::tickets::printer(&home, true).await;
        crate::tickets::reading(&home, "ups-1", "on_battery", 0.0).await;
        let tasks = until(&c, "#opening-tasks", "ready", 60).await?;
        assert!(tasks.contains("printer-reset"), "{tasks}");
        // Both expected devices report (the UPS's first reading may come a little later).
        let expected = until_n(&c, "#expected", "ready", 2, 60).await?;
        assert!(!expected.contains("missing"), "{expected}");
        let head = c.find(Locator::Css("#readiness-head")).await?.text().await?;
        assert!(head.contains("1 check open"), "{head}");

        // The last check, ticked by the admin: ready.
        c.find(Locator::Css("#checklist li.open form button"))
            .await?
            .click()
            .await?;
        let list = until(&c, "#checklist", "☑ Staff trained", 10).await?;
        assert!(list.contains("user:admin"), "{list}");
        let head = until(&c, "#readiness-head", "ready", 10).await?;
        assert!(head.starts_with("ready") && !head.contains("check open"), "{head}");

        c.goto(&format!("{base}/openings")).await?;
        let board = c.find(Locator::Css("#board")).await?.text().await?;
        assert!(board.contains("O7") && board.contains("2/2") && board.contains("ready"), "{board}");
        Ok(())
    }
    .await;
    let _ = c.close().await;
    result.unwrap();
}
