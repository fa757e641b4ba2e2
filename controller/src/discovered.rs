//! Devices the gateways' sweeps found on their stores' networks and that are not configured
//! on the gateway yet: shown on the store's page so that an operator sees what is there to
//! be watched.
//!
//! A gateway's report replaces what its previous sweep found (a device gone from the
//! network, or configured since, drops off). What an agent sends is untrusted: an address
//! that is not IPv4 is dropped, text is cut to a bound, and at most [`MAX_PER_AGENT`]
//! devices are kept.

use storefleet_protocol::message::Discovered;
use storefleet_storage::{args, Sql, SqlExt as _};

pub use storefleet_client::stores::DiscoveredDevice;

use crate::db::DbError;

/// Devices kept per gateway at most.
pub const MAX_PER_AGENT: usize = 1024;
/// Characters kept of each text field.
const MAX_TEXT: usize = 200;

fn cut(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect()
}

/// Replaces what `agent_id` of `store` found before with `d`.
pub fn replace(c: &dyn Sql, store: &str, agent_id: &str, d: &Discovered) -> Result<(), DbError> {
    c.execute(
        "DELETE FROM discovered WHERE store_code = ?1 AND agent_id = ?2",
        args![store, agent_id],
    )?;
    let opt = |s: &Option<String>| cut(s.as_deref().unwrap_or(""));
    for f in d.devices.iter().take(MAX_PER_AGENT) {
        let Ok(ip) = f.address.parse::<std::net::Ipv4Addr>() else {
            continue;
        };
        let protocols: Vec<String> = f
            .protocols
            .iter()
            .filter(|p| matches!(p.as_str(), "snmp" | "ipp" | "modbus"))
            .cloned()
            .collect();
        c.execute(
            "INSERT INTO discovered(store_code, address, agent_id, protocols, class, vendor, model,
                 serial, firmware, ipp_url, description, swept_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT(store_code, address) DO UPDATE SET agent_id = ?3, protocols = ?4,
                 class = ?5, vendor = ?6, model = ?7, serial = ?8, firmware = ?9, ipp_url = ?10,
                 description = ?11, swept_at = ?12",
            args![
                store,
                ip.to_string(),
                agent_id,
                protocols.join(","),
                cut(&f.class),
                opt(&f.vendor),
                opt(&f.model),
                opt(&f.serial),
                opt(&f.firmware),
                opt(&f.ipp_url),
                cut(&f.description),
                d.at_ms
            ],
        )?;
    }
    Ok(())
}

/// What the sweeps found in `store`, by address.
pub fn list(c: &dyn Sql, store: &str) -> Result<Vec<DiscoveredDevice>, DbError> {
    let mut found = c.all(
        "SELECT address, agent_id, protocols, class, vendor, model, serial, firmware, ipp_url,
             description, swept_at FROM discovered WHERE store_code = ?1",
        args![store],
        |r| {
            let opt = |name: &str| -> Result<Option<String>, DbError> {
                Ok(Some(r.text(name)?).filter(|s| !s.is_empty()))
            };
            Ok(DiscoveredDevice {
                address: r.text("address")?,
                agent_id: r.text("agent_id")?,
                protocols: r
                    .text("protocols")?
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
                class: r.text("class")?,
                vendor: opt("vendor")?,
                model: opt("model")?,
                serial: opt("serial")?,
                firmware: opt("firmware")?,
                ipp_url: opt("ipp_url")?,
                description: r.text("description")?,
                swept_at_ms: r.i64("swept_at")?,
            })
        },
    )?;
    found.sort_by_key(|d| d.address.parse::<std::net::Ipv4Addr>().ok());
    Ok(found)
}
