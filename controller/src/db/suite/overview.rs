//! The fleet overview on both backends: the per-store counts of the API's overview match
//! the rows judged one by one, and the page's summary (which reads only what is wrong)
//! matches the overview, for every way the page lists stores.

use storefleet_storage::{args, Sql};

use super::alerts::{fleet, AT, NOW};
use crate::db::testing::on_each_backend;
use crate::db::DbError;
use crate::fleet::tally::{self, MAX_AGE_MS};
use crate::fleet::{Listing, Overview, Rules, StoreStatus, HEALTHS};

/// A store line's counts: agents, online, devices, down, stale.
fn counts(s: &StoreStatus) -> (u32, u32, u32, u32, u32) {
    (
        s.agents,
        s.agents_online,
        s.devices,
        s.devices_down,
        s.devices_stale,
    )
}

/// The overview the slow way: every agent and device read and judged in Rust.
fn overview_by_rows(c: &dyn Sql, at: &Rules) -> crate::fleet::Overview {
    let agents = at.judge().list(c, None).unwrap();
    let devs = crate::fleet::devices(c, None, at).unwrap();
    let stores = crate::stores::list(c)
        .unwrap()
        .into_iter()
        .map(|s| {
            let mine = |a: &&crate::agents::Agent| a.store == s.code && a.revoked_at.is_none();
            let on = |d: &&crate::fleet::DeviceState| d.store == s.code;
            StoreStatus {
                agents: agents.iter().filter(mine).count() as u32,
                agents_online: agents.iter().filter(mine).filter(|a| a.online).count() as u32,
                devices: devs.iter().filter(on).count() as u32,
                devices_down: devs.iter().filter(on).filter(|d| d.state == "down").count() as u32,
                devices_stale: devs
                    .iter()
                    .filter(on)
                    .filter(|d| d.stale && d.state != "down")
                    .count() as u32,
                store: s,
            }
        })
        .collect();
    crate::fleet::Overview {
        stores,
        problems: crate::fleet::problems(&agents, &devs),
    }
}

#[test]
fn the_overview_counts_in_the_database_what_the_rows_say_on_both_backends() {
    let at = AT;
    on_each_backend("fleet overview", |backend, db| {
        db(&mut |c| {
            fleet(c)?;
            c.execute(
                "INSERT INTO stores (code, name, created_at) VALUES ('S2', 'Empty', 1)",
                args![],
            )?;
            Ok(())
        })
        .unwrap();
        db(&mut |c| {
            let ov = crate::fleet::overview(c, &at)?;
            assert_eq!(ov, overview_by_rows(c, &at), "{backend}");
            let s1 = &ov.stores[0];
            let counts = counts(s1);
            // a-revoked does not count; a-on and a-edge (exactly at the limit) are online;
            // printer-1 is down, pos-1 and scale-1 stale (pos-edge exactly at it is not).
            assert_eq!(counts, (5, 2, 10, 1, 2), "{backend}");
            assert_eq!(ov.stores[1].health(), "empty", "{backend}");
            let mut problems: Vec<(&str, &str)> = ov
                .problems
                .iter()
                .map(|p| (p.kind.as_str(), p.subject.as_str()))
                .collect();
            problems.sort_unstable();
            assert_eq!(
                problems,
                [
                    ("agent.offline", "a-never"),
                    ("agent.offline", "a-said"),
                    ("agent.offline", "a-silent"),
                    ("device.down", "printer-1"),
                    ("device.stale", "pos-1"),
                    ("device.stale", "scale-1"),
                ],
                "{backend}"
            );
            // Ingest 20 s behind: the counts wait for it as the rows do.
            let behind = Rules {
                data_behind_ms: 20_000,
                ..at
            };
            let ov = crate::fleet::overview(c, &behind)?;
            assert_eq!(ov, overview_by_rows(c, &behind), "{backend}");
            assert_eq!(ov.stores[0].devices_stale, 0, "{backend}");
            Ok(())
        })
        .unwrap();
    });
}

/// Four more stores beside the fixture's S1 (degraded: a device down, two stale): S2
/// without a gateway, S3 whose only gateway is silent (its device stale too: the store is
/// offline, not degraded), S4 well, S5 with one gateway online,
/// one silent, and a device stale.
fn more_stores(c: &dyn Sql) -> Result<(), DbError> {
    for (code, name, region) in [
        ("S2", "Empty", "south"),
        ("S3", "Three", "north"),
        ("S4", "Four", "North"),
        ("S5", "Five", "south"),
    ] {
        c.execute(
            "INSERT INTO stores (code, name, region, created_at) VALUES (?1, ?2, ?3, 1)",
            args![code, name, region],
        )?;
    }
    for (id, store, last_seen) in [
        ("a3", "S3", NOW - 120_000),
        ("a4", "S4", NOW - 1_000),
        ("a5", "S5", NOW - 1_000),
        ("a5-silent", "S5", NOW - 120_000),
    ] {
        c.execute(
            "INSERT INTO agents (id, public_key, store_code, enrolled_at, presence, last_seen)
             VALUES (?1, 'k', ?2, 1, 'online', ?3)",
            args![id, store, last_seen],
        )?;
    }
    for (store, device, agent, last_seen) in [
        ("S3", "pos-3", "a3", NOW - 120_000),
        ("S4", "pos-4", "a4", NOW - 1_000),
        ("S5", "pos-5", "a5", NOW - 1_000),
        ("S5", "scale-5", "a5", NOW - 600_000),
    ] {
        c.execute(
            "INSERT INTO devices (store_code, device, agent_id, class, interval_ms, last_seen, state)
             VALUES (?1, ?2, ?3, 'pos', 10000, ?4, 'up')",
            args![store, device, agent, last_seen],
        )?;
    }
    Ok(())
}

/// The stores the page lists, and how many matched, picked from the whole overview.
fn listed_from(ov: &Overview, want: &Listing) -> (Vec<String>, u64) {
    let q = want.q.trim().to_lowercase();
    let has = |t: &str| t.to_lowercase().contains(&q);
    let chosen: Vec<String> = ov
        .stores
        .iter()
        .filter(|s| {
            if want.filtering() {
                (want.health.is_empty() || s.health() == want.health)
                    && (has(&s.store.code) || has(&s.store.name) || has(&s.store.region))
            } else {
                ov.stores.len() <= want.limit || s.health() != "ok"
            }
        })
        .map(|s| s.store.code.clone())
        .collect();
    let total = chosen.len() as u64;
    (chosen.into_iter().take(want.limit).collect(), total)
}

#[test]
fn the_overview_page_reads_only_what_is_wrong_and_says_what_the_counts_say_on_both_backends() {
    on_each_backend("fleet summary", |backend, db| {
        db(&mut |c| {
            fleet(c)?;
            more_stores(c)
        })
        .unwrap();
        let behind = Rules {
            data_behind_ms: 20_000,
            ..AT
        };
        let listings = [
            ("", "", 100),
            ("  ", "", 100),
            ("", "", 2),
            ("north", "", 100),
            ("NORTH", "", 1),
            ("fiv", "degraded", 100),
            ("", "ok", 100),
            ("", "offline", 100),
            ("", "empty", 100),
            ("nowhere", "", 100),
        ];
        db(&mut |c| {
            for (at, kept) in [(AT, false), (AT, true), (behind, false), (behind, true)] {
                if kept {
                    tally::keep(c, &tally::judge(c, &at)?)?;
                } else {
                    c.execute("DELETE FROM fleet_tally", args![])?;
                }
                let ov = crate::fleet::overview(c, &at)?;
                for (q, health, limit) in listings {
                    let want = Listing { q, health, limit };
                    let s = crate::fleet::summary(c, &at, &want)?;
                    let case = format!("{backend}, {q:?} {health:?} {limit}, kept {kept}");
                    assert_eq!(s.tally.at, at.now, "{case}");
                    assert_eq!(s.tally.problems, ov.problems, "{case}");
                    assert_eq!(s.tally.problems_total, ov.problems.len() as u64, "{case}");
                    assert_eq!(s.tally.stores, ov.stores.len() as u64, "{case}");
                    let by_health = HEALTHS
                        .map(|h| ov.stores.iter().filter(|s| s.health() == h).count() as u64);
                    assert_eq!(s.tally.healths, by_health, "{case}");
                    let sum = |f: fn(&StoreStatus) -> u32| {
                        ov.stores.iter().map(|s| u64::from(f(s))).sum::<u64>()
                    };
                    assert_eq!(
                        (s.tally.devices, s.tally.devices_down, s.tally.devices_stale),
                        (
                            sum(|s| s.devices),
                            sum(|s| s.devices_down),
                            sum(|s| s.devices_stale)
                        ),
                        "{case}"
                    );
                    let (codes, matched) = listed_from(&ov, &want);
                    assert_eq!(s.matched, matched, "{case}");
                    let lines: Vec<_> = ov
                        .stores
                        .iter()
                        .filter(|s| codes.contains(&s.store.code))
                        .collect();
                    assert_eq!(s.listed.iter().collect::<Vec<_>>(), lines, "{case}");
                }
            }
            // What that comes to, by hand, on time: S1 degraded, S2 empty, S3 offline, S4 well,
            // S5 degraded (one gateway online is enough).
            let s = crate::fleet::summary(
                c,
                &AT,
                &Listing {
                    q: "",
                    health: "",
                    limit: 2,
                },
            )?;
            assert_eq!(s.tally.healths, [1, 2, 1, 1], "{backend}");
            let codes: Vec<&str> = s.listed.iter().map(|l| l.store.code.as_str()).collect();
            assert_eq!((codes, s.matched), (vec!["S1", "S2"], 4), "{backend}");
            let s5 = crate::fleet::summary(
                c,
                &AT,
                &Listing {
                    q: "five",
                    health: "",
                    limit: 9,
                },
            )?;
            let l = &s5.listed[0];
            assert_eq!(counts(l), (2, 1, 2, 0, 1), "{backend}");
            let north = crate::fleet::summary(
                c,
                &AT,
                &Listing {
                    q: "North",
                    health: "",
                    limit: 9,
                },
            )?;
            let codes: Vec<&str> = north.listed.iter().map(|l| l.store.code.as_str()).collect();
            assert_eq!(codes, ["S3", "S4"], "{backend}: any case, by region");
            Ok(())
        })
        .unwrap();
    });
}

#[test]
fn a_large_fleet_counts_from_the_kept_tally_while_it_is_fresh_on_both_backends() {
    on_each_backend("fleet tally", |backend, db| {
        db(&mut |c| {
            fleet(c)?;
            more_stores(c)?;
            tally::keep(c, &tally::judge(c, &AT)?)
        })
        .unwrap();
        db(&mut |c| {
            let kept = tally::kept(c, AT.now)?.expect("a fresh tally");
            assert_eq!(kept, tally::judge(c, &AT)?, "{backend}: kept as judged");
            // S4's till goes down after the tally was judged.
            c.execute(
                "UPDATE devices SET state = 'down' WHERE device = 'pos-4'",
                args![],
            )?;
            let find = |limit| Listing {
                q: "four",
                health: "",
                limit,
            };
            // Five stores, two listed at most: a large fleet, counted from the tally, with
            // the stores listed judged now.
            let s = crate::fleet::summary(c, &AT, &find(2))?;
            assert_eq!(s.tally, kept, "{backend}");
            assert_eq!(s.tally.health("S4"), "ok", "{backend}");
            assert_eq!(
                s.listed[0].devices_down, 1,
                "{backend}: S4 listed as it is now"
            );
            // A small fleet is judged at the request.
            let s = crate::fleet::summary(c, &AT, &find(100))?;
            assert_eq!(s.tally.devices_down, kept.devices_down + 1, "{backend}");
            assert_eq!(s.tally.health("S4"), "degraded", "{backend}");
            // A tally that is too old is judged again.
            let later = Rules {
                now: AT.now + MAX_AGE_MS + 1,
                ..AT
            };
            assert!(tally::kept(c, later.now)?.is_none(), "{backend}");
            let s = crate::fleet::summary(c, &later, &find(2))?;
            assert_eq!(s.tally.at, later.now, "{backend}");
            assert_eq!(s.tally.health("S4"), "degraded", "{backend}");
            // A tally this version cannot read is judged again, not an error.
            c.execute("UPDATE fleet_tally SET body = '{\"at\": \"x\"}'", args![])?;
            assert!(tally::kept(c, AT.now)?.is_none(), "{backend}");
            Ok(())
        })
        .unwrap();
    });
}
