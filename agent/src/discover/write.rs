//! What a sweep found, for people (a table) and as `[[devices]]` tables to add to the
//! agent's config.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use storefleet_protocol::message::Found;

use crate::config::{DeviceConfig, DiscoverySection};

/// The configured device at each address.
pub fn configured(devices: &[DeviceConfig]) -> Vec<(Ipv4Addr, String)> {
    devices
        .iter()
        .filter_map(|d| {
            let a = if d.address.is_empty() {
                d.probe.address()?
            } else {
                d.address.clone()
            };
            Some((super::host_of(&a)?, d.id.clone()))
        })
        .collect()
}

/// The devices found that are not configured.
pub fn new_ones(found: Vec<Found>, devices: &[DeviceConfig]) -> Vec<Found> {
    let known = configured(devices);
    found
        .into_iter()
        .filter(|f| {
            let ip = f.address.parse::<Ipv4Addr>().ok();
            !known.iter().any(|(k, _)| Some(*k) == ip)
        })
        .collect()
}

fn said(f: &Found) -> String {
    let mut what: Vec<&str> = [&f.vendor, &f.model]
        .into_iter()
        .filter_map(|x| x.as_deref())
        .collect();
    if what.is_empty() && !f.description.is_empty() {
        what.push(&f.description);
    }
    let mut s = what.join(" ");
    if let Some(serial) = &f.serial {
        let _ = write!(s, ", serial {serial}");
    }
    if let Some(fw) = &f.firmware {
        let _ = write!(s, ", firmware {fw}");
    }
    s
}

/// A line per device, saying which are configured already.
pub fn table(found: &[Found], devices: &[DeviceConfig]) -> String {
    let known = configured(devices);
    let mut out = String::new();
    for f in found {
        let ip = f.address.parse::<Ipv4Addr>().ok();
        let as_ = known
            .iter()
            .find(|(k, _)| Some(*k) == ip)
            .map_or("new".to_owned(), |(_, id)| format!("configured as {id}"));
        let _ = writeln!(
            out,
            "{:<15}  {:<13}  {:<16}  {}  ({as_})",
            f.address,
            f.class,
            f.protocols.join("+"),
            said(f)
        );
    }
    if found.is_empty() {
        out.push_str("no device answered\n");
    }
    out
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// `[[devices]]` tables for the devices found that are not configured, with ids that no
/// configured device has. A class the catalog knows needs only its address; a printer that
/// speaks only IPP gets an `ipp` probe; a Modbus device needs its register map, which no
/// sweep can tell, so it is written commented out for the operator to finish.
pub fn devices_toml(found: &[Found], devices: &[DeviceConfig], d: &DiscoverySection) -> String {
    let mut taken: BTreeSet<String> = devices.iter().map(|x| x.id.clone()).collect();
    let mut out = String::new();
    for f in new_ones(found.to_vec(), devices) {
        let last = f.address.rsplit('.').next().unwrap_or("0");
        let base = match f.class.as_str() {
            "modbus-device" => "modbus",
            "snmp-device" => "device",
            c => c,
        };
        let mut id = format!("{base}-{last}");
        let mut n = 2;
        while taken.contains(&id) {
            id = format!("{base}-{last}-{n}");
            n += 1;
        }
        taken.insert(id.clone());
        let _ = writeln!(
            out,
            "# {} ({}): {}",
            f.address,
            f.protocols.join("+"),
            said(&f)
        );
        let snmp = f.protocols.iter().any(|p| p == "snmp");
        let known = crate::config::catalog_profile(&f.class).is_some();
        let port = |p: u16, default: u16| {
            if p == default {
                String::new()
            } else {
                format!(":{p}")
            }
        };
        if snmp && known {
            let _ = writeln!(
                out,
                "[[devices]]\nid = {}\nclass = {}\naddress = {}\n",
                quoted(&id),
                quoted(&f.class),
                quoted(&format!("{}{}", f.address, port(d.snmp_port, 161)))
            );
        } else if f.protocols.iter().any(|p| p == "ipp") {
            let url = f
                .ipp_url
                .clone()
                .unwrap_or_else(|| format!("ipp://{}:{}/ipp/print", f.address, d.ipp_port));
            let _ = writeln!(
                out,
                "[[devices]]\nid = {}\nclass = \"printer\"\nprobe = {{ type = \"ipp\", url = {} }}\n",
                quoted(&id),
                quoted(&url)
            );
        } else if f.protocols.iter().any(|p| p == "modbus") {
            let _ = writeln!(
                out,
                "# Needs its register map (see the Modbus probe in `generate-config`):\n\
                 # [[devices]]\n# id = {}\n# class = \"fridge-controller\"\n\
                 # probe = {{ type = \"modbus\", address = {}, unit = 1, registers = [] }}\n",
                quoted(&id),
                quoted(&format!("{}:{}", f.address, d.modbus_port))
            );
        } else {
            let _ = writeln!(
                out,
                "# Not a class the catalog knows; watched for an answer only:\n\
                 [[devices]]\nid = {}\nclass = \"network-device\"\nprobe = {{ type = \"icmp\", host = {} }}\n",
                quoted(&id),
                quoted(&f.address)
            );
        }
    }
    out
}
