//! Asset records on both backends: an agent's inventory creates the gateway and its devices
//! once, a later report changes only what changed and says so in the history, a replaced
//! device moves its slot to the new record, a person's edit is recorded with its actor, and
//! search matches case-insensitively and by warranty.

use storefleet_protocol::message::{Device, Discovered, Found, Gateway, Inventory, Nic};

use crate::assets::{self, inventory, query};
use crate::db::testing::on_each_backend;
use crate::stores::{self, Store};

fn inv(printer_serial: &str, firmware: &str) -> Inventory {
    Inventory {
        gateway: Gateway {
            hostname: "gw-s1".into(),
            os: "Debian".into(),
            os_version: "12".into(),
            arch: "aarch64".into(),
            cpu_count: 4,
            nics: vec![Nic {
                name: "eth0".into(),
                mac: "AA:BB:CC:00:11:22".into(),
            }],
            serial: Some("GW-001".into()),
            agent_version: "0.1.0".into(),
            ..Gateway::default()
        },
        devices: vec![Device {
            id: "printer-1".into(),
            class: "receipt-printer".into(),
            vendor: Some("Epson".into()),
            model: Some("TM-T88VI".into()),
            serial: Some(printer_serial.into()),
            firmware: Some(firmware.into()),
            ..Device::default()
        }],
        discovered: None,
    }
}

#[test]
fn inventory_history_edits_and_search_on_both_backends() {
    on_each_backend("asset records", |backend, db| {
        db(&mut |c| {
            let store = Store {
                code: "S1".into(),
                name: "One".into(),
                region: "north".into(),
                address: String::new(),
                timezone: "UTC".into(),
                trading_hours: String::new(),
                tags: Vec::new(),
                place: None,
            };
            stores::put(c, &store, false, 1)?;
            let first = inventory::apply(c, "gw-s1", "S1", &inv("P-1", "1.0"), 1_000)?;
            assert_eq!(first.created, 2, "{backend}: gateway and printer");
            let again = inventory::apply(c, "gw-s1", "S1", &inv("P-1", "1.0"), 2_000)?;
            assert_eq!(
                (again.created, again.changes),
                (0, 0),
                "{backend}: nothing new"
            );
            let newer = inventory::apply(c, "gw-s1", "S1", &inv("P-1", "1.1"), 3_000)?;
            assert_eq!(
                (newer.created, newer.changes),
                (0, 1),
                "{backend}: firmware only"
            );

            let (all, total) = query::search(c, &query::Filter::default(), 3_000)?;
            assert_eq!(total, 2);
            let printer = all.iter().find(|a| a.kind == "device").unwrap();
            let gateway = all.iter().find(|a| a.kind == "gateway").unwrap();
            assert_eq!(
                (
                    printer.firmware.as_str(),
                    printer.parent_id,
                    printer.region.as_str()
                ),
                ("1.1", Some(gateway.id), "north")
            );
            assert_eq!(gateway.macs, "aa:bb:cc:00:11:22");
            assert_eq!(gateway.attrs["arch"], "aarch64");
            let history = assets::history(c, printer.id)?;
            let fields: Vec<_> = history.iter().map(|h| h.field.as_str()).collect();
            assert_eq!(fields, ["created", "firmware"], "{backend}");
            assert_eq!(
                (
                    history[1].before.as_deref(),
                    history[1].after.as_deref(),
                    history[1].actor.as_str()
                ),
                (Some("1.0"), Some("1.1"), "agent:gw-s1")
            );

            // A new printer in the same slot: a new record, the old one leaves the slot.
            let swapped = inventory::apply(c, "gw-s1", "S1", &inv("P-2", "1.1"), 4_000)?;
            assert_eq!(swapped.created, 1, "{backend}");
            let old = assets::get(c, printer.id)?.unwrap();
            assert_eq!(old.slot, None);
            let replaced = assets::history(c, printer.id)?;
            assert_eq!(
                replaced.last().map(|h| h.field.as_str()),
                Some("replaced_by")
            );

            // A person's edit, with its actor; a bad value names the field.
            let edit = assets::Edit {
                lifecycle: Some("in_repair".into()),
                warranty_end: Some("1970-01-20".into()),
                attrs: Some(serde_json::from_str(r#"{"asset_tag": "T-9"}"#).unwrap()),
                ..assets::Edit::default()
            };
            let after = assets::edit(c, old.id, &edit, "user:ana", 5_000)?;
            assert_eq!(
                (after.lifecycle.as_str(), after.attrs["asset_tag"].as_str()),
                ("in_repair", Some("T-9"))
            );
            let last = assets::history(c, old.id)?.pop().unwrap();
            assert_eq!(
                (last.field.as_str(), last.actor.as_str()),
                ("attrs.asset_tag", "user:ana")
            );
            let bad = assets::Edit {
                lifecycle: Some("lost".into()),
                ..assets::Edit::default()
            };
            let e = assets::edit(c, old.id, &bad, "user:ana", 5_001).unwrap_err();
            assert!(e.to_string().contains("lifecycle"), "{e}");

            // Search: any case; warranty ending within 10 days of day 12 (1970-01-13).
            let q = query::Filter {
                q: Some("tm-t88".into()),
                ..query::Filter::default()
            };
            assert_eq!(
                query::search(c, &q, 5_000)?.1,
                2,
                "{backend}: both printers, any case"
            );
            let w = query::Filter {
                warranty_days: Some(10),
                ..query::Filter::default()
            };
            assert_eq!(query::search(c, &w, 12 * 86_400_000)?.1, 1, "{backend}");
            assert_eq!(
                query::search(c, &w, 5 * 86_400_000)?.1,
                0,
                "{backend}: ends after day 15"
            );
            Ok(())
        })
        .unwrap();
    });
}

/// An older inventory arriving after a newer one (a redelivery, or replicas sharing the
/// subscription) is skipped, in separate batches and within one.
#[test]
fn an_older_inventory_never_overwrites_a_newer_one_on_both_backends() {
    use crate::ingest::write::{apply, Verified};
    use storefleet_protocol::{Envelope, Message};
    use storefleet_storage::{args, SqlExt as _};
    let report = |seq: u64, firmware: &str| Verified {
        store: "S1".into(),
        envelope: Envelope::new(
            "gw-s1",
            seq,
            1_000,
            Message::Inventory(Box::new(inv("P-1", firmware))),
        ),
    };
    on_each_backend("inventory order", |backend, db| {
        db(&mut |c| {
            c.execute(
                "INSERT INTO stores(code, name, created_at) VALUES ('S1', 'One', 0)",
                args![],
            )?;
            c.execute(
                "INSERT INTO agents(id, public_key, store_code, enrolled_at) VALUES ('gw-s1', 'k', 'S1', 0)",
                args![],
            )?;
            let firmware = |c: &dyn storefleet_storage::Sql| {
                c.one(
                    "SELECT firmware FROM assets WHERE kind = 'device' AND slot = 'printer-1'",
                    args![],
                )?
                .unwrap()
                .text("firmware")
            };
            let o = apply(c, &[report(5, "2.0")], 2_000)?;
            assert_eq!((o.stored, o.stale_inventories), (1, 0), "{backend}");
            assert!(o.wakes_rules(), "{backend}: an inventory is not telemetry");
            let o = apply(c, &[report(3, "1.0")], 3_000)?;
            assert_eq!((o.stored, o.stale_inventories), (1, 1), "{backend}");
            assert_eq!(firmware(c)?, "2.0", "{backend}: the older report skipped");
            let o = apply(c, &[report(9, "3.0"), report(7, "2.5")], 4_000)?;
            assert_eq!((o.stored, o.stale_inventories), (2, 1), "{backend}");
            assert_eq!(firmware(c)?, "3.0", "{backend}: the newest of the batch");
            let o = apply(c, &[report(10, "3.1")], 5_000)?;
            assert_eq!(o.stale_inventories, 0, "{backend}");
            assert_eq!(firmware(c)?, "3.1", "{backend}");
            Ok(())
        })
        .unwrap();
    });
}

/// What a gateway's sweep found is kept per gateway, replaced by its next sweep, left as it
/// was by a report without a sweep, and hostile values (not an address, control
/// characters, endless text) do not get in as sent.
#[test]
fn a_gateways_sweep_replaces_its_last_on_both_backends() {
    on_each_backend("discovered devices", |backend, db| {
        db(&mut |c| {
            let found = |address: &str, class: &str| Found {
                address: address.into(),
                protocols: vec!["snmp".into(), "telnet".into()],
                class: class.into(),
                vendor: Some("Eaton\u{7}".into()),
                serial: Some("GX13G45099".into()),
                description: "x".repeat(5000),
                ..Found::default()
            };
            let swept = |at_ms, devices| {
                let mut i = inv("P-1", "1.0");
                i.discovered = Some(Discovered {
                    at_ms,
                    subnets: vec!["10.0.0.0/24".into()],
                    devices,
                });
                i
            };
            let sweep = vec![
                found("10.0.0.9", "printer"),
                found("10.0.0.5", "ups"),
                found("not-an-address", "ups"),
            ];
            inventory::apply(c, "gw-s1", "S1", &swept(1_000, sweep), 1_000)?;
            let other = Discovered {
                at_ms: 1_500,
                subnets: vec!["10.0.1.0/24".into()],
                devices: vec![found("10.0.1.7", "switch")],
            };
            crate::discovered::replace(c, "S1", "gw-s1-b", &other)?;
            let list = crate::discovered::list(c, "S1")?;
            let addresses: Vec<&str> = list.iter().map(|d| d.address.as_str()).collect();
            assert_eq!(addresses, ["10.0.0.5", "10.0.0.9", "10.0.1.7"], "{backend}");
            let ups = &list[0];
            assert_eq!(ups.class, "ups");
            assert_eq!(ups.protocols, ["snmp"], "{backend}: only known protocols");
            assert_eq!(ups.vendor.as_deref(), Some("Eaton"), "{backend}");
            assert_eq!(ups.description.chars().count(), 200, "{backend}");
            assert_eq!(ups.swept_at_ms, 1_000);
            // A report without a sweep leaves the findings; the next sweep replaces them.
            inventory::apply(c, "gw-s1", "S1", &inv("P-1", "1.0"), 2_000)?;
            assert_eq!(crate::discovered::list(c, "S1")?.len(), 3, "{backend}");
            let next = vec![found("10.0.0.5", "ups")];
            inventory::apply(c, "gw-s1", "S1", &swept(3_000, next), 3_000)?;
            let list = crate::discovered::list(c, "S1")?;
            let addresses: Vec<&str> = list.iter().map(|d| d.address.as_str()).collect();
            assert_eq!(addresses, ["10.0.0.5", "10.0.1.7"], "{backend}");
            assert_eq!(list[0].swept_at_ms, 3_000);
            assert!(crate::discovered::list(c, "S2")?.is_empty());
            Ok(())
        })
        .unwrap();
    });
}
