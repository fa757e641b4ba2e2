//! The simulated fleet: N stores, each a real agent (the agent library, in this process)
//! with a plausible set of devices whose readings and faults are pushed to the agent's
//! loopback ingest endpoint, exactly as store software would; in the demo the UPSes and
//! receipt printers answer SNMP ([`snmp`]) and the fridge controllers Modbus TCP
//! ([`modbus`]), read by the agents' real probes. Stores are created and
//! agents enrolled through the controller's HTTP API with a token, like real gateways.
//!
//! Printer faults are a mix: jams the agent's routine heals ([`printer`]) and broken
//! hardware that becomes a ticket; a simulated field team ([`field`]) works its tickets,
//! so the service KPIs move.

pub mod behaviour;
pub mod field;
pub mod modbus;
pub mod openings;
pub mod printer;
pub mod profile;
pub mod snmp;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng as _;
use serde_json::json;
use storefleet_protocol::now_ms;
use storefleet_support::http::{self, Request};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use behaviour::DeviceSim;
use profile::SimDevice;
use storefleet_controller::cli::CliError;
use storefleet_controller::client::Client;

/// How to run the simulated fleet.
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of stores.
    pub stores: usize,
    /// Where each agent keeps its state (a directory per store).
    pub dir: PathBuf,
    /// The controller's API.
    pub client: Client,
    /// How long a printer is down before its routine runs. The demo's 90 s is after the
    /// built-in 60 s rule has fired, so that the alert is seen waiting for its self-heal.
    pub heal_after_secs: u64,
    /// Devices develop faults at random (the demo); tests turn it off and make their own.
    pub random_faults: bool,
    /// The UPSes answer SNMP and the fridge controllers Modbus TCP, and the agents poll
    /// them (the demo), instead of being handed their readings through the ingest endpoint.
    pub device_protocols: bool,
}

impl Options {
    /// `stores` stores in `dir` against `client`, with the demo's timings.
    pub fn new(stores: usize, dir: PathBuf, client: Client) -> Options {
        Options {
            stores,
            dir,
            client,
            heal_after_secs: 90,
            random_faults: true,
            device_protocols: false,
        }
    }
}

/// Why the fleet could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The controller refused or could not be reached.
    #[error("store {store}: {source}")]
    Api {
        /// Store code.
        store: String,
        /// Why.
        source: CliError,
    },
    /// An agent could not be set up.
    #[error("store {store}: {message}")]
    Agent {
        /// Store code.
        store: String,
        /// Why.
        message: String,
    },
}

/// A free loopback port below the kernel's ephemeral range, so that the many outgoing
/// connections of a large simulated fleet cannot take it before its agent listens on it.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        })
        .unwrap_or(32768);
    let base = 10_000u16.min(low.saturating_sub(1));
    let span = low.saturating_sub(base).max(1);
    let _ = NEXT.compare_exchange(
        0,
        (std::process::id() % u32::from(span)) as u16,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..span {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    0
}

fn agent_config(
    n: usize,
    dir: &std::path::Path,
    ingest: SocketAddr,
    devices: &[SimDevice],
    ports: Option<Ports>,
) -> String {
    let (host, serial, mac) = profile::gateway(n);
    let mut s = format!(
        "# Simulated gateway of store {n}.\n[agent]\nstate_dir = {dir:?}\nhealth_interval_secs = 60\n\n\
         [buffer]\nmax_bytes = 8388608\nevents_max_bytes = 1048576\ndurability = \"normal\"\n\n\
         [ingest]\nlisten = \"{ingest}\"\n\n[host]\ninterval_secs = 0\n\n\
         [upload]\n# A demo wants its charts live: readings wait 1 s for company, not 5.\ntelemetry_delay_secs = 1\n\n\
         [inventory]\ninterval_secs = 3600\n\n[inventory.gateway]\nhostname = \"{host}\"\nserial = \"{serial}\"\n\
         vendor = \"Advantech\"\nmodel = \"UTX-3117\"\nfirmware = \"1.0.7\"\nmacs = [\"{mac}\"]\n",
        dir = dir.display().to_string(),
    );
    if devices.iter().any(|d| d.class == "receipt-printer") {
        s.push_str(&printer::agent_config(dir));
    }
    for d in devices {
        let probe = match (ports, d.class) {
            (Some(p), "ups") => format!(
                "{{ type = \"snmp\", address = \"127.0.0.1:{}\", profile = \"ups\", community = \"{}\" }}",
                p.snmp,
                community(n, &d.id)
            ),
            (Some(p), "receipt-printer") => format!(
                "{{ type = \"snmp\", address = \"127.0.0.1:{}\", profile = \"printer\", community = \"{}\" }}",
                p.snmp,
                community(n, &d.id)
            ),
            (Some(p), "fridge-sensor") => modbus::fridge_probe(n, p.modbus),
            _ => "{ type = \"push\" }".to_owned(),
        };
        let _ = write!(
            s,
            "\n[[devices]]\nid = \"{}\"\nclass = \"{}\"\nvendor = \"{}\"\nmodel = \"{}\"\nserial = \"{}\"\nfirmware = \"{}\"\ninterval_secs = {}\nprobe = {probe}\n",
            d.id, d.class, d.vendor, d.model, d.serial, d.firmware, d.interval_secs
        );
    }
    s
}

/// Where the simulated devices answer their protocols.
#[derive(Debug, Clone, Copy)]
struct Ports {
    snmp: u16,
    modbus: u16,
}

/// The simulated devices' responders, and what they answer.
#[derive(Clone, Default)]
struct Responders {
    snmp: snmp::Agents,
    modbus: modbus::Registers,
}

/// Starts the responders on `tracker`.
async fn responders(
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> Result<(Ports, Responders), SimError> {
    let err = |what: &str, e: std::io::Error| SimError::Agent {
        store: "-".into(),
        message: format!("{what} responder: {e}"),
    };
    let r = Responders::default();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| err("SNMP", e))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| err("Modbus", e))?;
    let ports = Ports {
        snmp: socket.local_addr().map_or(0, |a| a.port()),
        modbus: listener.local_addr().map_or(0, |a| a.port()),
    };
    tracker.spawn(snmp::serve(socket, r.snmp.clone(), token.clone()));
    tracker.spawn(modbus::serve(listener, r.modbus.clone(), token.clone()));
    Ok((ports, r))
}

/// Who a simulated device says it is over SNMP.
fn identity(d: &SimDevice) -> snmp::Identity<'_> {
    snmp::Identity {
        vendor: d.vendor,
        model: d.model,
        serial: &d.serial,
        firmware: &d.firmware,
    }
}

/// The SNMP community of store `n`'s device `id` at the simulated agents' responder.
fn community(n: usize, id: &str) -> String {
    format!("{}-{id}", profile::store(n).code)
}

/// Tries `step` up to 5 times while it fails on the way (`transient`), waiting 1, 2, 4, 8 s
/// between tries; an answer (an HTTP status) is final. A loaded controller may drop a
/// connection (a TLS handshake or headers past their timeout); an operator's script would
/// try again, and so does the simulator.
async fn retried<T, E, F, Fut>(mut step: F, transient: impl Fn(&E) -> bool) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut wait = Duration::from_secs(1);
    for _ in 1..5 {
        match step().await {
            Err(e) if transient(&e) => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            done => return done,
        }
    }
    step().await
}

/// Sets up store `n` (record, token, enrollment) and returns its agent's config path and
/// ingest address.
async fn prepare(
    n: usize,
    opts: &Options,
    ports: Option<Ports>,
) -> Result<(PathBuf, SocketAddr), SimError> {
    let store = profile::store(n);
    let code = store.code.clone();
    let api = |source| SimError::Api {
        store: code.clone(),
        source,
    };
    let body = serde_json::to_value(&store).unwrap_or_default();
    let path = format!("/api/v1/stores/{code}");
    retried(
        || opts.client.call("PUT", &path, Some(&body)),
        |e| matches!(e, CliError::Http(_)),
    )
    .await
    .map_err(api)?;
    let dir = opts.dir.join(&code);
    let config_path = dir.join("agent.toml");
    let ingest: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let devices = profile::devices(n);
    let agent_err = |message: String| SimError::Agent {
        store: code.clone(),
        message,
    };
    std::fs::create_dir_all(&dir).map_err(|e| agent_err(e.to_string()))?;
    std::fs::write(&config_path, agent_config(n, &dir, ingest, &devices, ports))
        .map_err(|e| agent_err(e.to_string()))?;
    let up = if ports.is_some() { "probe.up" } else { "up" };
    printer::install_routine(&dir, opts.heal_after_secs, up)
        .map_err(|e| agent_err(e.to_string()))?;
    let source = storefleet_agent::config::source(&config_path);
    let dropin = source
        .dropin_dir
        .clone()
        .unwrap_or_else(|| dir.join("agent.d"));
    if !dropin.join(storefleet_agent::enroll::DROPIN_NAME).exists() {
        let config =
            storefleet_agent::config::load(&source).map_err(|e| agent_err(e.to_string()))?;
        // A new single-use token for each try: one lost on the way may have been used.
        let enroll = || async {
            let v = opts
                .client
                .call(
                    "POST",
                    "/api/v1/enroll-tokens",
                    Some(&json!({"store": code, "note": "simulated gateway"})),
                )
                .await
                .map_err(|e| (matches!(e, CliError::Http(_)), api(e)))?;
            let token = v["token"].as_str().unwrap_or_default().to_owned();
            storefleet_agent::enroll::enroll(&token, &config, &dropin)
                .await
                .map_err(|e| {
                    let transient = matches!(e, storefleet_agent::enroll::EnrollError::Http { .. });
                    (transient, agent_err(e.to_string()))
                })
        };
        retried(enroll, |(transient, _)| *transient)
            .await
            .map_err(|(_, e)| e)?;
    }
    Ok((config_path, ingest))
}

/// Starts the fleet on `tracker`; returns once every store is enrolled and its agent started.
pub async fn start(
    opts: Options,
    token: CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), SimError> {
    let (ports, devices) = if opts.device_protocols {
        let (p, r) = responders(tracker, &token).await?;
        // Each device answers from the start, before its simulation's first step.
        for n in 1..=opts.stores {
            for d in profile::devices(n) {
                match d.class {
                    "ups" => r.snmp.set(
                        &community(n, &d.id),
                        snmp::ups_objects(d.vendor, d.model, &d.firmware, &[]),
                    ),
                    "receipt-printer" => r.snmp.set(
                        &community(n, &d.id),
                        snmp::printer_objects(identity(&d), &[], None),
                    ),
                    "fridge-sensor" => r.modbus.set_fridge(n, 3.5),
                    _ => {}
                }
            }
        }
        (Some(p), Some(r))
    } else {
        (None, None)
    };
    let gate = Arc::new(Semaphore::new(16));
    let mut setups = Vec::new();
    for n in 1..=opts.stores {
        let (opts, gate) = (opts.clone(), gate.clone());
        setups.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            prepare(n, &opts, ports).await
        }));
    }
    for (i, h) in setups.into_iter().enumerate() {
        let n = i + 1;
        let (config_path, ingest) = h.await.map_err(|e| SimError::Agent {
            store: format!("S{n:04}"),
            message: e.to_string(),
        })??;
        let t = token.clone();
        tracker.spawn(async move {
            if let Err(e) =
                storefleet_agent::run(storefleet_agent::config::source(&config_path), t).await
            {
                tracing::error!(store = n, error = %e, "Simulated agent stopped");
            }
        });
        let dir = opts.dir.join(profile::store(n).code);
        tracker.spawn(drive(
            n,
            dir,
            ingest,
            opts.random_faults,
            devices.clone(),
            token.clone(),
        ));
    }
    field::start(&opts, token, tracker).await?;
    openings::start(&opts).await?;
    Ok(())
}

/// Feeds store `n`'s devices into its agent until cancelled.
async fn drive(
    n: usize,
    dir: PathBuf,
    ingest: SocketAddr,
    random_faults: bool,
    responders: Option<Responders>,
    token: CancellationToken,
) {
    let printer = printer::Markers::new(&dir);
    let devices = profile::devices(n);
    let mut sims: Vec<(SimDevice, DeviceSim, i64)> = devices
        .into_iter()
        .map(|d| {
            let sim = DeviceSim::new(d.class, &d.id);
            let sim = if random_faults {
                sim
            } else {
                sim.without_random_faults()
            };
            (d, sim, 0)
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64 ^ 0x5eed);
    // Spread the stores over the first tick so they do not all post at once.
    let offset = Duration::from_millis((n as u64 * 7919) % 10_000);
    tokio::select! { () = token.cancelled() => return, () = tokio::time::sleep(offset) => {} }
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let url_t = format!("http://{ingest}/v1/telemetry");
    let url_e = format!("http://{ingest}/v1/events");
    loop {
        tokio::select! { () = token.cancelled() => return, _ = tick.tick() => {} }
        let now = now_ms();
        let hour = ((now / 3_600_000 + 1) % 24) as u32;
        let mut series = Vec::new();
        let mut events = Vec::new();
        for (d, sim, next) in &mut sims {
            if now < *next {
                continue;
            }
            *next = now + (d.interval_secs as i64) * 1000;
            let step = if d.class == "receipt-printer" {
                printer.step(sim, now, |sim| sim.step(now, hour, &mut rng))
            } else {
                sim.step(now, hour, &mut rng)
            };
            // Read by the agent over SNMP or Modbus, not handed over.
            let answered = match (&responders, d.class) {
                (Some(r), "ups") => {
                    let objects = snmp::ups_objects(d.vendor, d.model, &d.firmware, &step.readings);
                    r.snmp.set(&community(n, &d.id), objects);
                    true
                }
                (Some(r), "receipt-printer") => {
                    let objects =
                        snmp::printer_objects(identity(d), &step.readings, printer.state());
                    r.snmp.set(&community(n, &d.id), objects);
                    true
                }
                (Some(r), "fridge-sensor") => {
                    if let Some((_, t)) = step.readings.iter().find(|(m, _)| *m == "temp_c") {
                        r.modbus.set_fridge(n, *t);
                    }
                    true
                }
                _ => false,
            };
            for (metric, v) in step.readings.iter().filter(|_| !answered) {
                series.push(
                    json!({"device": d.id, "metric": metric, "points": [{"t": now, "v": *v}]}),
                );
            }
            // A probed device's own probe says when it goes down and comes back.
            let probed = answered && matches!(d.class, "receipt-printer");
            for (code, severity, message) in step
                .events
                .into_iter()
                .filter(|e| !(probed && matches!(e.0, "device.down" | "device.up")))
            {
                events.push(json!({"device": d.id, "code": code, "severity": severity, "message": message, "data": {"class": d.class}}));
            }
        }
        if !series.is_empty() {
            post(&url_t, &json!({ "series": series })).await;
        }
        if !events.is_empty() {
            post(&url_e, &serde_json::Value::Array(events)).await;
        }
    }
}

async fn post(url: &str, body: &serde_json::Value) {
    let r = http::send(
        Request {
            method: "POST",
            url,
            headers: Vec::new(),
            body: Some(("application/json", body.to_string().into_bytes())),
        },
        Duration::from_secs(10),
    )
    .await;
    match r {
        Ok(r) if r.status < 300 => {}
        Ok(r) => {
            tracing::debug!(url, status = r.status, body = %r.text(), "Simulated device reading refused");
        }
        Err(e) => tracing::debug!(url, error = %e, "Simulated device cannot reach its agent"),
    }
}
