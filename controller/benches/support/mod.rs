//! Helpers shared by the controller's benchmarks.

#[allow(dead_code)] // not every bench runs replica processes
pub mod replica;

/// A number from the environment, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

/// The config of a controller run by a bench: state in `dir`, HTTP on a free port, SQLite
/// `synchronous = normal`, and the broker: Mosquitto at `STOREFLEET_TEST_MQTT` when set,
/// else the embedded one on a free port. Returns the broker's address too.
#[allow(dead_code)] // not every bench runs a controller
pub fn controller_config(
    dir: &std::path::Path,
    name: &str,
) -> (storefleet_controller::config::Config, std::net::SocketAddr) {
    let mut config = storefleet_controller::config::Config::default();
    config.controller.state_dir = dir.join("state");
    config.http.listen = ([127, 0, 0, 1], 0).into();
    // Plain HTTP: the figures stay comparable with earlier runs.
    config.http.tls = false;
    config.database.synchronous = "normal".into();
    config.mqtt.client_id = format!("bench-{name}-{}", std::process::id());
    let broker = match std::env::var("STOREFLEET_TEST_MQTT") {
        Ok(a) => {
            config.mqtt.url = format!("mqtt://{a}");
            a.parse().expect("STOREFLEET_TEST_MQTT: host:port")
        }
        Err(_) => {
            config.mqtt.listen = ([127, 0, 0, 1], free_port()).into();
            config.mqtt.listen
        }
    };
    (config, broker)
}

/// One simulated gateway: agent id, its key, its store.
pub struct Gateway {
    /// Agent id.
    pub id: String,
    /// Its public key.
    pub key: storefleet_protocol::PublicKey,
    /// Store code.
    pub store: String,
}

/// Registers stores and their agents as enrollment does (online, seen now; the store in
/// `regions[i % len]`, with a place), and `devices` (id, class) of every store, state `ok`, as the
/// agents' inventory does.
#[allow(dead_code)] // not every bench registers a fleet
pub async fn register(
    state: &storefleet_controller::state::AppState,
    gateways: &[Gateway],
    regions: &'static [&'static str],
    devices: Vec<(&'static str, &'static str)>,
) {
    for g in gateways {
        state.registry.insert(&g.id, g.key, &g.store);
    }
    let rows: Vec<(String, String, String)> = gateways
        .iter()
        .map(|g| (g.id.clone(), g.key.to_base64(), g.store.clone()))
        .collect();
    state
        .db
        .write(move |c| {
            let now = storefleet_protocol::now_ms();
            for (i, (id, pk, store)) in rows.iter().enumerate() {
                // Spread over Germany, so that the overview draws its map and dispatch
                // weighs drives.
                let (lat, lon) = (47.5 + (i % 47) as f64 * 0.1, 6.0 + (i / 47 % 80) as f64 * 0.1);
                c.execute(
                    "INSERT INTO stores(code, name, region, timezone, trading_hours, created_at, lat, lon) VALUES (?1, ?1, ?2, 'Europe/Berlin', 'Mo-Sa 08:00-20:00', 0, ?3, ?4)",
                    storefleet_storage::args![store, regions[i % regions.len()], lat, lon],
                )?;
                c.execute(
                    "INSERT INTO agents(id, public_key, store_code, enrolled_at, agent_version, presence, presence_at, last_seen)
                     VALUES (?1, ?2, ?3, 0, '0.1.0', 'online', ?4, ?4)",
                    storefleet_storage::args![id, pk, store, now],
                )?;
                for (d, class) in &devices {
                    c.execute(
                        "INSERT INTO devices(store_code, device, agent_id, class, interval_ms, last_seen, state, state_at)
                         VALUES (?1, ?2, ?3, ?4, 10000, ?5, 'ok', ?5)",
                        storefleet_storage::args![store, *d, id, *class, now],
                    )?;
                }
            }
            Ok(())
        })
        .await
        .unwrap();
}

/// MQTT options for a bench's own client of `broker`: at the embedded broker it logs in as
/// the controller does (client id under its prefix, its secret); at an external broker as
/// is.
#[allow(dead_code)] // not every bench has its own MQTT client
pub fn bench_mqtt(
    config: &storefleet_controller::config::Config,
    broker: std::net::SocketAddr,
    suffix: &str,
) -> rumqttc::MqttOptions {
    let (id, creds) = storefleet_controller::broker_auth::controller_login(config, suffix)
        .expect("the controller's broker secret");
    let mut o = rumqttc::MqttOptions::new(id, broker.ip().to_string(), broker.port());
    if config.mqtt.url.is_empty() {
        o.set_credentials(creds.username, creds.password);
    }
    o
}

/// Mosquitto as `deploy/mosquitto.conf` sets it up for a fleet (its queue limits), on a
/// free loopback port without persistence: the machine's package, started by the bench and
/// killed when dropped. `None` without a mosquitto binary (`scripts/install-mosquitto.sh`).
#[allow(dead_code)] // not every bench starts one
pub fn fleet_mosquitto(dir: &std::path::Path) -> Option<(KillOnDrop, std::net::SocketAddr)> {
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let port = free_port();
    let conf: String = include_str!("../../../deploy/mosquitto.conf")
        .lines()
        .map(|l| match l.split_whitespace().next() {
            Some("listener") => format!("listener {port} 127.0.0.1"),
            Some("persistence") => "persistence false".to_owned(),
            Some("persistence_location") => String::new(),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, conf).ok()?;
    let child = std::process::Command::new(bin)
        .arg("-c")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Some((KillOnDrop(child), addr));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

/// A child process killed when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Opens `stores` from a format of four device lines and two checks, on days spread over
/// four weeks, as `storefleet stores open` does.
#[allow(dead_code)] // only the tickets bench opens stores
pub async fn open_stores(state: &storefleet_controller::state::AppState, stores: Vec<String>) {
    state
        .db
        .write(move |c| {
            use storefleet_controller::openings;
            let f: openings::StoreFormat = serde_json::from_value(serde_json::json!({
                "name": "standard",
                "devices": [{"class": "pos", "count": 4}, {"class": "receipt-printer"},
                            {"class": "scanner", "count": 2}, {"class": "ups"}],
                "checklist": ["Network cabled", "Staff trained"]
            }))
            .unwrap();
            openings::put_format(c, &f, "bench", 0)?;
            for (k, s) in stores.iter().enumerate() {
                let o = openings::Opening {
                    format: "standard".into(),
                    opens_on: format!("2027-01-{:02}", 1 + k % 28),
                };
                openings::set(c, s, &o, "bench", 0)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}
