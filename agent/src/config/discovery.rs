//! `[discovery]`: which of the store's subnets the agent may sweep for devices, and how
//! gently. Nothing is swept that is not listed here: a gateway on a shared network must
//! not knock on the neighbours' doors.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// Addresses one sweep takes at most (a /20).
pub const MAX_ADDRESSES: u32 = 4096;

/// `[discovery]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoverySection {
    /// The store's subnets that may be swept, as `192.168.1.0/24` (IPv4); empty: none.
    pub subnets: Vec<String>,
    /// Hours between the agent's own sweeps of every subnet, whose findings the controller
    /// shows on the store's page; 0: only when asked (`storefleet-agent discover`).
    pub interval_hours: u64,
    /// Addresses begun a second at most.
    pub rate_per_sec: u32,
    /// How long each protocol waits for an address to answer, milliseconds.
    pub timeout_ms: u64,
    /// The port SNMP is asked on.
    pub snmp_port: u16,
    /// The port IPP is asked on.
    pub ipp_port: u16,
    /// The paths IPP is asked at, in turn until one answers (`/ipp/print` is IPP
    /// Everywhere's; some printers answer at `/ipp`, a CUPS queue at `/printers/NAME`).
    pub ipp_paths: Vec<String>,
    /// The port Modbus TCP is asked on.
    pub modbus_port: u16,
}

impl Default for DiscoverySection {
    fn default() -> Self {
        DiscoverySection {
            subnets: Vec::new(),
            interval_hours: 24,
            rate_per_sec: 20,
            timeout_ms: 1500,
            snmp_port: 161,
            ipp_port: 631,
            ipp_paths: vec!["/ipp/print".into()],
            modbus_port: 502,
        }
    }
}

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// Its first address (the host bits cleared).
    pub base: Ipv4Addr,
    /// Prefix length, 0 to 32.
    pub prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/n` (or one address, a /32).
    pub fn parse(s: &str) -> Result<Subnet, String> {
        let (addr, prefix) = s.trim().split_once('/').unwrap_or((s.trim(), "32"));
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IPv4 subnet such as 192.168.1.0/24"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{s:?}: the prefix length is 0 to 32"))?;
        Ok(Subnet {
            base: Ipv4Addr::from(u32::from(addr) & Self::mask(prefix)),
            prefix,
        })
    }

    fn mask(prefix: u8) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
    }

    /// Its number of addresses.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// Whether `other` lies wholly inside it.
    pub fn contains(&self, other: &Subnet) -> bool {
        other.prefix >= self.prefix
            && u32::from(other.base) & Self::mask(self.prefix) == u32::from(self.base)
    }

    /// Its hosts: every address but the network and broadcast ones (a /31 and a /32 have
    /// only hosts).
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.base);
        let last = first + (self.size() - 1) as u32;
        let (first, last) = if self.prefix >= 31 {
            (first, last)
        } else {
            (first + 1, last - 1)
        };
        (first..=last).map(Ipv4Addr::from)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl DiscoverySection {
    /// The configured subnets, each checked.
    pub fn allowed(&self) -> Result<Vec<Subnet>, (String, String)> {
        self.subnets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let net = Subnet::parse(s).map_err(|e| (format!("discovery.subnets[{i}]"), e))?;
                if net.size() > u64::from(MAX_ADDRESSES) {
                    return Err((
                        format!("discovery.subnets[{i}]"),
                        format!("{s}: at most {MAX_ADDRESSES} addresses (a /20)"),
                    ));
                }
                Ok(net)
            })
            .collect()
    }

    /// What is wrong with it, as `(key, expected)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        self.allowed()?;
        if !(1..=500).contains(&self.rate_per_sec) {
            return Err(("discovery.rate_per_sec".into(), "1 to 500".into()));
        }
        if let Some(i) = self
            .ipp_paths
            .iter()
            .position(|p| !p.starts_with('/') || p.chars().any(char::is_whitespace))
        {
            return Err((
                format!("discovery.ipp_paths[{i}]"),
                "a path such as /ipp/print".into(),
            ));
        }
        if !(100..=30_000).contains(&self.timeout_ms) {
            return Err(("discovery.timeout_ms".into(), "100 to 30000".into()));
        }
        Ok(())
    }

    /// The subnets `asked` (all configured ones when none is), each inside a configured
    /// one; an asked subnet outside them is refused, naming it.
    pub fn targets(&self, asked: &[String]) -> Result<Vec<Subnet>, String> {
        let allowed = self.allowed().map_err(|(k, e)| format!("{k}: {e}"))?;
        if allowed.is_empty() {
            return Err(
                "no subnet may be swept: list the store's in [discovery] subnets".to_owned(),
            );
        }
        if asked.is_empty() {
            return Ok(allowed);
        }
        asked
            .iter()
            .map(|a| {
                let net = Subnet::parse(a)?;
                if allowed.iter().any(|n| n.contains(&net)) {
                    Ok(net)
                } else {
                    let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
                    Err(format!(
                        "{net} is not inside a subnet this gateway may sweep ([discovery] subnets: {})",
                        list.join(", ")
                    ))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_list_their_hosts() {
        let n = Subnet::parse("192.168.1.77/24").unwrap();
        assert_eq!(n.to_string(), "192.168.1.0/24");
        let hosts: Vec<_> = n.hosts().collect();
        assert_eq!(hosts.len(), 254);
        assert_eq!(hosts[0], Ipv4Addr::new(192, 168, 1, 1));
        assert_eq!(hosts[253], Ipv4Addr::new(192, 168, 1, 254));
        assert_eq!(Subnet::parse("10.0.0.5").unwrap().hosts().count(), 1);
        assert_eq!(Subnet::parse("10.0.0.4/31").unwrap().hosts().count(), 2);
        assert_eq!(Subnet::parse("0.0.0.0/0").unwrap().size(), 1 << 32);
        for bad in ["10.0.0.0/33", "10.0.0/24", "fe80::/64", "x", "10.0.0.0/-1"] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_configured_subnets_are_swept() {
        let d = DiscoverySection {
            subnets: vec!["192.168.1.0/24".into(), "10.20.0.0/22".into()],
            ..DiscoverySection::default()
        };
        d.check().unwrap();
        assert_eq!(d.targets(&[]).unwrap().len(), 2);
        assert_eq!(
            d.targets(&["192.168.1.64/26".into(), "10.20.3.9".into()])
                .unwrap()
                .len(),
            2
        );
        let e = d.targets(&["192.168.0.0/16".into()]).unwrap_err();
        assert!(e.contains("192.168.0.0/16 is not inside"), "{e}");
        let e = d.targets(&["172.16.0.1".into()]).unwrap_err();
        assert!(e.contains("192.168.1.0/24, 10.20.0.0/22"), "{e}");
        let none = DiscoverySection::default();
        assert!(none
            .targets(&[])
            .unwrap_err()
            .contains("[discovery] subnets"));
        let wide = DiscoverySection {
            subnets: vec!["10.0.0.0/16".into()],
            ..DiscoverySection::default()
        };
        assert_eq!(wide.check().unwrap_err().0, "discovery.subnets[0]");
        let fast = DiscoverySection {
            rate_per_sec: 0,
            ..DiscoverySection::default()
        };
        assert_eq!(fast.check().unwrap_err().0, "discovery.rate_per_sec");
    }
}
