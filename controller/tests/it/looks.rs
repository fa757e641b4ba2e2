//! The ticket engine looks at a faulty store on its own, with the real `storefleet serve`
//! process and a real agent binary.

use std::time::Duration;

use crate::common::Controller;
use crate::tickets::{broken_printer, tickets_of, RULES};

/// A fault does not wait for the rules' next read of the whole fleet: with that read once a
/// minute, a printer its routine cannot fix becomes an assigned ticket within the minute,
/// through the looks at its store (when its events arrive, and when the rule's time is up).
/// The fleet was read once when it became one, at the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_becomes_a_ticket_without_waiting_for_the_fleets_next_read() {
    let started = std::time::Instant::now();
    let rules = RULES.replace("evaluate_interval_ms = 200", "evaluate_interval_ms = 60000");
    let ctl = Controller::start_with(None, &rules);
    let _gateway = broken_printer(&ctl, "T3").await;
    let left = Duration::from_secs(55).saturating_sub(started.elapsed());
    let found = crate::common::within(left.as_secs(), || async {
        let ts = tickets_of(&ctl, "T3").await;
        ts.into_iter()
            .find(|t| t["rule"] == "printer-down" && t["engineer"] == "anna")
    })
    .await;
    let reads = ctl.metric("storefleet_rule_evaluations_total ").await;
    let looks = ctl.metric("storefleet_rule_store_looks_total ").await;
    assert!(
        found.is_some(),
        "no assigned printer ticket within {left:?}\nalerts: {}\nevents: {}",
        ctl.get("/api/v1/alerts?store=T3").await,
        ctl.get("/api/v1/events?store=T3").await
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(reads, 1, "the fleet was read once, at the start");
    assert!(looks >= 2, "{looks} looks");
}
