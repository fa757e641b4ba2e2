//! The rule engine's read, on both backends: the database hands over only the fleet's
//! exceptions (agents offline, devices down or stale, readings not clear of a threshold,
//! recent events of watched codes), judged exactly as the pure rules judge them, including
//! at the edges.

use storefleet_storage::{args, Sql};

use crate::alerts::eval::Reading;
use crate::alerts::{builtin, observe};
use crate::db::testing::on_each_backend;
use crate::db::DbError;
use crate::fleet::Rules;

pub(super) const NOW: i64 = 1_800_000_000_000;

/// The fixture's judgement: offline after 60 s, stale after three intervals (60 s unknown).
pub(super) const AT: Rules = Rules {
    now: NOW,
    offline_after_ms: 60_000,
    stale_after_intervals: 3,
    default_interval_ms: 60_000,
    data_behind_ms: 0,
};

fn agent(c: &dyn Sql, id: &str, presence: &str, last_seen: Option<i64>, revoked: bool) {
    c.execute(
        "INSERT INTO agents (id, public_key, store_code, enrolled_at, presence, last_seen, revoked_at)
         VALUES (?1, 'k', 'S1', 1, ?2, ?3, ?4)",
        args![id, presence, last_seen, revoked.then_some(NOW - 5)],
    )
    .unwrap();
}

fn device(c: &dyn Sql, id: &str, class: &str, state: &str, seen: Option<i64>, every: Option<i64>) {
    c.execute(
        "INSERT INTO devices (store_code, device, agent_id, class, interval_ms, last_seen, state, state_at, state_note)
         VALUES ('S1', ?1, 'a-on', ?2, ?3, ?4, ?5, ?6, '')",
        args![id, class, every, seen, state, NOW - 10],
    )
    .unwrap();
}

fn reading(c: &dyn Sql, device: &str, metric: &str, t: i64, v: f64) {
    c.execute(
        "INSERT INTO series (store_code, device, metric, last_t, last_v) VALUES ('S1', ?1, ?2, ?3, ?4)",
        args![device, metric, t, v],
    )
    .unwrap();
}

fn event(c: &dyn Sql, n: i64, code: &str, ts: i64) {
    c.execute(
        "INSERT INTO events (agent_id, store_code, event_id, ts, device, code, severity, message, received_at)
         VALUES ('a-on', 'S1', ?1, ?2, 'printer-1', ?3, 'error', 'gave up', ?2)",
        args![format!("e{n}"), ts, code],
    )
    .unwrap();
}

pub(super) fn fleet(c: &dyn Sql) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO stores (code, name, created_at) VALUES ('S1', 'One', 1)",
        args![],
    )?;
    agent(c, "a-on", "online", Some(NOW - 1_000), false);
    agent(c, "a-edge", "online", Some(NOW - 60_000), false);
    agent(c, "a-silent", "online", Some(NOW - 60_001), false);
    agent(c, "a-said", "offline", Some(NOW - 1_000), false);
    agent(c, "a-revoked", "offline", Some(NOW - 1_000), true);
    agent(c, "a-never", "unknown", None, false);
    // Three intervals of silence make a device stale; more than that, not exactly that.
    device(
        c,
        "printer-1",
        "receipt-printer",
        "down",
        Some(NOW),
        Some(10_000),
    );
    device(c, "pos-edge", "pos", "up", Some(NOW - 30_000), Some(10_000));
    device(c, "pos-1", "pos", "up", Some(NOW - 30_001), Some(10_000));
    // No interval of its own: the default (60 s) counts.
    device(c, "scale-ok", "scale", "up", Some(NOW - 100_000), None);
    device(c, "scale-1", "scale", "up", Some(NOW - 180_001), Some(0));
    device(c, "sign-1", "signage", "unknown", None, None);
    device(
        c,
        "fridge-hot",
        "fridge-sensor",
        "up",
        Some(NOW),
        Some(600_000),
    );
    device(
        c,
        "fridge-mid",
        "fridge-sensor",
        "up",
        Some(NOW),
        Some(600_000),
    );
    device(
        c,
        "fridge-ok",
        "fridge-sensor",
        "up",
        Some(NOW),
        Some(600_000),
    );
    device(
        c,
        "fridge-old",
        "fridge-sensor",
        "up",
        Some(NOW),
        Some(3_600_000),
    );
    // fridge-too-warm: above 8, clears below 6.
    reading(c, "fridge-hot", "temp_c", NOW - 5, 9.0);
    reading(c, "fridge-mid", "temp_c", NOW - 5, 7.0);
    reading(c, "fridge-ok", "temp_c", NOW - 5, 5.5);
    reading(
        c,
        "fridge-old",
        "temp_c",
        NOW - observe::MAX_READING_AGE_MS - 1,
        30.0,
    );
    reading(c, "", "host.disk.root.used_pct", NOW - 5, 95.0);
    reading(c, "", "host.load", NOW - 5, 99.0);
    event(c, 1, "routine.escalated", NOW - 60_000);
    event(c, 2, "routine.escalated", NOW - 3_600_001);
    event(c, 3, "routine.started", NOW - 1);
    Ok(())
}

#[test]
fn the_rule_read_holds_only_the_fleets_exceptions_on_both_backends() {
    let rules = builtin();
    let at = AT;
    on_each_backend("alert exceptions", |backend, db| {
        db(&mut |c| fleet(c)).unwrap();
        db(&mut |c| {
            let snap = observe::snapshot(c, &rules, &at)?;
            let agents: Vec<&str> = snap.agents.iter().map(|a| a.id.as_str()).collect();
            assert_eq!(agents, ["a-said", "a-silent"], "{backend}");
            let devices: Vec<&str> = snap.devices.iter().map(|d| d.device.as_str()).collect();
            assert_eq!(devices, ["pos-1", "printer-1", "scale-1"], "{backend}");
            let mut latest: Vec<(&str, &str, f64)> = snap
                .latest
                .iter()
                .map(|l| (l.device.as_str(), l.class.as_str(), l.v))
                .collect();
            latest.sort_by(|a, b| a.0.cmp(b.0));
            assert_eq!(
                latest,
                [
                    ("", "gateway", 95.0),
                    ("fridge-hot", "fridge-sensor", 9.0),
                    ("fridge-mid", "fridge-sensor", 7.0)
                ],
                "{backend}"
            );
            assert_eq!(snap.events.len(), 1, "{backend}: {:?}", snap.events);

            let mut seen: Vec<(String, Reading)> = observe::observe(&rules, &snap)
                .into_iter()
                .map(|o| (o.key.dedupe_key(), o.reading))
                .collect();
            seen.sort_by(|a, b| a.0.cmp(&b.0));
            let want = [
                ("device-stale/S1/scale-1", Reading::Holds),
                ("disk-nearly-full/S1/gateway", Reading::Holds),
                ("fridge-too-warm/S1/fridge-hot", Reading::Holds),
                ("fridge-too-warm/S1/fridge-mid", Reading::Between),
                ("gateway-offline/S1/a-said", Reading::Holds),
                ("gateway-offline/S1/a-silent", Reading::Holds),
                ("pos-service-down/S1/pos-1", Reading::Holds),
                ("printer-down/S1/printer-1", Reading::Holds),
                ("routine-escalated/S1/printer-1", Reading::Holds),
            ];
            let want: Vec<(String, Reading)> =
                want.iter().map(|(k, r)| ((*k).to_owned(), *r)).collect();
            assert_eq!(seen, want, "{backend}");
            Ok(())
        })
        .unwrap();
    });
}

/// While ingest is behind, a device whose readings are still on their way is not stale;
/// a down device stays down; a replica that stopped reporting no longer holds staleness
/// back, and no figure holds it back more than the cap.
#[test]
fn staleness_waits_for_an_ingest_that_is_behind_on_both_backends() {
    use crate::ingest::behind;
    let rules = builtin();
    on_each_backend("alerts behind", |backend, db| {
        db(&mut |c| fleet(c)).unwrap();
        db(&mut |c| {
            assert_eq!(behind::fleet(c, NOW)?, 0, "{backend}: nobody reported");
            behind::record(c, "r1", 20_000, NOW - 1_000)?;
            behind::record(c, "r2", 5_000, NOW)?;
            behind::record(c, "gone", 600_000, NOW - behind::FORGET_MS - 1)?;
            let mut at = AT;
            at.data_behind_ms = behind::fleet(c, NOW)?;
            assert_eq!(at.data_behind_ms, 20_000, "{backend}");
            let snap = observe::snapshot(c, &rules, &at)?;
            let devices: Vec<&str> = snap.devices.iter().map(|d| d.device.as_str()).collect();
            assert_eq!(devices, ["printer-1"], "{backend}: pos-1 and scale-1 wait");
            // Further behind than the cap: staleness waits for the cap only.
            behind::record(c, "r2", 3_600_000, NOW)?;
            assert_eq!(behind::fleet(c, NOW)?, behind::CAP_MS, "{backend}");
            // The report is written again, not added.
            assert_eq!(
                storefleet_storage::SqlExt::int(
                    c,
                    "SELECT count(*) AS n FROM ingest_behind",
                    args![],
                    "n"
                )?,
                3,
                "{backend}"
            );
            Ok(())
        })
        .unwrap();
    });
}

/// A second store beside the fixture's: a gateway not heard from, a printer down, a hot
/// fridge and an escalated routine.
fn second_store(c: &dyn Sql) -> Result<(), DbError> {
    for (sql, a) in [
        (
            "INSERT INTO stores (code, name, created_at) VALUES ('S2', 'Two', 1)",
            args![],
        ),
        (
            "INSERT INTO agents (id, public_key, store_code, enrolled_at, presence, last_seen)
             VALUES ('b-silent', 'k', 'S2', 1, 'online', ?1)",
            args![NOW - 120_000],
        ),
        (
            "INSERT INTO devices (store_code, device, agent_id, class, interval_ms, last_seen, state, state_at, state_note)
             VALUES ('S2', 'printer-2', 'b-silent', 'receipt-printer', 10000, ?1, 'down', ?1, 'jam'),
                    ('S2', 'fridge-2', 'b-silent', 'fridge-sensor', 600000, ?1, 'up', NULL, '')",
            args![NOW - 1_000],
        ),
        (
            "INSERT INTO series (store_code, device, metric, last_t, last_v) VALUES ('S2', 'fridge-2', 'temp_c', ?1, 12.5)",
            args![NOW - 1_000],
        ),
        (
            "INSERT INTO events (agent_id, store_code, event_id, ts, device, code, severity, message, received_at)
             VALUES ('b-silent', 'S2', 'f1', ?1, 'printer-2', 'routine.escalated', 'error', 'gave up', ?1)",
            args![NOW - 2_000],
        ),
    ] {
        c.execute(sql, a)?;
    }
    Ok(())
}

/// What the ticket engine reads when it looks at a few stores, store by store, must say
/// about them what the fleet's read says: the same observations, no more, no fewer.
#[test]
fn a_look_at_some_stores_observes_what_the_fleets_read_does_on_both_backends() {
    use std::collections::BTreeSet;
    let rules = builtin();
    on_each_backend("alert looks", |backend, db| {
        db(&mut |c| {
            fleet(c)?;
            second_store(c)
        })
        .unwrap();
        db(&mut |c| {
            let seen = |snap: &observe::Snapshot| {
                let mut o: Vec<(String, Reading, Option<i64>, String)> =
                    observe::observe(&rules, snap)
                        .into_iter()
                        .map(|o| (o.key.dedupe_key(), o.reading, o.since, o.detail))
                        .collect();
                o.sort_by(|a, b| a.0.cmp(&b.0));
                o
            };
            let whole = seen(&observe::snapshot(c, &rules, &AT)?);
            let of = |stores: &[&str]| -> Result<_, DbError> {
                let set: BTreeSet<String> = stores.iter().map(|s| (*s).to_owned()).collect();
                Ok(seen(&observe::snapshot_of(c, &rules, &AT, &set)?))
            };
            let part = |store: &str| -> Vec<_> {
                whole
                    .iter()
                    .filter(|o| o.0.split('/').nth(1) == Some(store))
                    .cloned()
                    .collect()
            };
            let s2 = part("S2");
            let s2: Vec<&str> = s2.iter().map(|o| o.0.as_str()).collect();
            assert_eq!(
                s2,
                [
                    "fridge-too-warm/S2/fridge-2",
                    "gateway-offline/S2/b-silent",
                    "printer-down/S2/printer-2",
                    "routine-escalated/S2/printer-2"
                ],
                "{backend}"
            );
            assert_eq!(part("S1").len(), 9, "{backend}");
            assert_eq!(of(&["S1"])?, part("S1"), "{backend}");
            assert_eq!(of(&["S2"])?, part("S2"), "{backend}");
            assert_eq!(of(&["S1", "S2"])?, whole, "{backend}");
            assert!(of(&["S9"])?.is_empty(), "{backend}");
            Ok(())
        })
        .unwrap();
    });
}

/// A pass that fires an alert already open (the engine fires again after a pass whose
/// commit it could not confirm) records it once.
#[test]
fn an_alert_fired_twice_is_recorded_once_on_both_backends() {
    use crate::alerts::eval::{AlertKey, Change};
    use crate::tickets::{pass, Ctx, Input};
    let rules: std::collections::HashMap<String, crate::alerts::Rule> =
        builtin().into_iter().map(|r| (r.name.clone(), r)).collect();
    let ctx = Ctx {
        settings: crate::config::TicketsSection::default(),
        hooks: std::sync::Arc::new(Vec::new()),
        public_url: "https://controller.example".into(),
    };
    let fired = [Change::Fired {
        key: AlertKey {
            rule: "printer-down".into(),
            store: "S1".into(),
            subject: "printer-1".into(),
        },
        since: NOW - 200_000,
        at: NOW,
        detail: "printer-1 is down".into(),
    }];
    on_each_backend("alert once", |backend, db| {
        db(&mut |c| fleet(c)).unwrap();
        for _ in 0..2 {
            db(&mut |c| {
                let input = Input {
                    ctx: &ctx,
                    rules: &rules,
                    changes: &fired,
                    now: NOW,
                };
                pass::run(c, &input).map(drop)
            })
            .unwrap();
        }
        db(&mut |c| {
            let open = storefleet_storage::SqlExt::int(
                c,
                "SELECT count(*) AS n FROM alerts WHERE rule = 'printer-down' AND cleared_at IS NULL",
                args![],
                "n",
            )?;
            assert_eq!(open, 1, "{backend}");
            Ok(())
        })
        .unwrap();
    });
}
