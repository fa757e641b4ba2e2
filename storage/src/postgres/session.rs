//! Connections of their own, outside the pool and held open: what holds a session-level
//! advisory lock (the replica that runs the engines) and what LISTENs (wake-ups and key
//! changes from other replicas). Everything here blocks; call it from a thread of its own.

use std::sync::Arc;
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator as _;
use postgres::Client;

use super::Pool;
use crate::Error;

/// How long a silent peer may stay unnoticed: TCP keepalives on a session start after
/// this much quiet, so a lock held by a replica whose machine vanished is given up by the
/// server within about twice this.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);

/// A notification: its channel and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The channel.
    pub channel: String,
    /// The payload.
    pub payload: String,
}

/// One held-open connection.
pub struct Session {
    client: Client,
    place: Arc<str>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

/// Whether `name` can be a channel name as written (a plain lower-case identifier).
fn plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Pool {
    /// A connection of its own (not from the pool), with TCP keepalives.
    pub fn session(&self) -> Result<Session, Error> {
        let mut config = (*self.config).clone();
        config
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(Duration::from_secs(1))
            .keepalives_retries(3);
        let client = self.dial(&config)?;
        Ok(Session {
            client,
            place: self.place.clone(),
        })
    }
}

impl Session {
    fn failed(&self, e: &postgres::Error) -> Error {
        Error::Unavailable(format!("{}: {e}", self.place))
    }

    /// Takes the session-level advisory lock `key` if nobody holds it. It is held until
    /// this session ends (its connection closes, the process dies, the server stops
    /// hearing from it).
    pub fn try_lock(&mut self, key: i64) -> Result<bool, Error> {
        let row = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .map_err(|e| self.failed(&e))?;
        Ok(row.get(0))
    }

    /// Whether the server still answers; a lock taken on this session is held while it does.
    pub fn check(&mut self) -> Result<(), Error> {
        self.client
            .simple_query("SELECT 1")
            .map(drop)
            .map_err(|e| self.failed(&e))
    }

    /// LISTENs on `channel` (a plain lower-case identifier).
    pub fn listen(&mut self, channel: &str) -> Result<(), Error> {
        if !plain_identifier(channel) {
            return Err(Error::Invalid(format!(
                "channel {channel:?} is not a plain identifier"
            )));
        }
        self.client
            .batch_execute(&format!("LISTEN {channel}"))
            .map_err(|e| self.failed(&e))
    }

    /// Waits up to `timeout` for the first notification, then takes whatever else has
    /// arrived; empty when none came. An error means the connection is gone (and with it
    /// what this session listened to).
    pub fn notifications(&mut self, timeout: Duration) -> Result<Vec<Notification>, Error> {
        let gone = |e: &dyn std::fmt::Display| Error::Unavailable(format!("{}: {e}", self.place));
        let convert = |m: postgres::Notification| Notification {
            channel: m.channel().to_owned(),
            payload: m.payload().to_owned(),
        };
        let mut out = Vec::new();
        {
            let mut n = self.client.notifications();
            if let Some(m) = n.timeout_iter(timeout).next().map_err(|e| gone(&e))? {
                out.push(convert(m));
            }
            let mut rest = n.iter();
            while let Some(m) = rest.next().map_err(|e| gone(&e))? {
                out.push(convert(m));
            }
        }
        if out.is_empty() && self.client.is_closed() {
            return Err(gone(&"the connection closed"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::plain_identifier;

    #[test]
    fn only_plain_identifiers_name_a_channel() {
        assert!(plain_identifier("storefleet"));
        assert!(plain_identifier("sf_test_2"));
        for bad in ["", "Storefleet", "a;drop table x", "1a", "a-b", "a b"] {
            assert!(!plain_identifier(bad), "{bad}");
        }
    }
}
