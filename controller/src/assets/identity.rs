//! Which asset record a reported gateway or device is: a pure decision over candidates.
//!
//! Identity must survive a reinstalled gateway (new agent id, new key), a device without a
//! serial, and a device moved to another store, and must never create a second record for
//! the same hardware. Keys, strongest first:
//!
//! - gateway: serial number; then any MAC address in common; then the agent id; then the
//!   host name within the same store.
//! - device: serial number; then its slot (the device id) within the same store, unless both
//!   the record and the report have serials and they differ: then it is a replacement, a new
//!   piece of hardware in the old one's place.

/// An existing record, as far as matching needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Candidate {
    /// Asset id.
    pub id: i64,
    /// Store code.
    pub store: Option<String>,
    /// Slot: the device id, or the gateway's host name.
    pub slot: Option<String>,
    /// Agent id (gateways).
    pub agent_id: Option<String>,
    /// Serial, empty when unknown.
    pub serial: String,
    /// MAC addresses (gateways).
    pub macs: Vec<String>,
}

/// What a report says about one piece of hardware.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// True for the gateway, false for a device.
    pub gateway: bool,
    /// Store code.
    pub store: String,
    /// Slot: device id or host name.
    pub slot: String,
    /// Reporting agent.
    pub agent_id: String,
    /// Serial, empty when unknown.
    pub serial: String,
    /// MACs (gateways).
    pub macs: Vec<String>,
}

/// Which key matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Serial number.
    Serial,
    /// A MAC address.
    Mac,
    /// The agent id.
    Agent,
    /// Store and slot.
    Slot,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// This record, found by this key.
    Existing(i64, Key),
    /// A new record; `displaces` is a record in the same slot that is other hardware.
    New {
        /// The record whose slot the new hardware takes.
        displaces: Option<i64>,
    },
}

/// Picks the record for `o` among `candidates` (all of the same kind).
pub fn decide(o: &Observed, candidates: &[Candidate]) -> Decision {
    let serial = o.serial.trim();
    if !serial.is_empty() {
        if let Some(c) = candidates.iter().find(|c| c.serial == serial) {
            return Decision::Existing(c.id, Key::Serial);
        }
    }
    if o.gateway {
        if let Some(c) = candidates
            .iter()
            .find(|c| c.macs.iter().any(|m| o.macs.contains(m)))
        {
            return Decision::Existing(c.id, Key::Mac);
        }
        if let Some(c) = candidates
            .iter()
            .find(|c| c.agent_id.as_deref() == Some(o.agent_id.as_str()))
        {
            return Decision::Existing(c.id, Key::Agent);
        }
    }
    let in_slot = candidates.iter().find(|c| {
        c.store.as_deref() == Some(o.store.as_str()) && c.slot.as_deref() == Some(o.slot.as_str())
    });
    match in_slot {
        Some(c) if serial.is_empty() || c.serial.is_empty() => Decision::Existing(c.id, Key::Slot),
        Some(c) => Decision::New {
            displaces: Some(c.id),
        },
        None => Decision::New { displaces: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: i64, store: &str, slot: &str, serial: &str) -> Candidate {
        Candidate {
            id,
            store: Some(store.into()),
            slot: Some(slot.into()),
            agent_id: None,
            serial: serial.into(),
            macs: vec![],
        }
    }

    fn dev(store: &str, slot: &str, serial: &str) -> Observed {
        Observed {
            gateway: false,
            store: store.into(),
            slot: slot.into(),
            agent_id: "a-1".into(),
            serial: serial.into(),
            macs: vec![],
        }
    }

    #[test]
    fn a_device_moved_to_another_store_is_found_by_serial() {
        let c = [cand(1, "S1", "printer-1", "X1")];
        assert_eq!(
            decide(&dev("S2", "printer-3", "X1"), &c),
            Decision::Existing(1, Key::Serial)
        );
    }

    #[test]
    fn a_device_without_serial_is_found_by_its_slot() {
        let c = [cand(1, "S1", "scale-1", "")];
        assert_eq!(
            decide(&dev("S1", "scale-1", ""), &c),
            Decision::Existing(1, Key::Slot)
        );
        // A serial learned later attaches to the same record.
        assert_eq!(
            decide(&dev("S1", "scale-1", "Z9"), &c),
            Decision::Existing(1, Key::Slot)
        );
        // The same slot in another store is other hardware.
        assert_eq!(
            decide(&dev("S2", "scale-1", ""), &c),
            Decision::New { displaces: None }
        );
    }

    #[test]
    fn a_different_serial_in_the_same_slot_is_a_replacement() {
        let c = [cand(1, "S1", "pos-1", "OLD")];
        assert_eq!(
            decide(&dev("S1", "pos-1", "NEW"), &c),
            Decision::New { displaces: Some(1) }
        );
    }

    #[test]
    fn a_reinstalled_gateway_is_found_by_mac_then_host_name() {
        let mut g = cand(7, "S1", "gw-s1", "");
        g.agent_id = Some("a-old".into());
        g.macs = vec!["aa:bb:cc:dd:ee:ff".into()];
        let mut o = Observed {
            gateway: true,
            store: "S1".into(),
            slot: "gw-s1".into(),
            agent_id: "a-new".into(),
            serial: String::new(),
            macs: vec!["aa:bb:cc:dd:ee:ff".into()],
        };
        assert_eq!(
            decide(&o, std::slice::from_ref(&g)),
            Decision::Existing(7, Key::Mac)
        );
        o.macs = vec!["11:22:33:44:55:66".into()];
        assert_eq!(
            decide(&o, std::slice::from_ref(&g)),
            Decision::Existing(7, Key::Slot)
        );
        o.slot = "other".into();
        o.agent_id = "a-old".into();
        assert_eq!(decide(&o, &[g]), Decision::Existing(7, Key::Agent));
    }
}
