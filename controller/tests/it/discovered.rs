//! What a gateway's own sweep finds on the store's network reaches the store's page: the
//! real agent binary sweeps the subnet its config allows, finds snmpsim serving the recorded
//! Eaton UPS (installed by `scripts/install-test-peers.sh`; skipped with a note where it is
//! missing, never where `STOREFLEET_TEST_SNMP` is set), and the controller lists it, with
//! what the UPS says it is, on the store's page and in the API. (That a later sweep
//! replaces an earlier one is in the storage suite, on both backends.)

use storefleet_testkit::peers::{snmpsim, Snmpsim};
use storefleet_testkit::ClosedPort;

use crate::common::{enrolled_home, eventually, Controller};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ups_the_gateway_found_shows_on_the_store_page() {
    let Some(bin) = snmpsim() else { return };
    let sim = Snmpsim::start(&bin);
    let (ipp, modbus) = (ClosedPort::bind(), ClosedPort::bind());
    let ctl = Controller::start(None);
    crate::tickets::store(&ctl, "D1", "north").await;
    let extra = format!(
        "[snmp]\ncommunity = \"eaton-9px\"\n\n[discovery]\nsubnets = [\"127.0.0.0/30\"]\n\
         snmp_port = {}\nipp_port = {}\nmodbus_port = {}\ninterval_hours = 1\n\n\
         [[devices]]\nid = \"ups-2\"\nclass = \"ups\"\naddress = \"127.0.0.2:{}\"\n",
        sim.port, ipp.port, modbus.port, sim.port
    );
    let home = enrolled_home(&ctl, "D1", &extra);
    // snmpsim answers once it has indexed its recordings: the operator's command shows when.
    let table = eventually(30, "snmpsim answers the agent's sweep", || async {
        let o = home.command().arg("discover").output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        out.contains("GX13G45099").then_some(out)
    })
    .await;
    assert!(table.contains("(new)"), "{table}");
    let _agent = home.spawn();

    let found = eventually(60, "the sweep's findings at the controller", || async {
        let v = ctl.get("/api/v1/stores/D1/discovered").await;
        (v.as_array().is_some_and(|a| !a.is_empty())).then_some(v)
    })
    .await;
    let ups = &found[0];
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(ups["address"], "127.0.0.1", "{found}");
    assert_eq!(ups["class"], "ups");
    assert_eq!(ups["protocols"], serde_json::json!(["snmp"]));
    assert_eq!(ups["vendor"], "Eaton");
    assert_eq!(ups["serial"], "GX13G45099");

    let cookie = ctl.admin_session().await;
    let (s, html) = ctl.page(&cookie, "/stores/D1").await;
    assert_eq!(s, 200, "{html}");
    let section = html
        .split("Found on the network, not configured")
        .nth(1)
        .unwrap_or_else(|| panic!("no discovered devices on the page: {html}"));
    assert!(
        section.contains("127.0.0.1") && section.contains("GX13G45099"),
        "{section}"
    );

    // Viewers read it; an unknown store is named.
    let (s, v) = ctl
        .call("GET", "/api/v1/stores/NOPE/discovered", None, true)
        .await;
    assert_eq!(s, 404, "{v}");
    assert!(v.to_string().contains("NOPE"), "{v}");
    let (s, _) = ctl
        .call("GET", "/api/v1/stores/D1/discovered", None, false)
        .await;
    assert_eq!(s, 401);
}
