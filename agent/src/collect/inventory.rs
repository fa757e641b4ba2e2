//! Inventory: what the gateway is and which devices it watches. Gathered at start, after
//! a config reload and on an interval; the buffer keeps only the latest and sends it only
//! when it changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use storefleet_protocol::message::{Device, Discovered, Disk, Gateway, Inventory, Nic};
use sysinfo::{Disks, Networks, System};
use tokio_util::sync::CancellationToken;

use crate::buffer::Buffer;
use crate::config::{DeviceConfig, GatewayOverride};
use crate::sync::AGENT_VERSION;

fn dmi(field: &str) -> Option<String> {
    std::fs::read_to_string(format!("/sys/class/dmi/id/{field}"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty() && s != "To Be Filled By O.E.M." && s != "Default string")
}

/// Gathers the gateway's inventory (blocking; reads /sys and /proc).
pub fn gateway() -> Gateway {
    let mut sys = System::new();
    sys.refresh_memory();
    sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    let mut disks: Vec<Disk> = Disks::new_with_refreshed_list()
        .list()
        .iter()
        .map(|d| Disk {
            mount: d.mount_point().to_string_lossy().into_owned(),
            fs: d.file_system().to_string_lossy().into_owned(),
            total_bytes: d.total_space(),
        })
        .collect();
    disks.sort_by(|a, b| a.mount.cmp(&b.mount));
    let mut nics: Vec<Nic> = Networks::new_with_refreshed_list()
        .list()
        .iter()
        .map(|(name, data)| Nic {
            name: name.clone(),
            mac: data.mac_address().to_string(),
        })
        .filter(|n| n.mac != "00:00:00:00:00:00")
        .collect();
    nics.sort_by(|a, b| a.name.cmp(&b.name));
    Gateway {
        hostname: System::host_name().unwrap_or_default(),
        os: System::name().unwrap_or_default(),
        os_version: System::os_version().unwrap_or_default(),
        kernel: System::kernel_version().unwrap_or_default(),
        arch: System::cpu_arch(),
        cpu_model: sys
            .cpus()
            .first()
            .map(|c| c.brand().trim().to_owned())
            .unwrap_or_default(),
        cpu_count: sys.cpus().len() as u32,
        memory_bytes: sys.total_memory(),
        disks,
        nics,
        serial: dmi("product_serial"),
        vendor: dmi("sys_vendor"),
        product: dmi("product_name"),
        firmware: dmi("bios_version"),
        agent_version: AGENT_VERSION.into(),
    }
}

/// What a device says it is (over SNMP or IPP): for the asset records, so that nobody types
/// serials by hand.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// Maker.
    pub vendor: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Serial number.
    pub serial: Option<String>,
    /// Firmware or software version.
    pub firmware: Option<String>,
}

/// The identities devices reported, by device id, and the last sweep's findings; the
/// inventory is sent again when one changes.
#[derive(Default)]
pub struct Identities {
    found: Mutex<HashMap<String, Identity>>,
    discovered: Mutex<Option<Discovered>>,
    changed: tokio::sync::Notify,
}

impl Identities {
    /// Records what `device` says it is; wakes the inventory if that is news.
    pub fn set(&self, device: &str, id: Identity) {
        let mut found = self
            .found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if found.get(device) != Some(&id) {
            found.insert(device.to_owned(), id);
            self.changed.notify_one();
        }
    }

    /// Records a sweep's findings; wakes the inventory if they differ from the last.
    pub fn set_discovered(&self, d: Discovered) {
        let mut last = self
            .discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.as_ref() != Some(&d) {
            *last = Some(d);
            self.changed.notify_one();
        }
    }

    fn discovered(&self) -> Option<Discovered> {
        self.discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn get(&self, device: &str) -> Option<Identity> {
        let found = self
            .found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        found.get(device).cloned()
    }
}

/// The configured devices as inventory entries: what the config says, else what the
/// device said of itself.
pub fn devices(devs: &[DeviceConfig], identities: &Identities) -> Vec<Device> {
    devs.iter()
        .map(|d| {
            let found = identities.get(&d.id).unwrap_or_default();
            Device {
                id: d.id.clone(),
                class: d.class.clone(),
                vendor: d.vendor.clone().or(found.vendor),
                model: d.model.clone().or(found.model),
                serial: d.serial.clone().or(found.serial),
                firmware: d.firmware.clone().or(found.firmware),
                address: d.probe.address(),
                interval_secs: u32::try_from(d.interval_secs).ok(),
            }
        })
        .collect()
}

/// Replaces detected values with the configured ones that are set.
pub fn apply_override(g: &mut Gateway, o: &GatewayOverride) {
    let set = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    if let Some(h) = set(&o.hostname) {
        g.hostname = h;
    }
    g.serial = set(&o.serial).or(g.serial.take());
    g.vendor = set(&o.vendor).or(g.vendor.take());
    g.product = set(&o.model).or(g.product.take());
    g.firmware = set(&o.firmware).or(g.firmware.take());
    if !o.macs.is_empty() {
        g.nics = o
            .macs
            .iter()
            .enumerate()
            .map(|(i, m)| Nic {
                name: format!("eth{i}"),
                mac: m.to_lowercase(),
            })
            .collect();
    }
}

/// Reports the inventory now, then every `interval` and when a device tells who it is,
/// until cancelled.
pub async fn run(
    devs: Vec<DeviceConfig>,
    gateway_override: GatewayOverride,
    interval: Duration,
    identities: Arc<Identities>,
    buffer: Buffer,
    token: CancellationToken,
) {
    loop {
        let devices = devices(&devs, &identities);
        let gw = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::task::spawn_blocking(gateway),
        )
        .await;
        match gw {
            Ok(Ok(mut gateway)) => {
                apply_override(&mut gateway, &gateway_override);
                let inv = Inventory {
                    gateway,
                    devices,
                    discovered: identities.discovered(),
                };
                match buffer.set_inventory(inv).await {
                    Ok(true) => tracing::info!("Inventory changed; it will be reported"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "Cannot buffer inventory"),
                }
            }
            _ => tracing::warn!("Inventory gathering hung or failed"),
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
            () = identities.changed.notified() => {}
        }
    }
}
