//! Several replicas over one PostgreSQL database.
//!
//! Every replica serves the API and UI and ingests its share of the agents' uplink (a
//! shared subscription, [`crate::ingest`]). The engines (tasks, tickets, webhooks,
//! housekeeping) run on exactly one replica at a time: the one holding the engines' lease
//! ([`lease`]). What one replica does that another must hear of goes through PostgreSQL's
//! LISTEN/NOTIFY ([`signals`]): engine wake-ups, and an agent's key enrolled or revoked.
//! On SQLite there is one replica: it holds the lease for good and signals stay in process.

pub mod lease;
pub mod signals;

pub use lease::Lease;
pub use signals::{Signals, Wake};

/// The NOTIFY channel replicas talk on.
pub const CHANNEL: &str = "storefleet";

/// Sleeps `d` on this (non-async) thread, or less if `token` is cancelled meanwhile.
fn sleep_unless(token: &tokio_util::sync::CancellationToken, d: std::time::Duration) {
    let end = std::time::Instant::now() + d;
    while !token.is_cancelled() {
        let now = std::time::Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(std::time::Duration::from_millis(50)));
    }
}
