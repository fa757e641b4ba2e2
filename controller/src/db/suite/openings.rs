//! The openings' watch on both backends, on a moved clock: nothing while the day is far,
//! one warning (an event and a ticket) inside the warning's days, nothing more the next
//! day, the day passed with the store still not ready: an event `store.opening_late` and the
//! ticket escalated with its priority raised; once the gateway reports the device, the store
//! is ready and the ticket resolves itself.

use storefleet_storage::{args, Sql, SqlExt as _};

use crate::db::testing::on_each_backend;
use crate::db::DbError;
use crate::fleet::Rules;
use crate::openings::{self, watch, Opening, StoreFormat};
use crate::tickets::Ctx;

const DAY: i64 = 86_400_000;

fn ctx() -> Ctx {
    Ctx {
        settings: crate::config::TicketsSection::default(),
        hooks: std::sync::Arc::new(Vec::new()),
        public_url: "https://controller.example".into(),
    }
}

fn at(now: i64) -> Rules {
    Rules::new(&crate::config::PresenceSection::default(), now)
}

fn count(c: &dyn Sql, sql: &str) -> Result<i64, DbError> {
    c.int(sql, args![], "n")
}

#[test]
fn a_store_not_ready_is_warned_once_then_escalated_when_late_and_resolved_when_ready() {
    on_each_backend("openings watch", |backend, db| {
        // Opens on 2027-03-10 in Berlin; noon UTC each day.
        let day = openings::day_start("2027-03-10", "Europe/Berlin").unwrap() + 13 * 3_600_000;
        db(&mut |c| {
            c.execute(
                "INSERT INTO stores(code, name, region, timezone, created_at) VALUES ('N1', 'New', 'north', 'Europe/Berlin', 0)",
                args![],
            )?;
            let f: StoreFormat = serde_json::from_value(serde_json::json!({
                "name": "mini", "devices": [{"class": "ups"}]
            }))
            .unwrap();
            openings::put_format(c, &f, "test", 0)?;
            let o = Opening { format: "mini".into(), opens_on: "2027-03-10".into() };
            openings::set(c, "N1", &o, "test", 0)?;
            let ctx = ctx();
            let run = |now: i64| watch::run(c, &ctx, &at(now));
            assert_eq!(run(day - 5 * DAY)?.warned, 0, "{backend}: five days ahead");
            assert_eq!(run(day - 2 * DAY)?.warned, 1, "{backend}: two days ahead");
            assert_eq!(run(day - DAY)?.warned, 0, "{backend}: warned already");
            let t = c.one("SELECT id, priority, escalation, severity FROM tickets", args![])?.unwrap();
            let (id, priority) = (t.i64("id")?, t.i64("priority")?);
            assert_eq!((t.i64("escalation")?, t.text("severity")?.as_str()), (0, "major"));
            assert_eq!(run(day + DAY)?.warned, 1, "{backend}: the day has passed");
            assert_eq!(run(day + 2 * DAY)?.warned, 0, "{backend}: late once");
            let t = c.one("SELECT priority, escalation FROM tickets WHERE id = ?1", args![id])?.unwrap();
            assert_eq!(t.i64("escalation")?, 2, "{backend}");
            assert_eq!(t.i64("priority")?, priority - 1, "{backend}: raised");
            assert_eq!(count(c, "SELECT count(*) AS n FROM tickets")?, 1, "{backend}");
            let codes: Vec<String> = c.all(
                "SELECT code FROM events WHERE store_code = 'N1' ORDER BY ts",
                args![],
                |r| r.text("code"),
            )?;
            assert_eq!(codes, ["store.not_ready", "store.opening_late"], "{backend}");

            // The gateway comes and reports the UPS: ready, the ticket resolves itself.
            let now = day + 3 * DAY;
            c.execute(
                "INSERT INTO agents(id, public_key, store_code, enrolled_at, presence, last_seen) VALUES ('gw', 'k', 'N1', 0, 'online', ?1)",
                args![now],
            )?;
            c.execute(
                "INSERT INTO devices(store_code, device, agent_id, class, interval_ms, last_seen, state) VALUES ('N1', 'ups-1', 'gw', 'ups', 10000, ?1, 'up')",
                args![now],
            )?;
            let done = run(now)?;
            assert_eq!(done.resolved, 1, "{backend}");
            let status = c.one("SELECT status FROM tickets WHERE id = ?1", args![id])?.unwrap();
            assert_eq!(status.text("status")?, "resolved", "{backend}");
            Ok(())
        })
        .unwrap();
    });
}
