//! The `ipp` device probe against a real CUPS (installed by `scripts/install-cups.sh`;
//! skipped with a note where it is not running, never where `STOREFLEET_TEST_CUPS` is set):
//! a queue that prints is up, one stopped ("paused", as a printer out of paper is) is down
//! and says why, and one enabled again is up; a queue CUPS does not know, and a port where
//! nothing answers, are down with the reason named. A queue whose driver names the printer
//! (its IEEE 1284 device id) gives the asset records its maker, model and serial.

use storefleet_agent::collect::probe::probe_once;
use storefleet_agent::config::{DeviceConfig, Probe};

use crate::common::probed;
use crate::routines::{cups_here, sh};

fn printer(url: String) -> DeviceConfig {
    probed("receipt-printer", Probe::Ipp { url }, 5000)
}

#[tokio::test]
async fn ipp_probe_reads_a_real_cups_queues_state() {
    if !cups_here() {
        return;
    }
    let queue = format!("sf-ipp-{:08x}", rand::random::<u32>());
    sh(&["lpadmin", "-p", &queue, "-E", "-v", "file:///dev/null"]);
    let url = format!("ipp://localhost:631/printers/{queue}");
    let state = |o: &storefleet_agent::collect::probe::Outcome| {
        o.metrics
            .iter()
            .find(|(n, _)| n == "ipp.state")
            .map(|(_, v)| *v)
    };

    let up = probe_once(&printer(url.clone())).await;
    sh(&["cupsdisable", "-r", "paper out", &queue]);
    let stopped = probe_once(&printer(url.clone())).await;
    sh(&["cupsenable", &queue]);
    let again = probe_once(&printer(url.clone())).await;
    sh(&["lpadmin", "-x", &queue]);
    let gone = probe_once(&printer(url)).await;

    assert!(up.up, "{up:?}");
    assert_eq!(state(&up), Some(3.0), "idle: {up:?}");
    // A raw queue says only what CUPS calls it; no serial is made up.
    let raw = up.identity.clone().expect("an identity");
    assert_eq!(raw.serial, None, "{raw:?}");
    assert!(raw.model.is_some(), "{raw:?}");
    assert!(!stopped.up, "{stopped:?}");
    assert_eq!(state(&stopped), Some(5.0), "{stopped:?}");
    let why = stopped.reason.unwrap_or_default();
    assert!(why.contains("stopped") && why.contains("paused"), "{why}");
    assert!(again.up, "{again:?}");
    assert!(!gone.up, "{gone:?}");
    let why = gone.reason.unwrap_or_default();
    assert!(
        why.contains("refused") && why.contains("0x0406"),
        "not found: {why}"
    );

    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let nobody = probe_once(&printer(format!("ipp://127.0.0.1:{port}/printers/x"))).await;
    assert!(!nobody.up);
    assert!(nobody.reason.unwrap_or_default().starts_with("IPP "));
}

/// A new CUPS queue (named `prefix-...`) whose driver names the printer: EPSON TM-T88VI,
/// serial X5E0123456 (`scripts/peers/cups/receipt-printer.ppd`).
pub(crate) fn named_queue(prefix: &str) -> String {
    let ppd = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/peers/cups/receipt-printer.ppd"
    );
    let queue = format!("{prefix}-{:08x}", rand::random::<u32>());
    sh(&[
        "lpadmin",
        "-p",
        &queue,
        "-E",
        "-v",
        "file:///dev/null",
        "-P",
        ppd,
    ]);
    queue
}

#[tokio::test]
async fn ipp_probe_reads_who_the_printer_is_from_its_cups_queue() {
    if !cups_here() {
        return;
    }
    let queue = named_queue("sf-ippid");
    let url = format!("ipp://localhost:631/printers/{queue}");
    let o = probe_once(&printer(url)).await;
    sh(&["lpadmin", "-x", &queue]);
    assert!(o.up, "{o:?}");
    let id = o.identity.expect("an identity");
    assert_eq!(id.vendor.as_deref(), Some("EPSON"), "{id:?}");
    assert_eq!(id.model.as_deref(), Some("TM-T88VI"), "{id:?}");
    assert_eq!(id.serial.as_deref(), Some("X5E0123456"), "{id:?}");
}
