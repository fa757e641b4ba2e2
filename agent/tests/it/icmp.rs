//! The `icmp` device probe through an unprivileged ping socket (allowed by
//! `scripts/allow-ping-sockets.sh`; skipped with a note where the kernel does not allow it,
//! never where `STOREFLEET_TEST_PING` is set): the loopback answers with a round trip, an
//! address where nobody answers is down (when the probe's time is up, or at once when the
//! network says it cannot be reached), a name that does not resolve is down with its error.

use storefleet_agent::collect::probe::probe_once;

use crate::common::{peer_here, probed};
use storefleet_agent::config::{DeviceConfig, Probe};

fn device(host: &str) -> DeviceConfig {
    probed("scale", Probe::Icmp { host: host.into() }, 1000)
}

#[tokio::test]
async fn icmp_probe_pings_through_an_unprivileged_socket() {
    let loopback = probe_once(&device("127.0.0.1")).await;
    let why = loopback.reason.clone().unwrap_or_default();
    let allowed = !why.contains("ping_group_range");
    let why = format!("ping sockets are not allowed: {why}");
    if !peer_here(
        allowed,
        "STOREFLEET_TEST_PING",
        &why,
        "scripts/allow-ping-sockets.sh",
    ) {
        return;
    }
    assert!(loopback.up, "{loopback:?}");
    let rtt = loopback.metrics.iter().find(|(n, _)| n == "icmp.rtt_ms");
    assert!(
        rtt.is_some_and(|(_, v)| *v >= 0.0 && *v < 1000.0),
        "{loopback:?}"
    );
    assert!(probe_once(&device("localhost")).await.up);

    // TEST-NET-2 (RFC 5737): nobody answers there.
    let silent = probe_once(&device("198.51.100.7")).await;
    assert!(!silent.up);
    let why = silent.reason.unwrap_or_default();
    assert!(
        why.contains("no answer within 1000 ms") || why.starts_with("ping "),
        "{why}"
    );
    let unknown = probe_once(&device("no-such-device.invalid")).await;
    assert!(!unknown.up);
    assert!(unknown
        .reason
        .unwrap_or_default()
        .contains("no-such-device.invalid"));
}
