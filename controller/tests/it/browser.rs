//! The web UI in a real headless Chromium (Debian's `chromium` and `chromium-driver`,
//! installed by `scripts/install-browser.sh`): sign in, overview -> store -> device chart ->
//! asset search -> CSV. Skipped when chromedriver is missing, unless
//! `STOREFLEET_TEST_BROWSER` is set (CI sets it), then it fails.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use crate::common::{enrolled_home, eventually, post_json, Controller};

pub struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn chromedriver() -> Option<(Driver, String)> {
    let found = Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("STOREFLEET_TEST_BROWSER").is_none(),
            "STOREFLEET_TEST_BROWSER is set but chromedriver is missing: run scripts/install-browser.sh"
        );
        eprintln!("skipped: chromedriver not found (scripts/install-browser.sh installs it)");
        return None;
    }
    let port = storefleet_testkit::free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "chromedriver did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((Driver(child), format!("http://{addr}")))
}

/// A page on another origin (HTTPS with `ctl`'s certificate, which the browser trusts, on a
/// port of its own) that posts a form to `action` as soon as it loads, as a hostile page
/// would; returns its URL.
async fn cross_site_form(ctl: &Controller, action: &str) -> String {
    let page = format!(
        "<!doctype html><html><body><form id=f method=post action=\"{action}\"><input type=hidden name=x value=1></form><script>document.getElementById('f').submit()</script></body></html>"
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    let config = ctl.config();
    let addr = crate::common::serve_tls(app, &config.tls_cert_path(), &config.tls_key_path()).await;
    format!("https://{addr}/")
}

/// A headless Chromium session with a window of `size` (CSS pixels) that trusts `ctl`'s
/// self-signed certificate by its pinned key (Chromium's SPKI list takes the same SHA-256
/// as our pin), and no other certificate that its own store does not.
pub async fn session(webdriver: &str, size: (u32, u32), ctl: &Controller) -> fantoccini::Client {
    let mut args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-gpu".into(),
        "--disable-background-networking".into(),
        format!("--window-size={},{}", size.0, size.1),
    ];
    if let Some(pin) = ctl.trust().pin {
        let spki = pin.to_string();
        args.push(format!(
            "--ignore-certificate-errors-spki-list={}",
            spki.trim_start_matches("sha256//")
        ));
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), json!({ "args": args }));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(webdriver)
        .await
        .expect("WebDriver session")
}

/// Fills in and sends the login form the browser is on.
pub async fn sign_in(
    c: &fantoccini::Client,
    user: &str,
    password: &str,
) -> Result<(), fantoccini::error::CmdError> {
    c.find(Locator::Css("input[name=user]"))
        .await?
        .send_keys(user)
        .await?;
    c.find(Locator::Css("input[name=password]"))
        .await?
        .send_keys(password)
        .await?;
    c.find(Locator::Css("form.login button"))
        .await?
        .click()
        .await?;
    Ok(())
}

const DEVICES: &str = r#"
[[devices]]
id = "printer-1"
class = "receipt-printer"
vendor = "Epson"
model = "TM-T88VI"
serial = "X5EBROWSER1"
firmware = "30.05"
probe = { type = "push" }

[[devices]]
id = "fridge-1"
class = "fridge-sensor"
serial = "CRBROWSER2"
interval_secs = 30
probe = { type = "push" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_store_device_chart_asset_search_and_csv_in_chromium() {
    let Some((_driver, webdriver)) = chromedriver() else {
        return;
    };
    let ctl = Controller::start(None);
    let (s, _) = ctl
        .call(
            "PUT",
            "/api/v1/stores/S500",
            Some(&json!({"code": "S500", "name": "Browser store", "region": "west"})),
            true,
        )
        .await;
    assert_eq!(s, 200);
    let home = enrolled_home(&ctl, "S500", DEVICES);
    let _agent = home.spawn();
    let now = storefleet_protocol::now_ms();
    let points: Vec<_> = (0..20)
        .map(|i| json!({"t": now - (20 - i) * 60_000, "v": 50.0 + f64::from(i as i32)}))
        .collect();
    let (s, _) = post_json(
        home.ingest,
        "/v1/telemetry",
        &json!({"device": "printer-1", "series": [{"metric": "paper_pct", "points": points}]}),
    )
    .await
    .unwrap();
    assert_eq!(s, 200);
    eventually(30, "assets and telemetry at the controller", || async {
        let a = ctl.get("/api/v1/assets?store=S500").await;
        let s = ctl.get("/api/v1/stores/S500/series?device=printer-1").await;
        (a["total"] == 3 && s.as_array().is_some_and(|v| !v.is_empty())).then_some(())
    })
    .await;

    // A task that must wait: its window is "while open" and the store has no hours yet.
    let (s, task) = ctl
        .call(
            "POST",
            "/api/v1/tasks",
            Some(&json!({"action": {"type": "routine", "name": "log-cleanup"}, "select": {"stores": ["S500"]}, "window": {"when": "open"}})),
            true,
        )
        .await;
    assert_eq!(s, 201, "{task}");
    let task_id = task["id"].as_str().unwrap().to_owned();

    let c = session(&webdriver, (1280, 900), &ctl).await;
    let base = ctl.url();
    let result = async {
        // Not signed in: the login page, which returns to where we were going.
        c.goto(&format!("{base}/")).await?;
        assert!(c.current_url().await?.path().starts_with("/login"));
        let password =
            std::fs::read_to_string(ctl.dir.path().join("state/admin-password")).unwrap();
        sign_in(&c, "admin", password.trim()).await?;

        // Overview -> store.
        c.wait().for_element(Locator::Css("#stores")).await?;
        assert_eq!(
            c.find(Locator::Css("#stores-total")).await?.text().await?,
            "1"
        );
        c.find(Locator::Css("a.store-link[href='/stores/S500']"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("#devices")).await?;
        assert!(c
            .find(Locator::Css("h1"))
            .await?
            .text()
            .await?
            .contains("Browser store"));

        // Store -> device chart.
        c.find(Locator::Css(
            "a.device-link[href='/stores/S500/devices/printer-1']",
        ))
        .await?
        .click()
        .await?;
        let chart = c.wait().for_element(Locator::Css("figure.chart")).await?;
        let n: usize = chart
            .attr("data-points")
            .await?
            .unwrap_or_default()
            .parse()
            .unwrap_or(0);
        assert_eq!(n, 20, "the chart draws every point of the last 6 hours");
        assert!(c
            .find(Locator::Css("figure.chart svg polyline"))
            .await
            .is_ok());

        // Asset search by serial.
        c.find(Locator::Css("header nav a[href='/assets']"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("#asset-search")).await?;
        c.find(Locator::Css("#asset-search input[name=q]"))
            .await?
            .send_keys("X5EBROWSER")
            .await?;
        c.find(Locator::Css("#asset-search button"))
            .await?
            .click()
            .await?;
        for _ in 0..100 {
            if c.current_url()
                .await?
                .query()
                .is_some_and(|q| q.contains("q=X5EBROWSER"))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let rows = c.find_all(Locator::Css("#assets a.asset-link")).await?;
        assert_eq!(rows.len(), 1, "one asset matches the serial");
        let table = c.find(Locator::Css("#assets")).await?.text().await?;
        assert!(
            table.contains("X5EBROWSER1") && !table.contains("CRBROWSER2"),
            "{table}"
        );

        // The CSV link, fetched by the page with its session, has the same one asset.
        let href = c
            .find(Locator::Css("#csv-link"))
            .await?
            .attr("href")
            .await?
            .unwrap_or_default();
        let csv = c
            .execute_async(
                "fetch(arguments[0]).then(r => r.text()).then(arguments[1])",
                vec![json!(href)],
            )
            .await?;
        let csv = csv.as_str().unwrap_or_default().to_owned();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("id,kind,store,region"), "{csv}");
        assert_eq!(lines.len(), 2, "{csv}");
        assert!(
            lines[1].contains("X5EBROWSER1")
                && lines[1].contains("S500")
                && lines[1].contains("west"),
            "{csv}"
        );

        // Another origin (HTTPS on another port of the same host: the same "site" for
        // SameSite, so the browser sends the session cookie) posts a form to pause the task.
        // The controller refuses it by its Origin; the same button on the controller's own
        // page works below.
        let evil = cross_site_form(&ctl, &format!("{base}/tasks/{task_id}/pause")).await;
        c.goto(&evil).await?;
        let t = eventually(20, "the cross-site post refused or done", || async {
            let t = ctl.get(&format!("/api/v1/tasks/{task_id}")).await;
            (t["phase"] == "paused" || ctl.log().contains("Refused a cross-site request"))
                .then_some(t)
        })
        .await;
        assert_ne!(t["phase"], "paused", "a cross-site form paused the task");
        c.goto(&format!("{base}/")).await?;

        // Tasks: the list, one task with its waves and targets, pause and cancel.
        c.find(Locator::Css("header nav a[href='/tasks']"))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("#tasks")).await?;
        c.find(Locator::Css(&format!("#tasks a[href='/tasks/{task_id}']")))
            .await?
            .click()
            .await?;
        c.wait().for_element(Locator::Css("#targets")).await?;
        let targets = c.find(Locator::Css("#targets")).await?.text().await?;
        assert!(
            targets.contains("S500") && targets.contains("queued"),
            "{targets}"
        );
        assert!(c.find(Locator::Css("#waves")).await.is_ok());
        for (button, phase) in [("pause", "paused"), ("cancel", "cancelled")] {
            // The form's post navigates in the background after the click; loading another
            // page before it has gone would abort it. So wait until the page the click left
            // is gone (its elements turn stale), then read, reloading only if needed.
            let before = c.find(Locator::Css("#phase")).await?;
            c.find(Locator::Css(&format!("form[action$='/{button}'] button")))
                .await?
                .click()
                .await?;
            for _ in 0..100 {
                if before.text().await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut seen = String::new();
            for _ in 0..100 {
                if let Ok(e) = c.find(Locator::Css("#phase")).await {
                    seen = e.text().await.unwrap_or_default();
                }
                if seen == phase {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                c.goto(&format!("{base}/tasks/{task_id}")).await?;
            }
            assert_eq!(seen, phase, "after {button}");
        }
        let targets = c.find(Locator::Css("#targets")).await?.text().await?;
        assert!(targets.contains("cancelled"), "{targets}");
        Ok::<_, fantoccini::error::CmdError>(())
    }
    .await;
    let _ = c.close().await;
    result.expect("browser walk");
}
