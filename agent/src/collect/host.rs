//! Host metrics of the gateway itself, with sysinfo: CPU, memory, each disk, network,
//! load, uptime and temperatures where readable. Sampling runs on a blocking thread with a
//! timeout (sysinfo's CPU refresh has been seen to hang under emulation).

use std::time::Duration;

use storefleet_protocol::now_ms;
use sysinfo::{
    Components, CpuRefreshKind, Disks, MemoryRefreshKind, Networks, RefreshKind, System,
};
use tokio_util::sync::CancellationToken;

use crate::buffer::{Buffer, SeriesIn};

/// Turns a mount point or interface name into a metric name part: `/` -> `root`,
/// `/var/log` -> `var_log`.
pub fn name_part(s: &str) -> String {
    let t = s.trim_matches('/');
    if t.is_empty() {
        return "root".into();
    }
    t.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect()
}

/// The sampler keeps its `System` between samples so CPU usage is a real delta.
pub struct Sampler {
    sys: System,
    networks: Networks,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::new()
    }
}

impl Sampler {
    /// A new sampler.
    pub fn new() -> Sampler {
        Sampler {
            sys: System::new_with_specifics(
                RefreshKind::nothing()
                    .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                    .with_memory(MemoryRefreshKind::everything()),
            ),
            networks: Networks::new_with_refreshed_list(),
        }
    }

    /// One sample: `(metric, value)` pairs.
    pub fn sample(&mut self) -> Vec<(String, f64)> {
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        self.networks.refresh(true);
        let mut m = vec![
            (
                "host.cpu_usage_pct".to_owned(),
                f64::from(self.sys.global_cpu_usage()),
            ),
            (
                "host.mem_used_bytes".to_owned(),
                self.sys.used_memory() as f64,
            ),
            (
                "host.mem_total_bytes".to_owned(),
                self.sys.total_memory() as f64,
            ),
            (
                "host.swap_used_bytes".to_owned(),
                self.sys.used_swap() as f64,
            ),
            ("host.uptime_s".to_owned(), System::uptime() as f64),
        ];
        let load = System::load_average();
        m.push(("host.load1".into(), load.one));
        m.push(("host.load5".into(), load.five));
        m.push(("host.load15".into(), load.fifteen));
        for d in Disks::new_with_refreshed_list().list() {
            let total = d.total_space();
            if total == 0 {
                continue;
            }
            let part = name_part(&d.mount_point().to_string_lossy());
            let used = total.saturating_sub(d.available_space());
            m.push((format!("host.disk.{part}.used_bytes"), used as f64));
            m.push((
                format!("host.disk.{part}.used_pct"),
                used as f64 * 100.0 / total as f64,
            ));
        }
        for (name, data) in self.networks.list() {
            let part = name_part(name);
            m.push((
                format!("host.net.{part}.rx_bytes"),
                data.total_received() as f64,
            ));
            m.push((
                format!("host.net.{part}.tx_bytes"),
                data.total_transmitted() as f64,
            ));
        }
        for c in Components::new_with_refreshed_list().list() {
            if let Some(t) = c.temperature().filter(|t| t.is_finite()) {
                m.push((format!("host.temp.{}", name_part(c.label())), f64::from(t)));
            }
        }
        m
    }
}

/// Samples every `interval` until cancelled.
pub async fn run(interval: Duration, buffer: Buffer, token: CancellationToken) {
    let mut sampler = Some(Sampler::new());
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(mut s) = sampler.take() else {
            return;
        };
        let job = tokio::task::spawn_blocking(move || {
            let m = s.sample();
            (s, m)
        });
        match tokio::time::timeout(Duration::from_secs(10), job).await {
            Ok(Ok((s, metrics))) => {
                sampler = Some(s);
                let series = SeriesIn::snapshot(None, now_ms(), metrics);
                if let Err(e) = buffer.add_points(series).await {
                    tracing::warn!(error = %e, "Cannot buffer host metrics");
                }
            }
            _ => {
                tracing::error!(
                    "Host metric sampling hung or failed; host metrics stop until restart"
                );
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_become_metric_name_parts() {
        assert_eq!(name_part("/"), "root");
        assert_eq!(name_part("/var/log"), "var_log");
        assert_eq!(name_part("eth0"), "eth0");
    }

    #[test]
    fn a_sample_has_memory_and_uptime() {
        let m = Sampler::new().sample();
        let get = |n: &str| m.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
        assert!(get("host.mem_total_bytes").unwrap() > 0.0);
        assert!(get("host.uptime_s").unwrap() > 0.0);
        assert!(
            m.iter()
                .all(|(k, v)| crate::collect::ingest::valid_name(k) && v.is_finite()),
            "{m:?}"
        );
    }
}
