//! The `modbus` device probe against a real Modbus TCP server (pymodbus, installed by
//! `scripts/install-test-peers.sh`; skipped with a note where it is missing, never where
//! `STOREFLEET_TEST_MODBUS` is set): a fridge controller's temperature in tenths, an energy
//! meter's 32-bit counter in both word orders and a float are read as their register map
//! says; a register the device does not have, a unit it does not answer for and a device
//! gone are down with the reason named.

use storefleet_agent::collect::probe::probe_once;

use crate::common::probed;
use storefleet_agent::config::{DeviceConfig, Probe, Register, RegisterKind, RegisterType};

fn register(name: &str, kind: RegisterKind, address: u16, t: RegisterType, scale: f64) -> Register {
    Register {
        name: name.into(),
        kind,
        address,
        r#type: t,
        scale,
        unit: String::new(),
        swap_words: false,
    }
}

fn device(address: String, unit: u8, registers: Vec<Register>) -> DeviceConfig {
    let probe = Probe::Modbus {
        address,
        unit,
        registers,
    };
    probed("fridge-controller", probe, 1000)
}

#[tokio::test]
async fn modbus_probe_reads_a_register_map_from_a_real_server() {
    let Some(py) = storefleet_testkit::peers::pymodbus() else {
        return;
    };
    let mut peer = storefleet_testkit::peers::ModbusDevice::start(&py);
    let port = peer.port;
    let address = format!("127.0.0.1:{port}");

    let mut swapped = register(
        "energy_swapped_kwh",
        RegisterKind::Holding,
        14,
        RegisterType::U32,
        0.01,
    );
    swapped.swap_words = true;
    let map = vec![
        register("temp_c", RegisterKind::Input, 0, RegisterType::I16, 0.1),
        register("door_open", RegisterKind::Input, 1, RegisterType::U16, 1.0),
        register(
            "energy_kwh",
            RegisterKind::Holding,
            10,
            RegisterType::U32,
            0.01,
        ),
        register(
            "power_factor",
            RegisterKind::Holding,
            12,
            RegisterType::F32,
            1.0,
        ),
        swapped,
    ];
    let o = probe_once(&device(address.clone(), 1, map)).await;
    let missing = probe_once(&device(
        address.clone(),
        1,
        vec![register(
            "x",
            RegisterKind::Holding,
            500,
            RegisterType::U16,
            1.0,
        )],
    ))
    .await;
    let one = || {
        vec![register(
            "x",
            RegisterKind::Input,
            0,
            RegisterType::U16,
            1.0,
        )]
    };
    let other_unit = probe_once(&device(address.clone(), 9, one())).await;
    peer.stop();
    let gone = probe_once(&device(address, 1, one())).await;

    assert!(o.up, "{o:?}");
    let got: Vec<(String, String)> = o
        .metrics
        .iter()
        .map(|(n, v)| (n.clone(), format!("{v:.3}")))
        .collect();
    let want: Vec<(String, String)> = [
        ("temp_c", "-4.500"),
        ("door_open", "0.000"),
        ("energy_kwh", "1234.560"),
        ("power_factor", "0.875"),
        ("energy_swapped_kwh", "1234.560"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(got, want);
    assert!(!missing.up);
    let why = missing.reason.unwrap_or_default();
    assert!(
        why.contains("register 500") && why.contains("illegal data address"),
        "{why}"
    );
    assert!(!other_unit.up, "{other_unit:?}");
    assert!(!gone.up);
    assert!(gone.reason.unwrap_or_default().contains("modbus 127.0.0.1"));
}
