//! Device probes: TCP connect, HTTP GET with an expected status, or an exec whose output
//! becomes metrics. Each device is probed on its own interval; every probe yields
//! `probe.up` (1/0) and `probe.latency_ms`, and a change of state yields a `device.down` or
//! `device.up` event (the first probe of a device that is down also yields `device.down`).

use std::time::{Duration, Instant};

use http_body_util::Empty;
use hyper::body::Bytes;
use storefleet_protocol::message::{Event, Severity};
use storefleet_protocol::now_ms;
use tokio_util::sync::CancellationToken;

use super::ingest::valid_name;
use crate::buffer::{new_event_id, Buffer, SeriesIn};
use crate::config::{DeviceConfig, Probe};

/// What one probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Whether the device answered as expected.
    pub up: bool,
    /// Time to the answer (or to the failure).
    pub latency: Duration,
    /// Why it is down.
    pub reason: Option<String>,
    /// Extra metrics (from exec output, the HTTP status).
    pub metrics: Vec<(String, f64)>,
}

impl Outcome {
    fn down(start: Instant, reason: String) -> Outcome {
        Outcome {
            up: false,
            latency: start.elapsed(),
            reason: Some(reason),
            metrics: Vec::new(),
        }
    }
}

/// Probes once, within the device's timeout.
pub async fn probe_once(d: &DeviceConfig) -> Outcome {
    let start = Instant::now();
    let timeout = Duration::from_millis(d.timeout_ms);
    match tokio::time::timeout(timeout, run_probe(&d.probe, start)).await {
        Ok(o) => o,
        Err(_) => Outcome::down(start, format!("no answer within {} ms", d.timeout_ms)),
    }
}

async fn run_probe(p: &Probe, start: Instant) -> Outcome {
    match p {
        Probe::Tcp { address } => match tokio::net::TcpStream::connect(address).await {
            Ok(_) => Outcome {
                up: true,
                latency: start.elapsed(),
                reason: None,
                metrics: Vec::new(),
            },
            Err(e) => Outcome::down(start, format!("tcp {address}: {e}")),
        },
        Probe::Http { url, expect_status } => match http_get(url).await {
            Ok(status) => Outcome {
                up: status == *expect_status,
                latency: start.elapsed(),
                reason: (status != *expect_status)
                    .then(|| format!("GET {url}: status {status}, expected {expect_status}")),
                metrics: vec![("probe.http_status".into(), f64::from(status))],
            },
            Err(e) => Outcome::down(start, format!("GET {url}: {e}")),
        },
        Probe::Exec {
            command,
            max_output_bytes,
        } => exec(command, *max_output_bytes, start).await,
        Probe::Push => Outcome::down(start, "a push device is not probed".into()),
    }
}

async fn http_get(url: &str) -> Result<u16, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let host = uri.host().ok_or("URL has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "storefleet-agent")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string());
    driver.abort();
    Ok(resp?.status().as_u16())
}

async fn exec(command: &[String], cap: usize, start: Instant) -> Outcome {
    // The probe's own timeout drops this future, which kills the program's process group.
    let opts = crate::process::Opts {
        stderr: false,
        ..crate::process::Opts::new(std::time::Duration::from_secs(24 * 3600), cap)
    };
    let out = match crate::process::run(command, &opts).await {
        Ok(o) => o,
        Err(e) => return Outcome::down(start, format!("exec {e}")),
    };
    let metrics = parse_exec_output(&out.text);
    Outcome {
        up: out.success(),
        latency: start.elapsed(),
        reason: (!out.success()).then(|| format!("exec {}: {}", command[0], out.describe())),
        metrics,
    }
}

/// Lines `name value` become `exec.name`; other lines are ignored.
pub fn parse_exec_output(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (name, value) = (parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            let v: f64 = value.parse().ok().filter(|v: &f64| v.is_finite())?;
            let metric = format!("exec.{name}");
            valid_name(&metric).then_some((metric, v))
        })
        .collect()
}

/// Probes `d` every interval until cancelled, buffering metrics and state-change events.
pub async fn run(d: DeviceConfig, buffer: Buffer, token: CancellationToken) {
    let mut last_up: Option<bool> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(d.interval_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let o = probe_once(&d).await;
        let t = now_ms();
        let mut metrics = vec![
            ("probe.up".to_owned(), if o.up { 1.0 } else { 0.0 }),
            (
                "probe.latency_ms".to_owned(),
                o.latency.as_secs_f64() * 1000.0,
            ),
        ];
        metrics.extend(o.metrics.iter().cloned());
        if let Err(e) = buffer
            .add_points(SeriesIn::snapshot(Some(&d.id), t, metrics))
            .await
        {
            tracing::warn!(device = %d.id, error = %e, "Cannot buffer probe metrics");
        }
        let changed = match last_up {
            None => !o.up,
            Some(prev) => prev != o.up,
        };
        last_up = Some(o.up);
        if changed {
            let ev = state_event(&d, &o, t);
            tracing::info!(device = %d.id, up = o.up, reason = o.reason.as_deref().unwrap_or(""), "Device state changed");
            if let Err(e) = buffer.add_event(ev).await {
                tracing::error!(device = %d.id, error = %e, "Cannot buffer device state event");
            }
        }
    }
}

fn state_event(d: &DeviceConfig, o: &Outcome, t: i64) -> Event {
    let mut data = serde_json::Map::new();
    data.insert("class".into(), d.class.clone().into());
    data.insert("latency_ms".into(), (o.latency.as_millis() as u64).into());
    if let Some(r) = &o.reason {
        data.insert("reason".into(), r.clone().into());
    }
    Event {
        id: new_event_id(),
        ts: t,
        device: Some(d.id.clone()),
        code: if o.up { "device.up" } else { "device.down" }.into(),
        severity: if o.up {
            Severity::Info
        } else {
            Severity::Error
        },
        message: match &o.reason {
            Some(r) => format!("{} is down: {r}", d.id),
            None => format!("{} is up", d.id),
        },
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(probe: Probe) -> DeviceConfig {
        DeviceConfig {
            id: "d".into(),
            class: "test".into(),
            vendor: None,
            model: None,
            serial: None,
            firmware: None,
            interval_secs: 1,
            timeout_ms: 1000,
            probe,
        }
    }

    #[test]
    fn exec_output_lines_become_metrics() {
        let m = parse_exec_output("temp_c 4.5\nbad line here\nnan_value NaN\ndoor 1\n\n");
        assert_eq!(
            m,
            vec![("exec.temp_c".into(), 4.5), ("exec.door".into(), 1.0)]
        );
    }

    #[tokio::test]
    async fn tcp_probe_sees_a_listener_and_its_absence() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        assert!(
            probe_once(&device(Probe::Tcp {
                address: addr.clone()
            }))
            .await
            .up
        );
        drop(l);
        let o = probe_once(&device(Probe::Tcp { address: addr })).await;
        assert!(!o.up);
        assert!(o.reason.unwrap().contains("tcp"));
    }

    #[tokio::test]
    async fn exec_probe_reports_exit_status_and_metrics() {
        let o = probe_once(&device(Probe::Exec {
            command: vec!["sh".into(), "-c".into(), "echo fill_pct 42; exit 0".into()],
            max_output_bytes: 1024,
        }))
        .await;
        assert!(o.up);
        assert_eq!(o.metrics, vec![("exec.fill_pct".into(), 42.0)]);
        let o = probe_once(&device(Probe::Exec {
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
            max_output_bytes: 1024,
        }))
        .await;
        assert!(!o.up);
    }

    #[tokio::test]
    async fn http_probe_checks_the_status_against_a_real_server() {
        let app = axum::Router::new()
            .route("/ok", axum::routing::get(|| async { "fine" }))
            .route(
                "/down",
                axum::routing::get(|| async {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "no paper")
                }),
            );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        let http = |path: &str| {
            device(Probe::Http {
                url: format!("http://{addr}{path}"),
                expect_status: 200,
            })
        };
        let o = probe_once(&http("/ok")).await;
        assert!(o.up, "{o:?}");
        assert_eq!(o.metrics, vec![("probe.http_status".into(), 200.0)]);
        let o = probe_once(&http("/down")).await;
        assert!(!o.up);
        assert!(o.reason.unwrap().contains("status 503, expected 200"));
        assert_eq!(o.metrics, vec![("probe.http_status".into(), 503.0)]);
    }

    #[tokio::test]
    async fn a_hanging_exec_probe_times_out_and_is_killed() {
        let mut d = device(Probe::Exec {
            command: vec!["sleep".into(), "30".into()],
            max_output_bytes: 1024,
        });
        d.timeout_ms = 200;
        let o = probe_once(&d).await;
        assert!(!o.up);
        assert!(o.reason.unwrap().contains("no answer within 200 ms"));
    }
}
