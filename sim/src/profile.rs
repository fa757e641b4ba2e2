//! What a simulated store looks like: its record and its devices, the same for the same
//! store number on every run.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use storefleet_controller::stores::Store;

/// City, region, zone, and the city's centre (degrees).
pub(crate) const CITIES: &[(&str, &str, &str, f64, f64)] = &[
    ("Hamburg", "north", "Europe/Berlin", 53.5511, 9.9937),
    ("Bremen", "north", "Europe/Berlin", 53.0793, 8.8017),
    ("Kiel", "north", "Europe/Berlin", 54.3233, 10.1228),
    ("Munich", "south", "Europe/Berlin", 48.1351, 11.5820),
    ("Stuttgart", "south", "Europe/Berlin", 48.7758, 9.1829),
    ("Nuremberg", "south", "Europe/Berlin", 49.4521, 11.0767),
    ("Dresden", "east", "Europe/Berlin", 51.0504, 13.7373),
    ("Leipzig", "east", "Europe/Berlin", 51.3397, 12.3731),
    ("Berlin", "east", "Europe/Berlin", 52.5200, 13.4050),
    ("Cologne", "west", "Europe/Berlin", 50.9375, 6.9603),
    ("Dusseldorf", "west", "Europe/Berlin", 51.2277, 6.7735),
    ("Vienna", "alps", "Europe/Vienna", 48.2082, 16.3738),
    ("Zurich", "alps", "Europe/Zurich", 47.3769, 8.5417),
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
    let (city, region, tz, lat, lon) = CITIES[(n - 1) % CITIES.len()];
    // Spread over the city and its suburbs, about 15 km each way, the same on every run.
    let mut rng = StdRng::seed_from_u64(n as u64 ^ 0x5eed);
    let place = storefleet_controller::client::engineers::Coord::new(
        lat + rng.random_range(-0.13..0.13),
        lon + rng.random_range(-0.2..0.2),
    )
    .ok();
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
        place,
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
