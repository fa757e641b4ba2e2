//! The device catalog shipped with the agent: for each class of store device it knows,
//! how to ask it, what it yields, which of the controller's built-in rules watches it and
//! which shipped routine repairs it. A device of a known class needs only its address:
//!
//! ```toml
//! [[devices]]
//! id = "ups-1"
//! class = "ups"
//! address = "10.0.0.5"
//! ```
//!
//! SNMP credentials come from `[snmp]` (v2c community, or a v3 user), shared by every
//! device the catalog sets up.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Probe, Secret, SnmpAuth, SnmpPrivacy, SnmpProfile, SnmpTarget};

/// One class of device the agent knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The device classes it serves (`class = "..."` in `[[devices]]`).
    pub classes: &'static [&'static str],
    /// How it is asked.
    pub snmp: SnmpProfile,
    /// Metrics it yields besides `probe.up` and `probe.latency_ms`.
    pub metrics: &'static [&'static str],
    /// Events besides `device.down` and `device.up`.
    pub events: &'static [&'static str],
    /// The controller's built-in alert rule that watches it (empty: none).
    pub rule: &'static str,
    /// The shipped routine that repairs it (empty: none).
    pub routine: &'static str,
}

/// What a printer yields, whatever its class.
const PRINTER_METRICS: &[&str] = &[
    "printer_status",
    "printer_errors",
    "pages",
    "supply.NAME_pct",
];
const PRINTER_EVENTS: &[&str] = &["printer.alert (trap)"];

/// Every profile.
pub const CATALOG: &[Profile] = &[
    Profile {
        classes: &["ups"],
        snmp: SnmpProfile::Ups,
        metrics: &[
            "on_battery",
            "battery_pct",
            "runtime_min",
            "load_pct",
            "input_v",
        ],
        events: &[
            "ups.on_battery (trap)",
            "ups.alarm (trap)",
            "ups.alarm_cleared (trap)",
        ],
        rule: "ups-on-battery",
        routine: "",
    },
    Profile {
        classes: &["receipt-printer"],
        snmp: SnmpProfile::Printer,
        metrics: PRINTER_METRICS,
        events: PRINTER_EVENTS,
        rule: "printer-down",
        routine: "receipt-printer-unstick",
    },
    Profile {
        classes: &["printer", "label-printer"],
        snmp: SnmpProfile::Printer,
        metrics: PRINTER_METRICS,
        events: PRINTER_EVENTS,
        rule: "",
        routine: "",
    },
    Profile {
        classes: &["switch", "router", "access-point"],
        snmp: SnmpProfile::Switch,
        metrics: &["ports", "ports_up", "ports_down", "if_errors"],
        events: &["switch.link_down (trap)", "switch.link_up (trap)"],
        rule: "",
        routine: "",
    },
];

/// The profile of `class`, if the catalog has one.
pub fn find(class: &str) -> Option<&'static Profile> {
    CATALOG.iter().find(|p| p.classes.contains(&class))
}

/// `[snmp]`: the credentials of the devices the catalog sets up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnmpSection {
    /// v2c community, when no v3 `user` is given.
    pub community: Secret,
    /// v3 user (authPriv); empty: v2c.
    pub user: String,
    /// v3 authentication protocol.
    pub auth: SnmpAuth,
    /// v3 authentication password.
    pub auth_password: Secret,
    /// v3 privacy protocol.
    pub privacy: SnmpPrivacy,
    /// v3 privacy password.
    pub privacy_password: Secret,
    /// Where to listen for the devices' traps (`0.0.0.0:162`); empty: traps are not
    /// received.
    pub trap_listen: String,
}

impl Default for SnmpSection {
    fn default() -> Self {
        SnmpSection {
            community: Secret::new("public"),
            user: String::new(),
            auth: SnmpAuth::default(),
            auth_password: Secret::default(),
            privacy: SnmpPrivacy::default(),
            privacy_password: Secret::default(),
            trap_listen: String::new(),
        }
    }
}

impl super::Config {
    /// Gives each device configured by class and address the probe its profile says.
    pub fn resolve_devices(&mut self) -> Result<(), ConfigError> {
        for (i, d) in self.devices.iter_mut().enumerate() {
            if d.probe != Probe::Catalog {
                if !d.address.is_empty() {
                    return Err(ConfigError::validation(
                        &format!("devices[{i}].address"),
                        "either an address (for a class of the catalog) or a probe, not both",
                    ));
                }
                continue;
            }
            let Some(profile) = find(&d.class) else {
                let known: Vec<&str> = CATALOG.iter().flat_map(|p| p.classes).copied().collect();
                return Err(ConfigError::validation(
                    &format!("devices[{i}].probe"),
                    format!(
                        "a probe: class \"{}\" is not in the catalog (which knows {})",
                        d.class,
                        known.join(", ")
                    ),
                ));
            };
            if d.address.is_empty() {
                return Err(ConfigError::validation(
                    &format!("devices[{i}].address"),
                    "the device's address (or a probe)",
                ));
            }
            let s = &self.snmp;
            d.probe = Probe::Snmp(SnmpTarget {
                address: d.address.clone(),
                profile: profile.snmp,
                community: s.community.clone(),
                user: s.user.clone(),
                auth: s.auth,
                auth_password: s.auth_password.clone(),
                privacy: s.privacy,
                privacy_password: s.privacy_password.clone(),
                context: String::new(),
            });
        }
        Ok(())
    }
}

/// The catalog as a table for people (`storefleet-agent profiles`).
pub fn describe() -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for p in CATALOG {
        let _ = writeln!(out, "{}", p.classes.join(", "));
        let snmp = format!("{:?}", p.snmp).to_lowercase();
        let _ = writeln!(out, "  asked by:  SNMP ({snmp} profile)");
        let _ = writeln!(out, "  metrics:   {}", p.metrics.join(", "));
        let _ = writeln!(out, "  events:    {}", p.events.join(", "));
        if !p.rule.is_empty() {
            let _ = writeln!(out, "  rule:      {} (built into the controller)", p.rule);
        }
        if !p.routine.is_empty() {
            let _ = writeln!(out, "  routine:   {} (shipped)", p.routine);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Probe, SnmpProfile};

    fn load(toml: &str) -> Result<Config, String> {
        let mut c: Config = toml::from_str(toml).map_err(|e| e.to_string())?;
        c.resolve_devices().map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn a_class_and_an_address_are_all_a_known_device_needs() {
        let c = load(
            "[snmp]\nuser = \"storefleet\"\nauth = \"sha256\"\nauth_password = \"12345678\"\n\
             privacy_password = \"abcdefgh\"\n\n\
             [[devices]]\nid = \"ups-1\"\nclass = \"ups\"\naddress = \"10.0.0.5\"\n",
        )
        .unwrap();
        let Probe::Snmp(t) = &c.devices[0].probe else {
            panic!("{:?}", c.devices[0].probe)
        };
        assert_eq!(t.profile, SnmpProfile::Ups);
        assert_eq!(t.host_port(), "10.0.0.5:161");
        assert_eq!(t.user, "storefleet");
        assert_eq!(t.auth_password.expose(), "12345678");
        // The shared credentials are checked as the device's own.
        let e = load(
            "[snmp]\nuser = \"storefleet\"\n\n\
             [[devices]]\nid = \"ups-1\"\nclass = \"ups\"\naddress = \"10.0.0.5\"\n",
        )
        .unwrap_err();
        assert!(e.contains("devices[0].probe.auth_password"), "{e}");
    }

    #[test]
    fn what_the_catalog_cannot_set_up_is_named() {
        for (toml, says) in [
            (
                "[[devices]]\nid = \"f\"\nclass = \"fridge\"\naddress = \"10.0.0.9\"\n",
                "class \"fridge\" is not in the catalog (which knows ups, receipt-printer",
            ),
            (
                "[[devices]]\nid = \"u\"\nclass = \"ups\"\n",
                "devices[0].address",
            ),
            (
                "[[devices]]\nid = \"u\"\nclass = \"ups\"\naddress = \"10.0.0.5\"\n\
                 probe = { type = \"icmp\", host = \"10.0.0.5\" }\n",
                "not both",
            ),
        ] {
            let e = load(toml).unwrap_err();
            assert!(e.contains(says), "{toml}: {e}");
        }
    }
}

#[cfg(test)]
mod readme {
    use crate::config::{Config, Probe};

    /// The README's example of a store's devices is a config that loads as it says.
    #[test]
    fn the_readme_example_loads() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("### A store's devices")
            .nth(1)
            .expect("the README's section on devices");
        let toml = section
            .split("```toml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("its TOML block");
        let mut c: Config = toml::from_str(toml).unwrap();
        c.resolve_devices().unwrap();
        c.validate().unwrap();
        assert_eq!(c.devices.len(), 3);
        assert!(matches!(&c.devices[0].probe, Probe::Snmp(t) if t.v3()));
        assert!(matches!(&c.devices[2].probe, Probe::Modbus { .. }));
    }
}
