//! The agent's configuration: typed structs with compiled-in defaults.
//!
//! Load order ([`load`]): compiled-in defaults, then the main file, then `agent.d/*.toml`
//! drop-ins in name order, then `STOREFLEET_*` environment variables; then [`Config::validate`].
//! Every error names the file (or variable), the key and what was expected.
//! `storefleet-agent generate-config` prints `default.toml`, which a test keeps equal to
//! [`Config::default`].

mod catalog;
mod discovery;
mod load;
mod routines;
mod serial;
mod snmp;
mod upload;
pub mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use catalog::{
    describe as describe_catalog, find as catalog_profile, Profile, SnmpSection, CATALOG,
};
pub use discovery::{DiscoverySection, Subnet, MAX_ADDRESSES as DISCOVERY_MAX_ADDRESSES};
pub use load::{load, source, ConfigError, ConfigSource, DROPIN_DIR, ENV_PREFIX};
pub use routines::{ExecCommand, RoutinesSection, StoreSection, READ_ONLY_ACTIONS};
pub use serial::{Parity, BAUDS};
pub use snmp::{
    host_port as snmp_host_port, Secret, SnmpAuth, SnmpPrivacy, SnmpProfile, SnmpTarget,
};
pub use upload::{UploadSection, UploadWhen};

/// The documented default configuration, as printed by `generate-config`.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// The whole agent configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Who this agent is and where it keeps its state.
    pub agent: AgentSection,
    /// How to reach and trust the controller.
    pub controller: ControllerSection,
    /// Upload behaviour.
    pub sync: SyncSection,
    /// The local buffer.
    pub buffer: BufferSection,
    /// The local ingest endpoint for store applications.
    pub ingest: IngestSection,
    /// Gateway host metrics.
    pub host: HostSection,
    /// Inventory reports.
    pub inventory: InventorySection,
    /// The store's trading hours and time zone.
    pub store: StoreSection,
    /// Maintenance routines and what they may do.
    pub routines: RoutinesSection,
    /// Self-update.
    pub update: UpdateSection,
    /// When data leaves the gateway, and how fast.
    pub upload: UploadSection,
    /// Credentials of the SNMP devices set up from the catalog.
    pub snmp: SnmpSection,
    /// Which subnets may be swept for devices.
    pub discovery: DiscoverySection,
    /// Devices to probe.
    pub devices: Vec<DeviceConfig>,
}

/// `[update]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateSection {
    /// The release key (Ed25519 public, base64) updates must be signed with; enrollment
    /// fills it in from the controller. Empty: updates are refused.
    pub release_key: String,
    /// Largest release accepted, bytes.
    pub max_bytes: u64,
}

impl Default for UpdateSection {
    fn default() -> Self {
        UpdateSection {
            release_key: String::new(),
            max_bytes: 100 * 1024 * 1024,
        }
    }
}

/// `[agent]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSection {
    /// Agent id; empty means derived from the agent's public key (`a-` + 16 hex digits).
    pub id: String,
    /// Store code this gateway belongs to, e.g. `S123`.
    pub store: String,
    /// Directory for the key pair and the buffer database.
    pub state_dir: PathBuf,
    /// How often the agent reports its own health as telemetry, in seconds (0: never).
    pub health_interval_secs: u64,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection {
            id: String::new(),
            store: String::new(),
            state_dir: PathBuf::from("/var/lib/storefleet"),
            health_interval_secs: 60,
        }
    }
}

/// `[controller]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControllerSection {
    /// Broker URL: `mqtt://host:port` or `mqtts://host:port` (TLS).
    pub mqtt_url: String,
    /// The controller's Ed25519 public key (base64). Empty: every command is refused.
    pub public_key: String,
    /// The controller's TLS key, pinned (`sha256//BASE64` of its SubjectPublicKeyInfo),
    /// written by `enroll` from the token: a broker or API whose certificate carries this
    /// key is trusted, self-signed or not.
    pub tls_pin: String,
    /// PEM file of CA certificates to trust for `mqtts://` and `https://`; empty: the
    /// system's CA certificates.
    pub ca_file: PathBuf,
    /// PEM client certificate for mutual TLS (optional).
    pub client_cert_file: PathBuf,
    /// PEM private key for the client certificate (optional).
    pub client_key_file: PathBuf,
    /// MQTT keep-alive, seconds.
    pub keep_alive_secs: u64,
    /// The password at an external broker that checks passwords (Mosquitto), written by
    /// `enroll` when the controller gives one. Empty: a fresh token signed with the agent's
    /// key for every connection (what the controller's embedded broker checks).
    pub mqtt_password: String,
    /// Sections the controller may change with a signed config task (`devices`, `host`,
    /// `inventory`, `store`); empty: none.
    pub remote_config: Vec<String>,
}

impl Default for ControllerSection {
    fn default() -> Self {
        ControllerSection {
            mqtt_url: "mqtt://127.0.0.1:1883".into(),
            public_key: String::new(),
            tls_pin: String::new(),
            ca_file: PathBuf::new(),
            client_cert_file: PathBuf::new(),
            client_key_file: PathBuf::new(),
            keep_alive_secs: 30,
            mqtt_password: String::new(),
            remote_config: Vec::new(),
        }
    }
}

/// `[sync]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSection {
    /// Messages published and not yet acknowledged by the broker, at most.
    pub inflight: u16,
    /// Points in one telemetry message, at most.
    pub max_batch_points: usize,
    /// Bytes in one message, at most (the envelope JSON).
    pub max_batch_bytes: usize,
    /// First reconnect delay, milliseconds.
    pub backoff_min_ms: u64,
    /// Longest reconnect delay, milliseconds: a store is back at most this long after its
    /// broker (plus the backlog's delivery).
    pub backoff_max_ms: u64,
    /// Send telemetry batches and inventories compressed (zlib, frame version 2).
    pub compress: bool,
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            inflight: 32,
            max_batch_points: 2000,
            max_batch_bytes: 256 * 1024,
            backoff_min_ms: 500,
            backoff_max_ms: 5_000,
            compress: true,
        }
    }
}

/// `[buffer]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BufferSection {
    /// Disk quota for the whole buffer (database and its write-ahead log), bytes.
    pub max_bytes: u64,
    /// Share of the quota that events and command results may use, bytes. When it is full,
    /// new events are refused (HTTP 503), never dropped.
    pub events_max_bytes: u64,
    /// `full`: every acknowledged write is on disk before the answer (survives a power cut).
    /// `normal`: survives a crash of the agent, but a power cut loses every write since the
    /// last checkpoint (up to 8 MiB of WAL: acknowledged points and events, and
    /// acknowledgements, whose messages are then sent again). Sequence numbers never go
    /// back in either mode.
    pub durability: Durability,
}

impl Default for BufferSection {
    fn default() -> Self {
        BufferSection {
            max_bytes: 256 * 1024 * 1024,
            events_max_bytes: 32 * 1024 * 1024,
            durability: Durability::Full,
        }
    }
}

/// How hard the buffer syncs to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync on every commit.
    Full,
    /// fsync at checkpoints only.
    Normal,
}

/// `[ingest]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSection {
    /// Serve the local ingest and health endpoint.
    pub enabled: bool,
    /// Loopback address to listen on.
    pub listen: SocketAddr,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9181)),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// `[host]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostSection {
    /// Seconds between host metric samples (0: off).
    pub interval_secs: u64,
}

impl Default for HostSection {
    fn default() -> Self {
        HostSection { interval_secs: 30 }
    }
}

/// `[inventory]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InventorySection {
    /// Seconds between inventory checks; a report is sent only when something changed.
    pub interval_secs: u64,
    /// Values that replace what the gateway reports about itself.
    pub gateway: GatewayOverride,
}

impl Default for InventorySection {
    fn default() -> Self {
        InventorySection {
            interval_secs: 3600,
            gateway: GatewayOverride::default(),
        }
    }
}

/// `[inventory.gateway]`: what the hardware does not report correctly, such as a serial
/// number from the asset label when the firmware's is empty. Empty values are not used.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayOverride {
    /// Host name.
    pub hostname: String,
    /// Serial number.
    pub serial: String,
    /// Vendor.
    pub vendor: String,
    /// Model (product name).
    pub model: String,
    /// Firmware (BIOS) version.
    pub firmware: String,
    /// MAC addresses to report instead of the detected interfaces' (empty: detected).
    pub macs: Vec<String>,
}

/// One `[[devices]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Device id, unique on this gateway.
    pub id: String,
    /// Device class, e.g. `receipt-printer`.
    pub class: String,
    /// Vendor (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Model (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Serial (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Firmware version (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// Seconds between probes (for `push` devices: between the readings they push).
    #[serde(default = "default_probe_interval")]
    pub interval_secs: u64,
    /// Probe timeout, milliseconds.
    #[serde(default = "default_probe_timeout")]
    pub timeout_ms: u64,
    /// Its address, for a class of the device catalog (which then sets the probe).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// How to probe it (set from the catalog when only `class` and `address` are given).
    #[serde(default)]
    pub probe: Probe,
}

fn default_probe_interval() -> u64 {
    10
}

fn default_probe_timeout() -> u64 {
    2000
}

/// A device probe.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Probe {
    /// TCP connect to `address` (`host:port`).
    Tcp {
        /// `host:port`.
        address: String,
    },
    /// HTTP GET of `url` (`http://` or `https://`); up when the status is `expect_status`.
    /// Over `https://` the device's certificate must be valid for the URL's host, within
    /// its dates, and vouched for by a CA of `ca_file` (or the system's), unless its key is
    /// the one pinned by `tls_pin`.
    Http {
        /// The URL.
        url: String,
        /// Expected status code.
        #[serde(default = "default_expect_status")]
        expect_status: u16,
        /// `https://` only: PEM file of the CAs to trust (a store's devices often carry
        /// certificates of a private CA); empty: the system's CAs.
        #[serde(default, skip_serializing_if = "is_empty_path")]
        ca_file: PathBuf,
        /// `https://` only: `sha256//BASE64` of the device's public key, trusted whatever
        /// the CAs say (a device with a self-signed certificate).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        tls_pin: String,
    },
    /// ICMP echo to `host` (an address or a name), for a device with no service to ask;
    /// up when it answers. Yields `icmp.rtt_ms`.
    Icmp {
        /// Address or name.
        host: String,
    },
    /// IPP `Get-Printer-Attributes` of `url` (`ipp://host[:631]/printers/NAME` of a CUPS
    /// queue, or `ipp://printer/ipp/print`); down when the printer is stopped or reports a
    /// fault (`media-jam`, `door-open`, any `-error` reason). Yields `ipp.state` and each
    /// supply's level as `ipp.marker.NAME` (percent).
    Ipp {
        /// The printer's URI.
        url: String,
    },
    /// Modbus TCP: reads `registers` of `unit` at `address` (`host:port`, usually port
    /// 502); up when every register answers. Each register becomes the metric of its
    /// name.
    Modbus {
        /// `host:port`.
        address: String,
        /// Unit (slave) id; 1 for most devices, the device's id behind a gateway.
        #[serde(default = "default_modbus_unit")]
        unit: u8,
        /// The device's register map.
        registers: Vec<Register>,
    },
    /// Modbus RTU on the gateway's serial line (RS-485 or RS-232) at `port`: reads
    /// `registers` of `unit`, as `modbus` does over TCP. The devices of one line are asked
    /// one at a time. The packaged service sees no serial port until a drop-in lets it
    /// (see the packaging README).
    #[serde(rename = "modbus_rtu")]
    ModbusRtu {
        /// The serial port, e.g. `/dev/ttyUSB0`.
        port: PathBuf,
        /// Bits a second.
        #[serde(default = "serial::default_baud")]
        baud: u32,
        /// Parity.
        #[serde(default)]
        parity: Parity,
        /// Stop bits, 1 or 2.
        #[serde(default = "serial::default_stop_bits")]
        stop_bits: u8,
        /// Unit (slave) id on the line.
        #[serde(default = "default_modbus_unit")]
        unit: u8,
        /// The device's register map.
        registers: Vec<Register>,
    },
    /// SNMP v2c or v3 (authPriv): reads what the device's `profile` says (a printer's
    /// state, faults and supplies; a UPS's power; a switch's ports) and the device's own
    /// identity (model, serial, firmware) for the asset records.
    Snmp(SnmpTarget),
    /// No probe: the device, or a store application on its behalf, pushes its readings and
    /// events to the ingest endpoint.
    Push,
    /// Not given: the device catalog sets it from the class and address at load.
    #[serde(skip)]
    #[default]
    Catalog,
    /// Runs `command` (argv, no shell); up when it exits 0. Each stdout line `name value`
    /// becomes the metric `exec.name`.
    Exec {
        /// Program and arguments.
        command: Vec<String>,
        /// Largest stdout read, bytes.
        #[serde(default = "default_exec_output_cap")]
        max_output_bytes: usize,
    },
}

/// One register of a Modbus device's map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// Metric name, as the controller's rules name metrics (`temp_c`).
    pub name: String,
    /// `holding` (function 3) or `input` (function 4).
    #[serde(default)]
    pub kind: RegisterKind,
    /// The register's address (0-based, as on the wire).
    pub address: u16,
    /// How its words read.
    #[serde(rename = "type", default)]
    pub r#type: RegisterType,
    /// The value is multiplied by this (`0.1` for tenths of a degree).
    #[serde(default = "default_scale")]
    pub scale: f64,
    /// The unit, for people (`C`, `kWh`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    /// 32-bit values: the low word comes first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub swap_words: bool,
}

/// Which table a register is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegisterKind {
    /// Holding registers (function 3).
    #[default]
    Holding,
    /// Input registers (function 4).
    Input,
}

/// How a register's words read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegisterType {
    /// One word, unsigned.
    #[default]
    U16,
    /// One word, signed.
    I16,
    /// Two words, unsigned.
    U32,
    /// Two words, signed.
    I32,
    /// Two words, IEEE 754 single precision.
    F32,
}

fn default_modbus_unit() -> u8 {
    1
}

fn default_scale() -> f64 {
    1.0
}

fn is_empty_path(p: &Path) -> bool {
    p.as_os_str().is_empty()
}

fn default_expect_status() -> u16 {
    200
}

fn default_exec_output_cap() -> usize {
    64 * 1024
}

impl Probe {
    /// The address shown in inventory.
    pub fn address(&self) -> Option<String> {
        match self {
            Probe::Tcp { address } | Probe::Modbus { address, .. } => Some(address.clone()),
            Probe::ModbusRtu { port, unit, .. } => Some(format!("{} unit {unit}", port.display())),
            Probe::Http { url, .. } | Probe::Ipp { url } => Some(url.clone()),
            Probe::Icmp { host } => Some(host.clone()),
            Probe::Snmp(t) => Some(t.address.clone()),
            Probe::Exec { .. } | Probe::Push | Probe::Catalog => None,
        }
    }
}

impl Config {
    /// Path of the buffer database.
    pub fn buffer_path(&self) -> PathBuf {
        self.agent.state_dir.join("buffer.db")
    }

    /// Path of the agent's private key.
    pub fn key_path(&self) -> PathBuf {
        self.agent.state_dir.join("agent.key")
    }
}
