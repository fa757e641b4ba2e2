//! `tcp.check`: something accepts connections at `host:port` (a printer's raw port, a
//! payment terminal, a scale).
//!
//! ```toml
//! action = "tcp.check"
//! args = { address = "10.0.0.21:9100", timeout_secs = 3 }
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::Done;

fn five() -> u64 {
    5
}

/// `tcp.check`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// `host:port`.
    pub address: String,
    /// Seconds to wait for the connection.
    #[serde(default = "five")]
    pub timeout_secs: u64,
}

impl Check {
    /// Runs it.
    pub async fn run(&self) -> Done {
        let started = std::time::Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(self.timeout_secs),
            tokio::net::TcpStream::connect(&self.address),
        )
        .await;
        let ms = started.elapsed().as_millis();
        match r {
            Ok(Ok(_)) => Done::ok(format!("{}: connected in {ms} ms", self.address)),
            Ok(Err(e)) => Done::fail(format!("{}: {e}", self.address)),
            Err(_) => Done::fail(format!(
                "{}: no connection within {} s",
                self.address, self.timeout_secs
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listening_port_passes_and_a_closed_one_fails() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let up = Check {
            address: addr.clone(),
            timeout_secs: 2,
        }
        .run()
        .await;
        assert!(up.ok, "{}", up.output);
        drop(l);
        let down = Check {
            address: addr.clone(),
            timeout_secs: 2,
        }
        .run()
        .await;
        assert!(!down.ok && down.output.contains(&addr), "{}", down.output);
    }
}
