//! Device probes: TCP connect, HTTP or HTTPS GET with an expected status (HTTPS checks the
//! device's certificate, [`super::http`]), ICMP echo, IPP, Modbus TCP and RTU, SNMP, or an
//! exec whose output becomes metrics. Each device is probed on its own interval; every
//! probe yields `probe.up` (1/0) and `probe.latency_ms`, and a change of state yields a `device.down` or
//! `device.up` event (the first probe of a device that is down also yields `device.down`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use storefleet_protocol::message::{Event, Severity};
use storefleet_protocol::now_ms;
use tokio_util::sync::CancellationToken;

use super::ingest::valid_name;
use super::inventory::{Identities, Identity};
use crate::buffer::{new_event_id, Buffer, SeriesIn};
use crate::config::{DeviceConfig, Probe, SnmpTarget};

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// Whether the device answered as expected.
    pub up: bool,
    /// Time to the answer (or to the failure).
    pub latency: Duration,
    /// Why it is down.
    pub reason: Option<String>,
    /// Extra metrics (from exec output, the HTTP status).
    pub metrics: Vec<(String, f64)>,
    /// What the device said it is (SNMP).
    pub identity: Option<Identity>,
}

impl Outcome {
    fn down(start: Instant, reason: String) -> Outcome {
        Outcome {
            up: false,
            latency: start.elapsed(),
            reason: Some(reason),
            ..Outcome::default()
        }
    }

    /// Up with the readings taken, or down with why not.
    fn read(start: Instant, readings: Result<Vec<(String, f64)>, String>) -> Outcome {
        match readings {
            Ok(metrics) => Outcome {
                up: true,
                latency: start.elapsed(),
                metrics,
                ..Outcome::default()
            },
            Err(e) => Outcome::down(start, e),
        }
    }
}

/// Probes once, within the device's timeout.
pub async fn probe_once(d: &DeviceConfig) -> Outcome {
    let start = Instant::now();
    let timeout = Duration::from_millis(d.timeout_ms);
    match tokio::time::timeout(timeout, run_probe(&d.probe, start, timeout)).await {
        Ok(o) => o,
        Err(_) => Outcome::down(start, format!("no answer within {} ms", d.timeout_ms)),
    }
}

async fn run_probe(p: &Probe, start: Instant, timeout: Duration) -> Outcome {
    match p {
        Probe::Tcp { address } => match tokio::net::TcpStream::connect(address).await {
            Ok(_) => Outcome {
                up: true,
                latency: start.elapsed(),
                ..Outcome::default()
            },
            Err(e) => Outcome::down(start, format!("tcp {address}: {e}")),
        },
        Probe::Http {
            url,
            expect_status,
            ca_file,
            tls_pin,
        } => match super::http::get_status(url, ca_file, tls_pin).await {
            Ok(status) => Outcome {
                up: status == *expect_status,
                latency: start.elapsed(),
                reason: (status != *expect_status)
                    .then(|| format!("GET {url}: status {status}, expected {expect_status}")),
                metrics: vec![("probe.http_status".into(), f64::from(status))],
                identity: None,
            },
            Err(e) => Outcome::down(start, format!("GET {url}: {e}")),
        },
        Probe::Exec {
            command,
            max_output_bytes,
        } => exec(command, *max_output_bytes, start).await,
        Probe::Ipp { url } => match super::ipp::get(url).await {
            Ok(p) => {
                let mut metrics = vec![("ipp.state".to_owned(), f64::from(p.state))];
                for (name, level) in &p.markers {
                    let name = format!("ipp.marker.{}", name.to_lowercase().replace(' ', "_"));
                    if *level >= 0 && valid_name(&name) {
                        metrics.push((name, f64::from(*level)));
                    }
                }
                let fault = p.fault();
                Outcome {
                    up: fault.is_none(),
                    latency: start.elapsed(),
                    reason: fault.map(|f| format!("IPP {url}: {f}")),
                    metrics,
                    identity: Some(p.identity()),
                }
            }
            Err(e) => Outcome::down(start, format!("IPP {url}: {e}")),
        },
        Probe::Modbus {
            address,
            unit,
            registers,
        } => Outcome::read(start, super::modbus::read(address, *unit, registers).await),
        Probe::ModbusRtu {
            port,
            baud,
            parity,
            stop_bits,
            unit,
            registers,
        } => {
            let line = super::modbus_rtu::Line {
                port: port.clone(),
                baud: *baud,
                parity: *parity,
                stop_bits: *stop_bits,
            };
            // The serial thread gives up a little before the probe's deadline, so that
            // the probe reports what the line said rather than only a timeout.
            let within = timeout.saturating_sub(Duration::from_millis(50));
            let read = super::modbus_rtu::read(line, *unit, registers.clone(), within).await;
            Outcome::read(start, read)
        }
        Probe::Icmp { host } => {
            static SEQ: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
            let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match super::icmp::ping(host, seq).await {
                Ok(rtt) => Outcome {
                    up: true,
                    latency: start.elapsed(),
                    metrics: vec![("icmp.rtt_ms".into(), rtt)],
                    ..Outcome::default()
                },
                Err(e) => Outcome::down(start, format!("ping {e}")),
            }
        }
        Probe::Snmp(t) => match snmp(t).await {
            Ok(r) => Outcome {
                up: r.up,
                latency: start.elapsed(),
                reason: r.reason.map(|why| format!("SNMP {}: {why}", t.address)),
                metrics: r.metrics,
                identity: Some(r.identity),
            },
            Err(e) => Outcome::down(start, format!("SNMP {}: {e}", t.address)),
        },
        Probe::Push => Outcome::down(start, "a push device is not probed".into()),
        Probe::Catalog => Outcome::down(start, "no probe: the catalog did not set one".into()),
    }
}

async fn snmp(t: &SnmpTarget) -> Result<super::snmp::profiles::Reading, String> {
    let mut session = super::snmp::open(t).await?;
    let values = super::snmp::profiles::ask(&mut session, t.profile).await?;
    super::snmp::profiles::read(t.profile, &values)
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
        identity: None,
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

/// Probes `d` every interval (and when `poke` is notified: a trap came) until cancelled,
/// buffering metrics and state-change events, and telling `identities` what the device
/// says it is.
pub async fn run(
    d: DeviceConfig,
    buffer: Buffer,
    identities: Arc<Identities>,
    poke: Arc<tokio::sync::Notify>,
    token: CancellationToken,
) {
    let mut last_up: Option<bool> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(d.interval_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = tick.tick() => {}
            () = poke.notified() => {}
        }
        let o = probe_once(&d).await;
        if let Some(id) = &o.identity {
            identities.set(&d.id, id.clone());
        }
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
    use std::path::Path;

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
            address: String::new(),
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
                ca_file: std::path::PathBuf::new(),
                tls_pin: String::new(),
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

    /// A private CA, and an HTTPS server answering 200 with a certificate it signed.
    mod https {
        use std::net::SocketAddr;
        use std::path::{Path, PathBuf};

        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

        pub struct Ca {
            pub issuer: Issuer<'static, KeyPair>,
            pub file: PathBuf,
        }

        pub fn ca(dir: &Path, name: &str) -> Ca {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.distinguished_name
                .push(DnType::CommonName, format!("test CA {name}"));
            let cert = p.self_signed(&key).unwrap();
            let file = dir.join(format!("{name}.pem"));
            std::fs::write(&file, cert.pem()).unwrap();
            Ca {
                issuer: Issuer::new(p, key),
                file,
            }
        }

        /// Serves HTTPS with a certificate for `names` signed by `ca`, valid from `dates`
        /// (or from now); returns its address and the certificate's file.
        pub async fn serve(
            dir: &Path,
            ca: &Ca,
            names: &[&str],
            dates: Option<(i32, i32)>,
        ) -> (SocketAddr, PathBuf) {
            let key = KeyPair::generate().unwrap();
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            let mut p = CertificateParams::new(names.clone()).unwrap();
            p.distinguished_name
                .push(DnType::CommonName, names[0].clone());
            if let Some((from, to)) = dates {
                p.not_before = rcgen::date_time_ymd(from, 1, 1);
                p.not_after = rcgen::date_time_ymd(to, 1, 1);
            }
            let cert = p.signed_by(&key, &ca.issuer).unwrap();
            let n = std::fs::read_dir(dir).unwrap().count();
            let (cf, kf) = (
                dir.join(format!("leaf{n}.pem")),
                dir.join(format!("leaf{n}.key")),
            );
            std::fs::write(&cf, cert.pem()).unwrap();
            std::fs::write(&kf, key.serialize_pem()).unwrap();
            let config = storefleet_support::tls::server_config(&cf, &kf).unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(async move {
                while let Ok((tcp, _)) = l.accept().await {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let mut buf = [0u8; 4096];
                        let _ = tls.read(&mut buf).await;
                        let _ = tls
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                            .await;
                        let _ = tls.shutdown().await;
                    });
                }
            });
            (addr, cf)
        }
    }

    /// An `https://` probe is up only when the device's certificate is for the URL's
    /// host, within its dates, and vouched for by the CA file (or its key pinned); each
    /// refusal says why, and never counts as up.
    #[tokio::test]
    async fn https_probe_checks_the_devices_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, other) = (https::ca(dir.path(), "ca"), https::ca(dir.path(), "other"));
        let probe = |url: String, ca_file: &Path, tls_pin: &str| {
            device(Probe::Http {
                url,
                expect_status: 200,
                ca_file: ca_file.to_path_buf(),
                tls_pin: tls_pin.to_owned(),
            })
        };
        let (good, cert) = https::serve(dir.path(), &ca, &["localhost"], None).await;
        let url = format!("https://localhost:{}/status", good.port());
        let o = probe_once(&probe(url.clone(), &ca.file, "")).await;
        assert!(o.up, "{o:?}");
        assert_eq!(o.metrics, vec![("probe.http_status".into(), 200.0)]);
        // Another CA, or the system's: the device is not trusted.
        for ca_file in [other.file.as_path(), Path::new("")] {
            let o = probe_once(&probe(url.clone(), ca_file, "")).await;
            assert!(!o.up);
            let why = o.reason.unwrap();
            // (A machine without CA certificates trusts nothing at all.)
            let refused = why.contains("UnknownIssuer") || why.contains("nothing to trust");
            assert!(why.contains("TLS") && refused, "{why}");
        }
        // Its key pinned: trusted whatever the CAs say.
        let pin = storefleet_support::tls::Pin::of_pem_file(&cert)
            .unwrap()
            .to_string();
        assert!(probe_once(&probe(url, &other.file, &pin)).await.up);

        // A certificate for another name, and one that expired.
        let (wrong, _) = https::serve(dir.path(), &ca, &["printer.example"], None).await;
        let (old, _) = https::serve(dir.path(), &ca, &["localhost"], Some((2020, 2021))).await;
        for (addr, want) in [(wrong, "not valid for name"), (old, "expired")] {
            let url = format!("https://localhost:{}/", addr.port());
            let o = probe_once(&probe(url, &ca.file, "")).await;
            assert!(!o.up);
            let why = o.reason.unwrap();
            assert!(why.contains(want), "{want}: {why}");
        }
    }
}
