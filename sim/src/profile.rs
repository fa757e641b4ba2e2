//! What a simulated store looks like: its record and its devices, the same for the same
//! store number on every run.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use storefleet_controller::stores::Store;

const CITIES: &[(&str, &str, &str)] = &[
    ("Hamburg", "north", "Europe/Berlin"),
    ("Bremen", "north", "Europe/Berlin"),
    ("Kiel", "north", "Europe/Berlin"),
    ("Munich", "south", "Europe/Berlin"),
    ("Stuttgart", "south", "Europe/Berlin"),
    ("Nuremberg", "south", "Europe/Berlin"),
    ("Dresden", "east", "Europe/Berlin"),
    ("Leipzig", "east", "Europe/Berlin"),
    ("Berlin", "east", "Europe/Berlin"),
    ("Cologne", "west", "Europe/Berlin"),
    ("Dusseldorf", "west", "Europe/Berlin"),
    ("Vienna", "alps", "Europe/Vienna"),
    ("Zurich", "alps", "Europe/Zurich"),
];

/// A simulated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDevice {
    /// Device id in the store.
    pub id: String,
    /// Class.
    pub class: &'static str,
    /// Vendor.
    pub vendor: &'static str,
    /// Model.
    pub model: &'static str,
    /// Serial.
    pub serial: String,
    /// Firmware.
    pub firmware: String,
    /// Seconds between readings.
    pub interval_secs: u64,
}

/// Store number `n` (1-based).
pub fn store(n: usize) -> Store {
    let (city, region, tz) = CITIES[(n - 1) % CITIES.len()];
    Store {
        code: format!("S{n:04}"),
        name: format!("{city} {}", (n - 1) / CITIES.len() + 1),
        region: region.into(),
        address: format!("Hauptstrasse {n}, {city}"),
        timezone: tz.into(),
        trading_hours: if n % 5 == 0 {
            "Mo-Su 07:00-22:00".into()
        } else {
            "Mo-Sa 08:00-20:00".into()
        },
        tags: if n % 10 == 1 {
            vec!["pilot".into()]
        } else {
            Vec::new()
        },
    }
}

/// The devices of store `n`.
pub fn devices(n: usize) -> Vec<SimDevice> {
    let mut rng = StdRng::seed_from_u64(n as u64);
    let mut serial = |prefix: &str| format!("{prefix}{:08}", rng.random_range(0..100_000_000u32));
    let mut out = Vec::new();
    let pos = 2 + n % 3;
    for i in 1..=pos {
        out.push(SimDevice {
            id: format!("pos-{i}"),
            class: "pos",
            vendor: "Diebold Nixdorf",
            model: "BEETLE /M-III",
            serial: serial("DN"),
            firmware: "4.2.1".into(),
            interval_secs: 10,
        });
    }
    out.push(SimDevice {
        id: "printer-1".into(),
        class: "receipt-printer",
        vendor: "Epson",
        model: "TM-T88VI",
        serial: serial("X5E"),
        firmware: "30.05".into(),
        interval_secs: 10,
    });
    out.push(SimDevice {
        id: "scale-1".into(),
        class: "scale",
        vendor: "Bizerba",
        model: "K-Class Flex",
        serial: serial("BZ"),
        firmware: "2.11".into(),
        interval_secs: 30,
    });
    for i in 1..=2 {
        out.push(SimDevice {
            id: format!("scanner-{i}"),
            class: "scanner",
            vendor: "Datalogic",
            model: "Magellan 9800i",
            serial: serial("DL"),
            firmware: "610.2".into(),
            interval_secs: 30,
        });
    }
    out.push(SimDevice {
        id: "signage-1".into(),
        class: "signage",
        vendor: "Samsung",
        model: "QM55C",
        serial: serial("SM"),
        firmware: "T-KTM2.1071".into(),
        interval_secs: 60,
    });
    out.push(SimDevice {
        id: "ups-1".into(),
        class: "ups",
        vendor: "APC",
        model: "SMT1500RMI2U",
        serial: serial("AS"),
        firmware: "UPS 09.8".into(),
        interval_secs: 30,
    });
    out.push(SimDevice {
        id: "fridge-1".into(),
        class: "fridge-sensor",
        vendor: "Carel",
        model: "pCOWeb",
        serial: serial("CR"),
        firmware: "2.4.3".into(),
        interval_secs: 30,
    });
    out
}

/// The gateway's identity for store `n`: host name, serial, MAC.
pub fn gateway(n: usize) -> (String, String, String) {
    (
        format!("gw-s{n:04}"),
        format!("GW{:08}", n * 7919 % 100_000_000),
        format!(
            "02:5f:{:02x}:{:02x}:{:02x}:01",
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            n & 0xff
        ),
    )
}
