//! What every request handler shares.

use std::sync::Arc;

use storefleet_protocol::SigningKey;

use crate::config::Config;
use crate::db::Db;
use crate::fleet::Rules;
use crate::ingest::{Registry, Stats};

/// Shared state of the HTTP API and UI.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The configuration.
    pub config: Arc<Config>,
    /// Registered agent keys (enrollment adds to it).
    pub registry: Registry,
    /// Ingest counters.
    pub stats: Arc<Stats>,
    /// The controller's signing key.
    pub key: Arc<SigningKey>,
    /// Wakes the engines (here and on the replica that runs them) and tells every
    /// replica of key changes.
    pub signals: crate::cluster::Signals,
    /// Whether this replica runs the engines.
    pub lease: crate::cluster::Lease,
    /// Ticket settings and webhooks.
    pub tickets: crate::tickets::Ctx,
    /// The ticket engine's counters.
    pub ticket_counters: Arc<crate::tickets::engine::Counters>,
    /// The ticket engine's clock.
    pub clock: crate::tasks::engine::Clock,
    /// The pin of the certificate the API serves (`sha256//...`); empty without TLS.
    pub tls_pin: String,
    /// The release key's public half (`releases.public_key`), if configured.
    pub release_key: Option<storefleet_protocol::PublicKey>,
    /// Sign-in attempt limits.
    pub login_limiter: Arc<crate::auth::limit::LoginLimiter>,
    /// Connections the embedded broker refused.
    pub broker_refusals: Arc<crate::broker_auth::Refusals>,
    /// HTTP connection counters.
    pub http_stats: Arc<crate::http::HttpStats>,
}

impl AppState {
    /// Presence rules at this moment. Device staleness waits for this replica's ingest when
    /// it is behind ([`crate::ingest::behind`]; the ticket engine waits for every replica's).
    pub fn rules(&self) -> Rules {
        let now = storefleet_protocol::now_ms();
        let mut r = Rules::new(&self.config.presence, now);
        r.data_behind_ms = crate::ingest::behind::capped(self.stats.behind(now));
        r
    }
}
