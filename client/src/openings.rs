//! Opening new stores: store formats (what a store of a kind must have) and each new
//! store's readiness to open (what its gateway reports against what its format expects).

use serde::{Deserialize, Serialize};

use crate::tasks::{Invalid, TaskAction};

/// Devices a format may expect at most, summed over its lines.
pub const MAX_EXPECTED_DEVICES: u32 = 500;
/// Checklist items a format may have at most.
pub const MAX_CHECKLIST: usize = 50;

/// A store format: the devices a store of this kind must have, the tasks its gateway gets
/// once enrolled, and the go-live checklist people tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreFormat {
    /// 1 to 32 letters, digits, `-` or `_`, e.g. `express`.
    pub name: String,
    /// What kind of store it is, for people.
    #[serde(default)]
    pub description: String,
    /// The devices the store must have.
    #[serde(default)]
    pub devices: Vec<ExpectedDevice>,
    /// Run once on the store's gateway after it enrolls (routines, config changes), in
    /// this order; each is a one-store task.
    #[serde(default)]
    pub tasks: Vec<TaskAction>,
    /// Go-live checks people tick (`cabling done`, `staff trained`), besides those the
    /// controller judges itself.
    #[serde(default)]
    pub checklist: Vec<String>,
}

/// Devices of one class a format expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedDevice {
    /// Device class, as the gateway reports it (`receipt-printer`, `ups`).
    pub class: String,
    /// How many (1 to 100).
    #[serde(default = "one")]
    pub count: u32,
    /// The model they must be, matched against the reported vendor and model (`Epson
    /// TM-T88`, any case); empty: any model.
    #[serde(default)]
    pub profile: String,
}

fn one() -> u32 {
    1
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl StoreFormat {
    /// Checks the format; the error names the line that is wrong.
    pub fn validate(&self) -> Result<(), Invalid> {
        let bad = |m: String| Err(Invalid(m));
        if !valid_name(&self.name) {
            return bad(format!(
                "format name {:?}: expected 1 to 32 letters, digits, '-' or '_'",
                self.name
            ));
        }
        let mut total = 0;
        for (i, d) in self.devices.iter().enumerate() {
            let n = i + 1;
            if !valid_name(&d.class) {
                return bad(format!(
                    "devices[{n}] class {:?}: expected 1 to 32 letters, digits, '-' or '_'",
                    d.class
                ));
            }
            if !(1..=100).contains(&d.count) {
                return bad(format!("devices[{n}] count {}: expected 1 to 100", d.count));
            }
            if d.profile.len() > 100 {
                return bad(format!("devices[{n}] profile: at most 100 characters"));
            }
            if self.devices[..i]
                .iter()
                .any(|o| o.class == d.class && o.profile == d.profile)
            {
                return bad(format!(
                    "devices[{n}]: class {} with profile {:?} is already expected; raise its count",
                    d.class, d.profile
                ));
            }
            total += d.count;
        }
        if total > MAX_EXPECTED_DEVICES {
            return bad(format!(
                "devices: {total} expected, at most {MAX_EXPECTED_DEVICES}"
            ));
        }
        for (i, t) in self.tasks.iter().enumerate() {
            if matches!(t, TaskAction::Ping | TaskAction::Reload) {
                return bad(format!(
                    "tasks[{}]: a {} changes nothing on the gateway; give routines or config changes",
                    i + 1,
                    t.kind()
                ));
            }
            t.validate()
                .map_err(|e| Invalid(format!("tasks[{}]: {}", i + 1, e.0)))?;
        }
        if self.tasks.len() > 20 {
            return bad(format!("tasks: {}, at most 20", self.tasks.len()));
        }
        if self.checklist.len() > MAX_CHECKLIST {
            return bad(format!(
                "checklist: {} items, at most {MAX_CHECKLIST}",
                self.checklist.len()
            ));
        }
        for (i, c) in self.checklist.iter().enumerate() {
            if c.trim().is_empty() || c.len() > 120 {
                return bad(format!("checklist[{}]: 1 to 120 characters", i + 1));
            }
            if self.checklist[..i].contains(c) {
                return bad(format!("checklist[{}]: {c:?} is listed twice", i + 1));
            }
        }
        Ok(())
    }
}

/// A store's opening: its format and the day it opens (`PUT /api/v1/stores/{code}/opening`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Opening {
    /// The store format it is opened from.
    pub format: String,
    /// The day it opens, `YYYY-MM-DD` in the store's zone.
    pub opens_on: String,
}

/// How an expected device, a task or a check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not reported by the store's gateway at all.
    Missing,
    /// Reported, but not as the format wants it (another model, no readings yet, a task
    /// that failed).
    Misconfigured,
    /// Reported and configured, but down or silent now.
    Down,
    /// Waiting (a task not run yet, a check not ticked).
    Pending,
    /// As it should be.
    Ready,
}

impl State {
    /// `missing`, `misconfigured`, `down`, `pending` or `ready`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Missing => "missing",
            State::Misconfigured => "misconfigured",
            State::Down => "down",
            State::Pending => "pending",
            State::Ready => "ready",
        }
    }
}

/// One expected device and what stands in its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCheck {
    /// The class expected.
    pub class: String,
    /// The model expected; empty: any.
    pub profile: String,
    /// The reported device that fills the place; none when missing.
    pub device: Option<String>,
    /// How it stands.
    pub state: State,
    /// Why, for people.
    pub note: String,
}

/// One of the format's tasks on this store's gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCheck {
    /// What it runs (`routine X`, `config Y`).
    pub name: String,
    /// The task, once the gateway enrolled and it was pushed.
    pub task: Option<String>,
    /// How it stands.
    pub state: State,
    /// Why, for people.
    pub note: String,
}

/// One go-live check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What is checked.
    pub item: String,
    /// Judged by the controller (true) or ticked by people.
    pub auto: bool,
    /// Whether it holds.
    pub done: bool,
    /// Who ticked it (people's checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// When it was ticked, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// What the controller saw (its own checks).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// A new store's readiness to open (`GET /api/v1/stores/{code}/readiness`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Store code.
    pub store: String,
    /// Store name.
    pub name: String,
    /// Region.
    pub region: String,
    /// The format it is opened from.
    pub format: String,
    /// The day it opens, in its zone.
    pub opens_on: String,
    /// Days from today (in the store's zone) to the opening; negative once past.
    pub days_left: i64,
    /// Whether everything below holds.
    pub ready: bool,
    /// Expected devices, one line per device expected, worst first.
    pub devices: Vec<DeviceCheck>,
    /// Devices the gateway reports that the format does not expect.
    pub extra: Vec<String>,
    /// The format's tasks.
    pub tasks: Vec<TaskCheck>,
    /// The go-live checklist: the controller's own (the gateway enrolled and reporting),
    /// then the format's, ticked by people.
    pub checklist: Vec<Check>,
}

impl Readiness {
    /// Expected devices that are ready, and all expected.
    pub fn devices_ready(&self) -> (usize, usize) {
        let ok = self
            .devices
            .iter()
            .filter(|d| d.state == State::Ready)
            .count();
        (ok, self.devices.len())
    }

    /// One line for people: `ready` or what is not.
    pub fn summary(&self) -> String {
        if self.ready {
            return "ready".into();
        }
        let mut parts = Vec::new();
        for s in [State::Missing, State::Misconfigured, State::Down] {
            let n = self.devices.iter().filter(|d| d.state == s).count();
            if n > 0 {
                parts.push(format!("{n} device{} {}", plural(n), s.as_str()));
            }
        }
        let tasks = self
            .tasks
            .iter()
            .filter(|t| t.state != State::Ready)
            .count();
        if tasks > 0 {
            parts.push(format!("{tasks} task{} not done", plural(tasks)));
        }
        let checks = self.checklist.iter().filter(|c| !c.done).count();
        if checks > 0 {
            parts.push(format!("{checks} check{} open", plural(checks)));
        }
        parts.join(", ")
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
