//! The `modbus` device probe against a real Modbus TCP server (pymodbus, installed by
//! `scripts/install-test-peers.sh`; skipped with a note where it is missing, never where
//! `STOREFLEET_TEST_MODBUS` is set): a fridge controller's temperature in tenths, an energy
//! meter's 32-bit counter in both word orders and a float are read as their register map
//! says; a register the device does not have, a unit it does not answer for and a device
//! gone are down with the reason named.

use storefleet_agent::collect::probe::{probe_once, Outcome};

use crate::common::probed;
use storefleet_agent::config::{DeviceConfig, Parity, Probe, Register, RegisterKind, RegisterType};

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

/// The map of the test device: a fridge controller's temperature and door, an energy
/// meter's counter in both word orders and a float.
fn the_map() -> Vec<Register> {
    let mut swapped = register(
        "energy_swapped_kwh",
        RegisterKind::Holding,
        14,
        RegisterType::U32,
        0.01,
    );
    swapped.swap_words = true;
    vec![
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
    ]
}

/// What the test device's map reads, each value to three places.
const WANT: [(&str, &str); 5] = [
    ("temp_c", "-4.500"),
    ("door_open", "0.000"),
    ("energy_kwh", "1234.560"),
    ("power_factor", "0.875"),
    ("energy_swapped_kwh", "1234.560"),
];

fn readings(o: &Outcome) -> Vec<(String, String)> {
    o.metrics
        .iter()
        .map(|(n, v)| (n.clone(), format!("{v:.3}")))
        .collect()
}

fn want() -> Vec<(String, String)> {
    WANT.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn modbus_probe_reads_a_register_map_from_a_real_server() {
    let Some(py) = storefleet_testkit::peers::pymodbus() else {
        return;
    };
    let mut peer = storefleet_testkit::peers::ModbusDevice::start(&py);
    let port = peer.port;
    let address = format!("127.0.0.1:{port}");

    let map = the_map();
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
    assert_eq!(readings(&o), want());
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

/// Modbus RTU on a serial line (two pseudo-terminals joined as a null-modem cable joins two
/// ports; pymodbus's serial server on the far end): the same map reads as over TCP; four
/// polls at once on the one line (devices sharing a bus) each get their own answers; a
/// register the device lacks, and a unit the line's device does not have, are named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modbus_rtu_reads_the_map_over_a_serial_line() {
    let Some(py) = storefleet_testkit::peers::pymodbus() else {
        return;
    };
    let peer = storefleet_testkit::peers::ModbusDevice::start_rtu(&py);
    let line = peer.line.clone().expect("the line's end");
    let rtu = |unit: u8, registers: Vec<Register>| {
        let probe = Probe::ModbusRtu {
            port: line.clone(),
            baud: 9600,
            // A pseudo-terminal refuses parity (the kernel has no wire to check); the line
            // runs without, with the two stop bits Modbus asks for then.
            parity: Parity::None,
            stop_bits: 2,
            unit,
            registers,
        };
        probed("fridge-controller", probe, 3000)
    };
    let mut polls = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let d = rtu(1, the_map());
        polls.spawn(async move { probe_once(&d).await });
    }
    while let Some(o) = polls.join_next().await {
        let o = o.unwrap();
        assert!(o.up, "{o:?}");
        assert_eq!(readings(&o), want());
    }
    let one = |address| {
        vec![register(
            "x",
            RegisterKind::Holding,
            address,
            RegisterType::U16,
            1.0,
        )]
    };
    let missing = probe_once(&rtu(1, one(500))).await;
    let why = missing.reason.unwrap_or_default();
    assert!(
        why.contains(&line.display().to_string())
            && why.contains("register 500")
            && why.contains("illegal data address"),
        "{why}"
    );
    let nobody = probe_once(&rtu(9, one(0))).await;
    assert!(!nobody.up);
    let why = nobody.reason.unwrap_or_default();
    // pymodbus answers for a unit it does not have with "server device failure".
    assert!(why.contains("unit 9") && why.contains("exception"), "{why}");
}
