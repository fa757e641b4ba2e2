//! What each SNMP profile asks a device, and how its answer reads: metrics, whether the
//! device is down and why, and the device's own identity for the asset records.
//!
//! - printer: Host Resources MIB (`hrDeviceStatus`, `hrPrinterStatus`,
//!   `hrPrinterDetectedErrorState`) and Printer MIB (supplies, page counter, alerts,
//!   serial number).
//! - ups: UPS-MIB (RFC 1628); where a UPS does not have it, Eaton's XUPS-MIB, with the serial
//!   number from its MGE-UPS-MIB.
//! - switch: IF-MIB ports.
//!
//! Every profile also reads ENTITY-MIB's first physical entity for maker, model, serial and
//! firmware, and `sysDescr` as the model of last resort.

use super::{oid, Session, Val, Values};
use crate::collect::inventory::Identity;
use crate::config::SnmpProfile;

/// What one poll found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reading {
    /// Whether the device works.
    pub up: bool,
    /// Why not.
    pub reason: Option<String>,
    /// Metrics, named as the built-in alert rules expect (`on_battery` of a `ups`).
    pub metrics: Vec<(String, f64)>,
    /// What the device says it is.
    pub identity: Identity,
}

const SYS_DESCR: &str = "1.3.6.1.2.1.1.1.0";
const ENT: &str = "1.3.6.1.2.1.47.1.1.1.1";

pub(crate) fn identity_objects() -> Vec<Vec<u64>> {
    let mut v = vec![oid(SYS_DESCR)];
    // entPhysicalFirmwareRev, SoftwareRev, SerialNum, MfgName, ModelName of entity 1.
    v.extend((9..=13).map(|col| oid(&format!("{ENT}.{col}.1"))));
    v
}

/// Asks the device what `profile` needs.
pub async fn ask(s: &mut Session, profile: SnmpProfile) -> Result<Values, String> {
    let mut got = Values::new();
    let mut get = identity_objects();
    match profile {
        SnmpProfile::Printer => {
            get.push(oid(PRT_SERIAL));
            s.get(&get, &mut got).await?;
            for root in [
                HR_DEVICE,
                HR_PRINTER,
                PRT_LIFE_COUNT,
                PRT_SUPPLIES,
                PRT_ALERT,
            ] {
                s.walk(&oid(root), &mut got).await?;
            }
        }
        SnmpProfile::Ups => {
            get.extend(UPS_OBJECTS.iter().map(|o| oid(o)));
            s.get(&get, &mut got).await?;
        }
        SnmpProfile::Switch => {
            s.get(&get, &mut got).await?;
            for col in [3, 7, 8, 14, 20] {
                s.walk(&oid(&format!("{IF_ENTRY}.{col}")), &mut got).await?;
            }
        }
    }
    Ok(got)
}

/// Reads an answer as `profile` says.
pub fn read(profile: SnmpProfile, v: &Values) -> Result<Reading, String> {
    let mut r = match profile {
        SnmpProfile::Printer => printer(v),
        SnmpProfile::Ups => ups(v)?,
        SnmpProfile::Switch => switch(v),
    };
    let text = |o: &str| v.get(&oid(o)).and_then(Val::text);
    let ent = |col: u32| text(&format!("{ENT}.{col}.1"));
    let id = &mut r.identity;
    id.vendor = id.vendor.take().or_else(|| ent(12));
    id.model = id.model.take().or_else(|| ent(13));
    id.serial = id.serial.take().or_else(|| ent(11));
    id.firmware = id.firmware.take().or_else(|| ent(9)).or_else(|| ent(10));
    id.model = id
        .model
        .take()
        .or_else(|| text(SYS_DESCR).map(|d| d.chars().take(120).collect()));
    Ok(r)
}

fn int(v: &Values, o: &str) -> Option<i64> {
    v.get(&oid(o)).and_then(Val::int)
}

/// The rows of a table column: index (the OID after the column) to value.
fn column<'a>(v: &'a Values, col: &str) -> impl Iterator<Item = (Vec<u64>, &'a Val)> + 'a {
    let col = oid(col);
    v.range(col.clone()..)
        .take_while(|(k, _)| k.starts_with(&col))
        .map(|(k, val)| (k[col.len()..].to_vec(), val))
        .collect::<Vec<_>>()
        .into_iter()
}

fn metric_name(prefix: &str, what: &str, suffix: &str) -> Option<String> {
    let mut name = String::from(prefix);
    let mut gap = false;
    for c in what.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !name.ends_with('.') {
                name.push('_');
            }
            name.push(c.to_ascii_lowercase());
            gap = false;
        } else {
            gap = true;
        }
    }
    name.push_str(suffix);
    (name.len() > prefix.len() + suffix.len() && crate::collect::ingest::valid_name(&name))
        .then_some(name)
}

const HR_DEVICE: &str = "1.3.6.1.2.1.25.3.2.1";
const HR_PRINTER: &str = "1.3.6.1.2.1.25.3.5.1";
const PRT_SERIAL: &str = "1.3.6.1.2.1.43.5.1.1.17.1";
const PRT_LIFE_COUNT: &str = "1.3.6.1.2.1.43.10.2.1.4";
const PRT_SUPPLIES: &str = "1.3.6.1.2.1.43.11.1.1";
const PRT_ALERT: &str = "1.3.6.1.2.1.43.18.1.1";

/// `hrPrinterDetectedErrorState` bits (bit 0 is the first octet's high bit), and whether
/// each stops the printer.
const PRINTER_ERRORS: [(&str, bool); 16] = [
    ("low paper", false),
    ("no paper", true),
    ("low toner", false),
    ("no toner", true),
    ("door open", true),
    ("jammed", true),
    ("offline", true),
    ("service requested", true),
    ("input tray missing", true),
    ("output tray missing", true),
    ("marker supply missing", true),
    ("output near full", false),
    ("output full", true),
    ("input tray empty", true),
    ("overdue preventive maintenance", false),
    ("", false),
];

fn printer(v: &Values) -> Reading {
    let mut r = Reading {
        up: true,
        ..Reading::default()
    };
    // The printer is the first row of hrPrinterTable; its hrDevice row has the same index.
    let status = column(v, &format!("{HR_PRINTER}.1")).next();
    let index = status.as_ref().map(|(i, _)| i.clone());
    let mut why = Vec::new();
    if let Some((_, s)) = &status {
        if let Some(s) = s.int() {
            r.metrics.push(("printer_status".into(), s as f64));
        }
    }
    if let Some(i) = &index {
        let at = |col: &str| {
            let mut o = oid(col);
            o.extend(i);
            v.get(&o)
        };
        if at(&format!("{HR_DEVICE}.5")).and_then(Val::int) == Some(5) {
            why.push("down (hrDeviceStatus)".to_owned());
        }
        r.identity.model = at(&format!("{HR_DEVICE}.3")).and_then(Val::text);
        if let Some(Val::Bytes(bits)) = at(&format!("{HR_PRINTER}.2")) {
            let mut count = 0;
            for (n, (name, stops)) in PRINTER_ERRORS.iter().enumerate() {
                let set = bits.get(n / 8).is_some_and(|b| b & (0x80 >> (n % 8)) != 0);
                if set && !name.is_empty() {
                    count += 1;
                    if *stops {
                        why.push((*name).to_owned());
                    }
                }
            }
            r.metrics.push(("printer_errors".into(), f64::from(count)));
        }
    }
    if let Some((_, pages)) = column(v, PRT_LIFE_COUNT).next() {
        if let Some(p) = pages.int() {
            r.metrics.push(("pages".into(), p as f64));
        }
    }
    // Supplies: level as a percentage of the maximum where both are known.
    for (i, desc) in column(v, &format!("{PRT_SUPPLIES}.6")) {
        let at = |col: u32| {
            let mut o = oid(&format!("{PRT_SUPPLIES}.{col}"));
            o.extend(&i);
            v.get(&o).and_then(Val::int)
        };
        let (Some(max), Some(level)) = (at(8), at(9)) else {
            continue;
        };
        let Some(name) = desc.text().and_then(|d| metric_name("supply.", &d, "_pct")) else {
            continue;
        };
        if max > 0 && level >= 0 {
            r.metrics
                .push((name, (level as f64 * 100.0 / max as f64).min(100.0)));
        }
    }
    // Critical alerts (prtAlertSeverityLevel critical = 3) say what is wrong in words.
    for (i, severity) in column(v, &format!("{PRT_ALERT}.2")) {
        if severity.int() == Some(3) {
            let mut o = oid(&format!("{PRT_ALERT}.8"));
            o.extend(&i);
            if let Some(d) = v.get(&o).and_then(Val::text) {
                why.push(d);
            }
        }
    }
    r.identity.serial = v.get(&oid(PRT_SERIAL)).and_then(Val::text);
    if index.is_none() {
        why.push("no printer in hrPrinterTable".into());
    }
    if !why.is_empty() {
        r.up = false;
        r.reason = Some(why.join(", "));
    }
    r
}

const UPS: &str = "1.3.6.1.2.1.33.1";
const XUPS: &str = "1.3.6.1.4.1.534.1";
const MGE: &str = "1.3.6.1.4.1.705.1";

const UPS_OBJECTS: [&str; 23] = [
    // UPS-MIB: ident (maker, model, UPS software, agent software), battery (status,
    // seconds on battery, minutes left, charge), input 1 voltage, output source, output 1
    // load.
    "1.3.6.1.2.1.33.1.1.1.0",
    "1.3.6.1.2.1.33.1.1.2.0",
    "1.3.6.1.2.1.33.1.1.3.0",
    "1.3.6.1.2.1.33.1.1.4.0",
    "1.3.6.1.2.1.33.1.2.1.0",
    "1.3.6.1.2.1.33.1.2.2.0",
    "1.3.6.1.2.1.33.1.2.3.0",
    "1.3.6.1.2.1.33.1.2.4.0",
    "1.3.6.1.2.1.33.1.3.3.1.3.1",
    "1.3.6.1.2.1.33.1.4.1.0",
    "1.3.6.1.2.1.33.1.4.4.1.5.1",
    // XUPS-MIB: maker, model, software; seconds left, charge; input 1 voltage; output load,
    // output source.
    "1.3.6.1.4.1.534.1.1.1.0",
    "1.3.6.1.4.1.534.1.1.2.0",
    "1.3.6.1.4.1.534.1.1.3.0",
    "1.3.6.1.4.1.534.1.2.1.0",
    "1.3.6.1.4.1.534.1.2.4.0",
    "1.3.6.1.4.1.534.1.3.4.1.2.1",
    "1.3.6.1.4.1.534.1.4.1.0",
    "1.3.6.1.4.1.534.1.4.5.0",
    // MGE-UPS-MIB (Eaton): family, model, serial number; on battery.
    "1.3.6.1.4.1.705.1.1.1.0",
    "1.3.6.1.4.1.705.1.1.2.0",
    "1.3.6.1.4.1.705.1.1.7.0",
    "1.3.6.1.4.1.705.1.7.3.0",
];

fn ups(v: &Values) -> Result<Reading, String> {
    let text = |o: String| v.get(&oid(&o)).and_then(Val::text);
    let mut r = Reading {
        up: true,
        ..Reading::default()
    };
    let mut m = |name: &str, x: Option<f64>| {
        if let Some(x) = x {
            r.metrics.push((name.to_owned(), x));
        }
    };
    // Output source: other(1) none(2) normal(3) bypass(4) battery(5) booster(6) reducer(7),
    // the same numbers in both MIBs.
    let source;
    if let Some(s) = int(v, &format!("{UPS}.4.1.0")) {
        source = s;
        m("on_battery", Some(f64::from(u8::from(s == 5))));
        m(
            "battery_status",
            int(v, &format!("{UPS}.2.1.0")).map(|x| x as f64),
        );
        m(
            "seconds_on_battery",
            int(v, &format!("{UPS}.2.2.0")).map(|x| x as f64),
        );
        m(
            "runtime_min",
            int(v, &format!("{UPS}.2.3.0")).map(|x| x as f64),
        );
        m(
            "battery_pct",
            int(v, &format!("{UPS}.2.4.0")).map(|x| x as f64),
        );
        m(
            "input_v",
            int(v, &format!("{UPS}.3.3.1.3.1")).map(|x| x as f64),
        );
        m(
            "load_pct",
            int(v, &format!("{UPS}.4.4.1.5.1")).map(|x| x as f64),
        );
        r.identity.vendor = text(format!("{UPS}.1.1.0"));
        r.identity.model = text(format!("{UPS}.1.2.0"));
        r.identity.firmware = text(format!("{UPS}.1.3.0"));
    } else if let Some(s) = int(v, &format!("{XUPS}.4.5.0")) {
        source = s;
        let mge_battery = int(v, &format!("{MGE}.7.3.0")) == Some(1);
        m(
            "on_battery",
            Some(f64::from(u8::from(s == 5 || mge_battery))),
        );
        m(
            "runtime_min",
            int(v, &format!("{XUPS}.2.1.0")).map(|x| (x / 60) as f64),
        );
        m(
            "battery_pct",
            int(v, &format!("{XUPS}.2.4.0")).map(|x| x as f64),
        );
        m(
            "input_v",
            int(v, &format!("{XUPS}.3.4.1.2.1")).map(|x| x as f64),
        );
        m(
            "load_pct",
            int(v, &format!("{XUPS}.4.1.0")).map(|x| x as f64),
        );
        r.identity.vendor = text(format!("{XUPS}.1.1.0")).or_else(|| {
            // Eaton's agents leave the maker out; the family name starts with it.
            text(format!("{MGE}.1.1.0"))
                .and_then(|f| f.split_whitespace().next().map(str::to_owned))
        });
        r.identity.model = text(format!("{XUPS}.1.2.0"));
        r.identity.firmware = text(format!("{XUPS}.1.3.0"));
        r.identity.serial = text(format!("{MGE}.1.7.0"));
    } else {
        return Err("no UPS-MIB or XUPS-MIB output source: is this device a UPS?".into());
    }
    if source == 2 {
        r.up = false;
        r.reason = Some("output is off (no output source)".into());
    } else if int(v, &format!("{UPS}.2.1.0")) == Some(4) {
        r.up = false;
        r.reason = Some("battery depleted".into());
    }
    Ok(r)
}

const IF_ENTRY: &str = "1.3.6.1.2.1.2.2.1";

fn switch(v: &Values) -> Reading {
    let (mut up, mut down, mut ports, mut errors) = (0, 0, 0, 0_i64);
    for (i, oper) in column(v, &format!("{IF_ENTRY}.8")) {
        let at = |col: u32| {
            let mut o = oid(&format!("{IF_ENTRY}.{col}"));
            o.extend(&i);
            v.get(&o).and_then(Val::int)
        };
        // softwareLoopback(24) is not a port.
        if at(3) == Some(24) {
            continue;
        }
        ports += 1;
        match oper.int() {
            Some(1) => up += 1,
            // Down while the operator wants it up (ifAdminStatus up).
            Some(2) if at(7) == Some(1) => down += 1,
            _ => {}
        }
        errors = errors.saturating_add(at(14).unwrap_or(0) + at(20).unwrap_or(0));
    }
    let metrics = vec![
        ("ports".to_owned(), f64::from(ports)),
        ("ports_up".to_owned(), f64::from(up)),
        ("ports_down".to_owned(), f64::from(down)),
        ("if_errors".to_owned(), errors as f64),
    ];
    Reading {
        up: ports > 0,
        reason: (ports == 0).then(|| "no ports in IF-MIB".to_owned()),
        metrics,
        identity: Identity::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, Val)]) -> Values {
        pairs.iter().map(|(o, v)| (oid(o), v.clone())).collect()
    }

    #[test]
    fn a_jammed_printer_with_its_door_open_is_down_and_says_so() {
        let mut v = values(&[
            (
                "1.3.6.1.2.1.25.3.2.1.3.1",
                Val::Bytes(b"Receipt printer TM-88".to_vec()),
            ),
            ("1.3.6.1.2.1.25.3.2.1.5.1", Val::Int(3)),
            ("1.3.6.1.2.1.25.3.5.1.1.1", Val::Int(1)),
            // door open (bit 4) and jammed (bit 5); low paper (bit 0) is only a warning.
            ("1.3.6.1.2.1.25.3.5.1.2.1", Val::Bytes(vec![0b1000_1100, 0])),
            ("1.3.6.1.2.1.43.10.2.1.4.1.1", Val::Int(12_345)),
            (
                "1.3.6.1.2.1.43.11.1.1.6.1.1",
                Val::Bytes(b"Black Toner".to_vec()),
            ),
            ("1.3.6.1.2.1.43.11.1.1.8.1.1", Val::Int(200)),
            ("1.3.6.1.2.1.43.11.1.1.9.1.1", Val::Int(50)),
            ("1.3.6.1.2.1.43.18.1.1.2.1.1", Val::Int(3)),
            (
                "1.3.6.1.2.1.43.18.1.1.8.1.1",
                Val::Bytes(b"Paper jam in tray 1".to_vec()),
            ),
            (
                "1.3.6.1.2.1.43.5.1.1.17.1",
                Val::Bytes(b"TM88-0042".to_vec()),
            ),
        ]);
        let r = read(SnmpProfile::Printer, &v).unwrap();
        assert!(!r.up);
        assert_eq!(
            r.reason.as_deref(),
            Some("door open, jammed, Paper jam in tray 1")
        );
        assert!(r.metrics.contains(&("supply.black_toner_pct".into(), 25.0)));
        assert!(r.metrics.contains(&("pages".into(), 12_345.0)));
        assert!(r.metrics.contains(&("printer_errors".into(), 3.0)));
        assert_eq!(r.identity.serial.as_deref(), Some("TM88-0042"));
        assert_eq!(r.identity.model.as_deref(), Some("Receipt printer TM-88"));

        // Only low paper, no alert: up.
        v.insert(oid("1.3.6.1.2.1.25.3.5.1.2.1"), Val::Bytes(vec![0x80, 0]));
        v.remove(&oid("1.3.6.1.2.1.43.18.1.1.2.1.1"));
        let r = read(SnmpProfile::Printer, &v).unwrap();
        assert!(r.up, "{r:?}");
    }

    #[test]
    fn a_ups_on_battery_reads_from_either_mib() {
        let std_mib = values(&[
            ("1.3.6.1.2.1.33.1.1.1.0", Val::Bytes(b"ACME".to_vec())),
            ("1.3.6.1.2.1.33.1.4.1.0", Val::Int(5)),
            ("1.3.6.1.2.1.33.1.2.4.0", Val::Int(71)),
            ("1.3.6.1.2.1.33.1.2.3.0", Val::Int(12)),
        ]);
        let r = read(SnmpProfile::Ups, &std_mib).unwrap();
        assert!(r.up);
        assert!(r.metrics.contains(&("on_battery".into(), 1.0)));
        assert!(r.metrics.contains(&("battery_pct".into(), 71.0)));
        assert_eq!(r.identity.vendor.as_deref(), Some("ACME"));
        let eaton = values(&[
            ("1.3.6.1.4.1.534.1.4.5.0", Val::Int(3)),
            ("1.3.6.1.4.1.534.1.2.1.0", Val::Int(600)),
            ("1.3.6.1.4.1.705.1.1.1.0", Val::Bytes(b"Eaton 9PX".to_vec())),
        ]);
        let r = read(SnmpProfile::Ups, &eaton).unwrap();
        assert!(r.metrics.contains(&("on_battery".into(), 0.0)));
        assert!(r.metrics.contains(&("runtime_min".into(), 10.0)));
        assert_eq!(r.identity.vendor.as_deref(), Some("Eaton"));
        // A device that is not a UPS is named as such.
        let e = read(SnmpProfile::Ups, &Values::new()).unwrap_err();
        assert!(e.contains("is this device a UPS"), "{e}");
    }

    #[test]
    fn a_switch_counts_ports_down_that_should_be_up() {
        let v = values(&[
            ("1.3.6.1.2.1.2.2.1.3.1", Val::Int(24)),
            ("1.3.6.1.2.1.2.2.1.8.1", Val::Int(1)),
            ("1.3.6.1.2.1.2.2.1.7.2", Val::Int(1)),
            ("1.3.6.1.2.1.2.2.1.8.2", Val::Int(2)),
            ("1.3.6.1.2.1.2.2.1.14.2", Val::Int(7)),
            ("1.3.6.1.2.1.2.2.1.7.3", Val::Int(2)),
            ("1.3.6.1.2.1.2.2.1.8.3", Val::Int(2)),
            ("1.3.6.1.2.1.2.2.1.8.4", Val::Int(1)),
        ]);
        let r = read(SnmpProfile::Switch, &v).unwrap();
        assert_eq!(
            r.metrics,
            vec![
                ("ports".into(), 3.0),
                ("ports_up".into(), 1.0),
                ("ports_down".into(), 1.0),
                ("if_errors".into(), 7.0)
            ]
        );
    }
}
