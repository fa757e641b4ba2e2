//! Stores, enrollment, agents and what they reported, on both backends: a store is created
//! once and updated only on purpose, a single-use token enrolls one gateway, an agent id
//! stays bound to its key until an admin allows re-enrollment, revoked keys are not loaded,
//! and the event and routine-run filters select what they say.

use storefleet_protocol::enroll::{EnrollRequest, EnrollToken};
use storefleet_protocol::SigningKey;
use storefleet_storage::args;

use crate::agents::{self, Judge};
use crate::db::testing::{on_each_backend, Job};
use crate::db::DbError;
use crate::enroll::{self, Endpoints, NewToken};
use crate::stores::{self, Store};
use crate::{events, runs};
use storefleet_core::geo::Coord;

fn store(code: &str, name: &str) -> Store {
    Store {
        code: code.into(),
        name: name.into(),
        region: "north".into(),
        address: String::new(),
        timezone: "Europe/Berlin".into(),
        trading_hours: "Mo-Sa 08:00-20:00".into(),
        tags: vec!["pilot".into(), "mall".into()],
        place: None,
    }
}

fn token(store: &str, max_uses: Option<i64>) -> NewToken {
    NewToken {
        store: store.into(),
        ttl_hours: None,
        ttl_secs: None,
        max_uses,
        note: "till 1".into(),
    }
}

fn request(token: &str, agent: &str, key: &SigningKey, now: i64) -> EnrollRequest {
    let id = EnrollToken::decode(token).unwrap().id;
    let public_key = key.public_key().to_base64();
    let signed = EnrollRequest::signed_bytes(&id, agent, &public_key, "gw-1", now);
    EnrollRequest {
        token: token.into(),
        agent_id: agent.into(),
        public_key,
        hostname: "gw-1".into(),
        agent_version: "0.1.0".into(),
        ts: now,
        signature: base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            key.sign(&signed),
        ),
    }
}

#[test]
fn stores_enrollment_agents_and_reports_on_both_backends() {
    let controller = SigningKey::generate().unwrap();
    let ends = Endpoints {
        api: "https://controller.example".into(),
        mqtt: "mqtts://controller.example:8883".into(),
        key: controller.public_key(),
        release_key: None,
        tls_pin: String::new(),
    };
    on_each_backend("gateway records", |backend, db| {
        let fails = |job: Job<'_>| -> DbError { db(job).expect_err(backend) };
        let now = storefleet_protocol::now_ms();
        // Stores: created, refused twice, updated on purpose, listed by code.
        db(&mut |c| {
            stores::put(c, &store("S2", "Two"), false, 1)?;
            stores::put(c, &store("S1", "One"), false, 1)?;
            Ok(())
        })
        .unwrap();
        let e = fails(&mut |c| stores::put(c, &store("S1", "Again"), false, 2));
        assert!(
            matches!(&e, DbError::Conflict(m) if m.contains("S1 exists")),
            "{backend}: {e:?}"
        );
        let e = fails(&mut |c| stores::put(c, &store("bad code", "X"), false, 2));
        assert!(matches!(&e, DbError::Invalid(_)), "{backend}: {e:?}");
        let far = Store {
            place: Some(Coord {
                lat: 95.0,
                lon: 0.0,
            }),
            ..store("S3", "Off the map")
        };
        let e = fails(&mut |c| stores::put(c, &far, false, 2));
        assert!(
            matches!(&e, DbError::Invalid(m) if m.contains("latitude 95")),
            "{backend}: {e:?}"
        );
        db(&mut |c| {
            let placed = Store {
                place: Some(Coord::new(53.5511, -9.9937).unwrap()),
                ..store("S1", "One renamed")
            };
            stores::put(c, &placed, true, 3)?;
            let all = stores::list(c)?;
            assert_eq!(all[0].place, placed.place, "{backend}: the place, exactly");
            assert_eq!(stores::places(c)?.get("S1"), placed.place.as_ref());
            assert!(!stores::places(c)?.contains_key("S2"), "{backend}");
            assert_eq!(
                all.iter().map(|s| s.code.as_str()).collect::<Vec<_>>(),
                ["S1", "S2"]
            );
            assert_eq!(all[0].name, "One renamed");
            assert_eq!(all[0].tags, ["pilot", "mall"]);
            assert_eq!(stores::get(c, "S9")?, None);
            Ok(())
        })
        .unwrap();

        // Enrollment: a token for a known store only; single use.
        let e = fails(&mut |c| {
            let req = token("S9", None);
            enroll::create(c, &req, "admin", 24, &ends, now).map(drop)
        });
        assert!(
            matches!(&e, DbError::NotFound(m) if m.contains("S9")),
            "{backend}: {e:?}"
        );
        let mut text = String::new();
        db(&mut |c| {
            let req = token("S1", None);
            let (info, t) = enroll::create(c, &req, "admin", 24, &ends, now)?;
            assert_eq!(
                (info.store.as_str(), info.max_uses, info.uses),
                ("S1", Some(1), 0)
            );
            assert_eq!(enroll::list(c)?, vec![info]);
            text = t;
            Ok(())
        })
        .unwrap();
        let gw = SigningKey::generate().unwrap();
        db(&mut |c| {
            let answer = enroll::redeem(
                c,
                &request(&text, "gw-s1", &gw, now),
                "mqtts://b",
                false,
                now,
            )?;
            assert_eq!(
                (answer.agent_id.as_str(), answer.store.as_str()),
                ("gw-s1", "S1")
            );
            Ok(())
        })
        .unwrap();
        let e = fails(&mut |c| {
            enroll::redeem(c, &request(&text, "gw-s1b", &gw, now), "m", false, now).map(drop)
        });
        assert!(
            matches!(&e, DbError::Invalid(m) if m.contains("already used")),
            "{backend}: {e:?}"
        );

        // The id stays bound to its key: another key needs an admin's re-enrollment.
        let mut again = String::new();
        db(&mut |c| {
            let req = token("S1", Some(0));
            again = enroll::create(c, &req, "admin", 24, &ends, now)?.1;
            Ok(())
        })
        .unwrap();
        let other = SigningKey::generate().unwrap();
        let e = fails(&mut |c| {
            enroll::redeem(c, &request(&again, "gw-s1", &other, now), "m", true, now).map(drop)
        });
        assert!(
            matches!(&e, DbError::Invalid(m) if m.contains("another key")),
            "{backend}: {e:?}"
        );
        db(&mut |c| {
            let judge = Judge {
                now,
                offline_after_ms: 60_000,
            };
            let keys = agents::keys(c)?;
            assert_eq!(
                keys.get("gw-s1").map(|k| k.0.to_base64()),
                Some(gw.public_key().to_base64())
            );
            enroll::allow_reenroll(c, "gw-s1", now)?;
            assert!(
                agents::keys(c)?.is_empty(),
                "{backend}: a revoked key is not loaded"
            );
            assert!(judge.get(c, "gw-s1")?.unwrap().revoked_at.is_some());
            let answer = enroll::redeem(c, &request(&again, "gw-s1", &other, now), "m", true, now)?;
            assert!(
                !answer.mqtt_password.is_empty(),
                "{backend}: a broker password was asked for"
            );
            let a = judge.get(c, "gw-s1")?.unwrap();
            assert_eq!(
                (a.public_key, a.revoked_at, a.online),
                (other.public_key().to_base64(), None, false)
            );
            assert_eq!(judge.list(c, Some("S2"))?.len(), 0);
            assert_eq!(judge.list(c, None)?.len(), 1);
            assert!(matches!(
                agents::revoke(c, "nobody", now),
                Err(DbError::NotFound(_))
            ));
            agents::revoke(c, "gw-s1", now + 1)?;
            assert!(agents::keys(c)?.is_empty());
            Ok(())
        })
        .unwrap();

        // What agents reported, filtered.
        db(&mut |c| {
            for (i, (store, device, ts)) in [("S1", "printer-1", 100), ("S1", "ups", 200), ("S2", "printer-1", 300)]
                .into_iter()
                .enumerate()
            {
                c.execute(
                    "INSERT INTO events(agent_id, store_code, event_id, ts, device, code, severity, message, data, received_at)
                     VALUES ('gw', ?1, ?2, ?3, ?4, 'printer.jam', 'warning', 'jam', '{\"tray\":1}', ?3)",
                    args![store, format!("e{i}"), ts, device],
                )?;
                c.execute(
                    "INSERT INTO routine_runs(agent_id, id, store_code, routine, version, trigger_type, trigger_detail,
                         device, started_at, finished_at, outcome, reason, steps, received_at)
                     VALUES ('gw', ?1, ?2, 'unstick', 2, 'event', 'printer.jam', ?3, ?4, ?4, ?5, '', '[]', ?4)",
                    args![format!("r{i}"), store, device, ts, if i == 1 { "failed" } else { "healed" }],
                )?;
            }
            let f = events::Filter { store: Some("S1".into()), since: Some(150), ..events::Filter::default() };
            let got = events::list(c, &f)?;
            assert_eq!(got.len(), 1, "{backend}");
            assert_eq!((got[0].device.as_str(), got[0].data["tray"].as_i64()), ("ups", Some(1)));
            let all = events::list(c, &events::Filter::default())?;
            assert_eq!(all.iter().map(|e| e.ts).collect::<Vec<_>>(), [300, 200, 100]);
            let f = runs::Filter { outcome: Some("healed".into()), ..runs::Filter::default() };
            let got = runs::list(c, &f)?;
            assert_eq!(got.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r2", "r0"]);
            assert_eq!((got[0].version, got[0].device.as_deref()), (2, Some("printer-1")));
            Ok(())
        })
        .unwrap();
    });
}

/// The agents of many stores read in one go (a fleet-wide outage) are those that the
/// lookups store by store find: not revoked, of the stores named only.
#[test]
fn agents_of_many_stores_are_found_in_one_read_as_by_lookups_on_both_backends() {
    const N: usize = agents::WHOLE_AFTER + 20;
    on_each_backend("agents of stores", |backend, db| {
        db(&mut |c| {
            for i in 0..N {
                let (store, a) = (format!("W{i:04}"), format!("w-{i}"));
                c.execute(
                    "INSERT INTO stores (code, name, created_at) VALUES (?1, ?1, 1)",
                    args![store.as_str()],
                )?;
                c.execute(
                    "INSERT INTO agents (id, public_key, store_code, enrolled_at, presence, revoked_at)
                     VALUES (?1, 'k', ?2, 1, 'unknown', ?3)",
                    args![a, store, (i % 10 == 0).then_some(5)],
                )?;
            }
            Ok(())
        })
        .unwrap();
        db(&mut |c| {
            let judge = Judge {
                now: 10,
                offline_after_ms: 60_000,
            };
            let codes: Vec<String> = (0..N).map(|i| format!("W{i:04}")).collect();
            let ids = |names: &[&str]| -> Result<Vec<String>, DbError> {
                let mut ids: Vec<String> = judge
                    .of_stores(c, names)?
                    .into_iter()
                    .map(|a| a.id)
                    .collect();
                ids.sort();
                Ok(ids)
            };
            // All but the last store: past WHOLE_AFTER, one read of every agent.
            let many: Vec<&str> = codes[..N - 1].iter().map(String::as_str).collect();
            let mut by_lookup = Vec::new();
            for chunk in many.chunks(agents::WHOLE_AFTER) {
                by_lookup.extend(ids(chunk)?);
            }
            by_lookup.sort();
            let whole = ids(&many)?;
            assert_eq!(whole, by_lookup, "{backend}");
            // Every tenth is revoked, and the store left out is not there.
            assert_eq!(whole.len(), N - 1 - N.div_ceil(10), "{backend}");
            assert!(!whole.contains(&format!("w-{}", N - 1)), "{backend}");
            Ok(())
        })
        .unwrap();
    });
}
