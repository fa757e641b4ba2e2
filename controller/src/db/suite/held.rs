//! Held messages ([`crate::ingest::held`]) on both backends.

use storefleet_protocol::message::{Event, Severity};
use storefleet_protocol::{Envelope, Message};

use super::super::testing::on_each_backend;
use crate::db::DbError;
use crate::ingest::held;
use crate::ingest::write::Verified;

#[test]
fn a_held_message_is_kept_whole_held_once_and_forgotten_once() {
    let m = Verified {
        store: "S".into(),
        envelope: Envelope::new(
            "gw-1",
            7,
            1_000,
            Message::Event(Event {
                id: "e-7".into(),
                ts: 1_000,
                device: Some("printer-1".into()),
                code: "printer.jam".into(),
                severity: Severity::Critical,
                message: "Jam\0in tray 2".into(),
                data: serde_json::Map::new(),
            }),
        ),
    };
    on_each_backend("held", |backend, db| {
        db(&mut |c| {
            held::put(c, &m, "first refusal", 10)?;
            // It came again (a redelivery): still one, with the newer refusal.
            held::put(c, &m, "second refusal", 20)?;
            assert_eq!(held::count(c)?, 1, "{backend}");
            let list = held::list(c, 10)?;
            assert_eq!(list.len(), 1, "{backend}");
            let h = &list[0];
            assert_eq!(
                (
                    h.agent_id.as_str(),
                    h.seq,
                    h.store.as_str(),
                    h.kind.as_str()
                ),
                ("gw-1", 7, "S", "event"),
                "{backend}"
            );
            assert_eq!((h.error.as_str(), h.held_at), ("second refusal", 20));
            assert_eq!(h.bytes, m.envelope.to_json().unwrap().len() as u64);
            // Kept whole, NUL and all.
            let back = held::get(c, "gw-1", 7)?;
            assert_eq!(
                (back.store, back.envelope),
                (m.store.clone(), m.envelope.clone())
            );
            held::forget(c, "gw-1", 7)?;
            assert!(matches!(
                held::forget(c, "gw-1", 7),
                Err(DbError::NotFound(_))
            ));
            assert!(matches!(held::get(c, "gw-1", 7), Err(DbError::NotFound(_))));
            assert_eq!(held::count(c)?, 0, "{backend}");
            Ok(())
        })
        .unwrap();
    });
}
