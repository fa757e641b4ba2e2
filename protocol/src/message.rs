//! Message bodies: what each `kind` of envelope carries.
//!
//! Every body is plain serde data. A changed body changes both the agent and the controller,
//! because both compile against these types. Unknown JSON fields are ignored on decode so
//! that a newer sender can add optional fields without breaking older receivers.

use serde::{Deserialize, Serialize};

use crate::routine::RunRecord;

/// The kind of a message; it is both the last topic level and the envelope's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Agent presence (retained; the last will says offline).
    Presence,
    /// A batch of telemetry points.
    Telemetry,
    /// One event (state change, alarm, notice).
    Event,
    /// The agent's inventory of its gateway and devices.
    Inventory,
    /// A command from the controller.
    Command,
    /// The agent's answer to a command.
    CommandResult,
    /// The record of one routine run.
    RoutineRun,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 7] = [
        Kind::Presence,
        Kind::Telemetry,
        Kind::Event,
        Kind::Inventory,
        Kind::Command,
        Kind::CommandResult,
        Kind::RoutineRun,
    ];

    /// The wire name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Presence => "presence",
            Kind::Telemetry => "telemetry",
            Kind::Event => "event",
            Kind::Inventory => "inventory",
            Kind::Command => "command",
            Kind::CommandResult => "command-result",
            Kind::RoutineRun => "routine-run",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A message body with its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// See [`Presence`].
    Presence(Presence),
    /// See [`TelemetryBatch`].
    Telemetry(TelemetryBatch),
    /// See [`Event`].
    Event(Event),
    /// See [`Inventory`] (boxed: it is much larger than the other bodies).
    Inventory(Box<Inventory>),
    /// See [`Command`].
    Command(Command),
    /// See [`CommandResult`].
    CommandResult(CommandResult),
    /// See [`RunRecord`] (boxed: it carries step outputs).
    RoutineRun(Box<RunRecord>),
}

impl Message {
    /// The kind of this message.
    pub fn kind(&self) -> Kind {
        match self {
            Message::Presence(_) => Kind::Presence,
            Message::Telemetry(_) => Kind::Telemetry,
            Message::Event(_) => Kind::Event,
            Message::Inventory(_) => Kind::Inventory,
            Message::Command(_) => Kind::Command,
            Message::CommandResult(_) => Kind::CommandResult,
            Message::RoutineRun(_) => Kind::RoutineRun,
        }
    }
}

/// Whether the agent is online.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceState {
    /// Connected and working.
    Online,
    /// Gone: said by the last will or by a clean shutdown.
    Offline,
}

/// Presence, sent retained at connect (the hello) and as the last will.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    /// Online or offline.
    pub state: PresenceState,
    /// The agent's version string.
    pub agent_version: String,
    /// When the agent process started, ms since the epoch.
    pub started_at: i64,
    /// Why the agent went offline, when it says so itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A batch of telemetry points grouped by series.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TelemetryBatch {
    /// True when the points were buffered during an outage and are sent after live data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backlog: bool,
    /// The series in this batch.
    pub series: Vec<Series>,
}

impl TelemetryBatch {
    /// Number of points in the batch.
    pub fn point_count(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum()
    }
}

/// The points of one series (a device and a metric name), in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The device the metric belongs to; absent for the gateway itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Metric name, e.g. `cpu.usage_pct` or `probe.latency_ms`.
    pub metric: String,
    /// Points, oldest first.
    pub points: Vec<Point>,
}

/// One telemetry point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Timestamp, ms since the epoch.
    pub t: i64,
    /// Value; the mean for an aggregate.
    pub v: f64,
    /// Present when the buffer downsampled raw points into this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agg: Option<Aggregate>,
}

/// What a downsampled point stands for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// Bucket width in seconds; the point's `t` is the bucket start.
    pub res: u32,
    /// Number of raw points folded into this one.
    pub n: u32,
    /// Smallest value in the bucket.
    pub min: f64,
    /// Largest value in the bucket.
    pub max: f64,
}

/// How serious an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record.
    Info,
    /// Worth a look.
    Warning,
    /// Something is broken.
    Error,
    /// Something is broken and the store feels it.
    Critical,
}

/// One event: a state change, an alarm, a notice from a store application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id given by the agent (stable across retransmissions).
    pub id: String,
    /// When it happened, ms since the epoch.
    pub ts: i64,
    /// The device it is about; absent for the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Dotted code, e.g. `device.down`, `buffer.corrupt`, `app.pos.crash`.
    pub code: String,
    /// Severity.
    pub severity: Severity,
    /// One line for people.
    #[serde(default)]
    pub message: String,
    /// Structured details.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// The agent's inventory: its gateway and its configured devices. Sent at start and on change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Inventory {
    /// The gateway machine.
    pub gateway: Gateway,
    /// The devices the agent is configured to watch.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// What the agent's last sweep of the store's subnets found that is not among
    /// `devices`; absent when the agent has not swept (the controller then keeps what it
    /// had), empty when a sweep found nothing new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovered: Option<Discovered>,
}

/// The findings of a sweep of the store's subnets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Discovered {
    /// When the sweep ended, Unix milliseconds.
    pub at_ms: i64,
    /// The subnets swept, as `192.168.1.0/24`.
    pub subnets: Vec<String>,
    /// The devices that answered and are not configured, at most 1,024.
    pub devices: Vec<Found>,
}

/// A device that answered a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Found {
    /// Its IPv4 address.
    pub address: String,
    /// The protocols it answered: `snmp`, `ipp`, `modbus`.
    pub protocols: Vec<String>,
    /// What it seems to be, as a device class (`ups`, `printer`, `switch`, `router`,
    /// `modbus-device`, `snmp-device`).
    pub class: String,
    /// Maker, when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Model, when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Serial number, when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Firmware, when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// The IPP URL it answered at, when it speaks IPP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipp_url: Option<String>,
    /// Its own description (`sysDescr`, IPP `printer-make-and-model`), at most 200
    /// characters.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// The gateway machine as the agent sees it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Gateway {
    /// Host name.
    pub hostname: String,
    /// OS name, e.g. `Debian GNU/Linux`.
    pub os: String,
    /// OS version, e.g. `12`.
    pub os_version: String,
    /// Kernel version.
    pub kernel: String,
    /// CPU architecture, e.g. `x86_64`, `aarch64`.
    pub arch: String,
    /// CPU model string.
    pub cpu_model: String,
    /// Logical CPU count.
    pub cpu_count: u32,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// Mounted disks.
    #[serde(default)]
    pub disks: Vec<Disk>,
    /// Network interfaces with a MAC address.
    #[serde(default)]
    pub nics: Vec<Nic>,
    /// DMI serial number, where readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// DMI vendor, where readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// DMI product name, where readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Firmware (BIOS) version, where readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// The agent version.
    pub agent_version: String,
}

/// A mounted disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    /// Mount point.
    pub mount: String,
    /// File system type.
    pub fs: String,
    /// Size in bytes.
    pub total_bytes: u64,
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    /// Interface name.
    pub name: String,
    /// MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
}

/// A device the agent watches, as configured on the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Device {
    /// Device id, unique within the store.
    pub id: String,
    /// Device class, e.g. `receipt-printer`, `pos`, `ups`.
    pub class: String,
    /// Vendor, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Model, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Serial number, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Firmware version, when configured or reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// Network address the agent probes, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Seconds between the device's readings, when known (the probe interval); the
    /// controller marks a device stale when its data stops for a number of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u32>,
}

/// A command from the controller to one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Unique command id; an agent runs a given id at most once, across restarts.
    pub id: String,
    /// What to do.
    #[serde(flatten)]
    pub action: CommandAction,
}

/// The actions a command can ask for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum CommandAction {
    /// Answer with the agent's version and uptime.
    Ping,
    /// Read the configuration again and apply what can be applied without a restart.
    ReloadConfig,
    /// Run a maintenance routine: one of the agent's own (`name`) or the document carried
    /// here (`document`, TOML; the command's signature covers it). The result's `data` is
    /// the run record; the run id is the command id.
    RunRoutine {
        /// A routine the agent has in `routines.d/` or its library.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        name: String,
        /// A routine document (TOML), instead of `name`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        document: String,
        /// The fleet task this command belongs to, if any.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        task: String,
        /// Run even outside the routine's window (the controller already checked it).
        #[serde(default)]
        ignore_window: bool,
    },
    /// Change the configuration: `toml` becomes the drop-in `agent.d/70-task-{name}.toml`
    /// and is applied like a reload. Only sections the agent's `controller.remote_config`
    /// lists may appear; a change that does not load is undone.
    ApplyConfig {
        /// The change's name: 1 to 40 of `a-z`, `0-9`, `-`.
        name: String,
        /// The drop-in's content (TOML).
        toml: String,
        /// The fleet task this command belongs to, if any.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        task: String,
    },
    /// Update the agent: take the release of its architecture from `releases`, check its
    /// signature with the pinned release key, download it from `{base_url}/{version}/{arch}`
    /// (resuming a partial download), check it against the manifest, start it, and keep it
    /// only if it is connected and reporting within `confirm_secs`; otherwise the previous
    /// binary comes back. Answered once the new version confirmed, or after the rollback.
    Update {
        /// The release, one manifest per architecture.
        releases: Vec<crate::release::Release>,
        /// Where the binaries are, e.g. `https://controller.example/releases`.
        base_url: String,
        /// How long the new version has to be connected and reporting.
        confirm_secs: u64,
        /// The fleet task this command belongs to, if any.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        task: String,
    },
    /// An action this agent does not know (sent by a newer controller).
    #[serde(other)]
    Unsupported,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandStatus {
    /// Done.
    Ok,
    /// Tried and failed.
    Failed,
    /// Not run: the agent's config does not allow it, or it is unknown to this agent.
    Rejected,
    /// Not run now: outside the routine's window.
    Skipped,
    /// Not an answer yet: the agent accepted the command and started it (long commands,
    /// such as routines, say so; the final result follows with the same `command_id`).
    Running,
}

/// The agent's answer to a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    /// The command answered.
    pub command_id: String,
    /// How it ended.
    pub status: CommandStatus,
    /// One line for people.
    #[serde(default)]
    pub message: String,
    /// Structured output.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
    /// When it finished, ms since the epoch.
    pub finished_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(Kind::parse("commandresult"), None);
    }

    #[test]
    fn unknown_command_action_decodes_as_unsupported() {
        let c: Command = serde_json::from_str(r#"{"id":"c1","action":"format-disk"}"#).unwrap();
        assert_eq!(c.action, CommandAction::Unsupported);
        let c: Command = serde_json::from_str(r#"{"id":"c2","action":"reload-config"}"#).unwrap();
        assert_eq!(c.action, CommandAction::ReloadConfig);
    }

    #[test]
    fn raw_points_omit_the_aggregate() {
        let p = Point {
            t: 1,
            v: 2.5,
            agg: None,
        };
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"t":1,"v":2.5}"#);
    }
}
