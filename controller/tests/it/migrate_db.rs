//! `storefleet migrate-db`: a controller that ran on SQLite (stores, an engineer, a real
//! agent, its telemetry, a ticket) is stopped, copied into an empty PostgreSQL database by
//! the real command, and started again on PostgreSQL: the same stores, tickets, points and
//! API token, and new rows get new ids (the identity sequences continue). A second copy
//! into the now full database is refused. Runs where `STOREFLEET_TEST_PG` is set, in the
//! suite's SQLite pass.

use serde_json::{json, Value};

use crate::common::{eventually, Controller};
use crate::tickets::{engineer, printer, store, wait_online, RULES};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_installation_moves_to_postgresql_verified() {
    if std::env::var("STOREFLEET_TEST_DATABASE").as_deref() == Ok("postgres") {
        eprintln!("skipped: the source must be SQLite (runs in the suite's first pass)");
        return;
    }
    let Some(db) = storefleet_storage::postgres::testing::database("migrate-db") else {
        eprintln!("skipped: STOREFLEET_TEST_PG is not set (CI sets it)");
        return;
    };
    let mut ctl = Controller::start_with(None, RULES);
    store(&ctl, "T1", "north").await;
    engineer(&ctl, "anna", &["printers"], "north").await;
    let home = crate::tickets::gateway(&ctl, "T1", false);
    let agent = home.spawn();
    wait_online(&ctl, "T1").await;
    printer(&home, false).await;
    eventually(60, "the printer's ticket", || async {
        let t = crate::tickets::tickets_of(&ctl, "T1").await;
        (t.len() == 1).then_some(())
    })
    .await;
    // Readings travel in batches a few seconds behind the events ([upload]).
    let before = eventually(30, "the gateway's readings", || async {
        let s = snapshot(&ctl).await;
        (!s["series"].as_array()?.is_empty()).then_some(s)
    })
    .await;
    assert_eq!(before["tickets"].as_array().unwrap().len(), 1, "{before}");
    ctl.kill();
    drop(agent);

    let url_file = ctl.dir.path().join("pg-url");
    std::fs::write(&url_file, &db.url).unwrap();
    let to = format!("@{}", url_file.display());
    let (ok, out, err) = ctl.cli(&["migrate-db", "--to", &to]);
    assert!(ok, "{out}\n{err}");
    for table in ["stores", "tickets", "points", "agents", "users"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(table) && l.contains("checksum")),
            "{table}: {out}"
        );
    }
    assert!(out.contains("each the same in both"), "{out}");
    let (ok, _, err) = ctl.cli(&["migrate-db", "--to", &to]);
    assert!(
        !ok && err.contains("already holds") && err.contains("empty database"),
        "{err}"
    );

    // The same controller, now on PostgreSQL.
    std::fs::write(
        ctl.dir.path().join("controller.d/60-postgres.toml"),
        format!("[database]\nurl = \"{}\"\n", db.url),
    )
    .unwrap();
    ctl.spawn();
    assert_eq!(ctl.config().database.url, db.url);
    assert_eq!(
        snapshot(&ctl).await,
        before,
        "what the API shows is the same"
    );
    let (s, v) = ctl
        .call(
            "POST",
            "/api/v1/tickets",
            Some(&json!({"store": "T1", "title": "Scale drifts", "skill": "printers", "severity": "minor"})),
            true,
        )
        .await;
    assert_eq!(s, 201, "a new ticket gets a new id: {v}");
    let old = before["tickets"][0][0].as_i64().unwrap();
    assert!(v["id"].as_i64().unwrap() > old, "{v}");
}

/// What the API shows of the installation that does not move while it runs (no ticket
/// states, no last readings: the copy itself compares every row).
async fn snapshot(ctl: &Controller) -> Value {
    let pick = |v: Value, keys: &[&str]| -> Value {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| keys.iter().map(|k| x[*k].clone()).collect::<Value>())
            .collect()
    };
    json!({
        "stores": pick(ctl.get("/api/v1/stores").await, &["code", "name", "region"]),
        "engineers": pick(ctl.get("/api/v1/engineers").await, &["id", "skills", "regions"]),
        "tickets": pick(ctl.get("/api/v1/tickets?store=T1").await, &["id", "title", "store"]),
        "series": pick(ctl.get("/api/v1/stores/T1/series").await, &["device", "metric"]),
        "assets": pick(ctl.get("/api/v1/assets?store=T1").await["items"].clone(), &["id", "serial", "class"]),
    })
}
