//! The simulated receipt printer's state lives in two marker files in the store's
//! directory, so that the agent's real routine can look at it and act on it with
//! allow-listed commands, as it would with a real printer's tools:
//!
//! - `sim/printer-1.jam`: a jam; the routine's reset (`rm -f` of that file) clears it.
//! - `sim/printer-1.broken`: broken hardware; only an engineer (the simulated field
//!   team, on check-in) clears it.
//!
//! Creating either file by hand breaks that store's printer: a way to show the flow. In the
//! demo the printer's SNMP agent ([`crate::snmp::printer_objects`]) shows the same state
//! (jammed, or service requested), which the agent's `snmp` probe reads.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::behaviour::{DeviceSim, Fault, Step, BROKEN, JAM};

/// The routine the built-in `printer-down` rule waits for; `{after}` is how long the
/// printer must be down before it runs.
const ROUTINE: &str = r#"# The simulated printer's unstick routine (see the simulator's printer module).
name = "receipt-printer-unstick"
version = 1
description = "Reset a jammed receipt printer"
device = "printer-1"
window = { when = "any" }

[[triggers.condition]]
device = "printer-1"
metric = "{metric}"
below = 0.5
for_secs = {after}
cooldown_secs = 600

[[steps]]
kind = "check"
name = "printer answers"
action = "exec"
args = { command = "printer-ok" }

[[steps]]
kind = "action"
name = "reset the printer"
action = "exec"
args = { command = "printer-reset" }

[[steps]]
kind = "verify"
name = "printer answers again"
action = "exec"
args = { command = "printer-ok" }
retries = 1
retry_delay_secs = 2
"#;

/// The marker files of one store's printer.
#[derive(Debug, Clone)]
pub struct Markers {
    jam: PathBuf,
    broken: PathBuf,
}

impl Markers {
    /// The printer of the store whose agent lives in `store_dir`.
    pub fn new(store_dir: &Path) -> Markers {
        let dir = store_dir.join("sim");
        Markers {
            jam: dir.join("printer-1.jam"),
            broken: dir.join("printer-1.broken"),
        }
    }

    /// An engineer repairs it.
    pub fn repair(&self) {
        let _ = std::fs::remove_file(&self.broken);
        let _ = std::fs::remove_file(&self.jam);
    }

    /// What is wrong with the printer, by its files: broken hardware, a jam, or nothing.
    pub fn state(&self) -> Option<&'static str> {
        if self.broken.exists() {
            Some(BROKEN)
        } else if self.jam.exists() {
            Some(JAM)
        } else {
            None
        }
    }

    fn write(&self, why: &str) {
        let path = if why == JAM { &self.jam } else { &self.broken };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::write(path, why) {
            tracing::warn!(path = %path.display(), error = %e, "Simulated printer state not written");
        }
    }

    /// Steps the printer with its files: a fault whose file is gone was fixed; a file
    /// without a fault is a fault someone made; a new fault gets its file.
    pub fn step(
        &self,
        sim: &mut DeviceSim,
        now: i64,
        step: impl FnOnce(&mut DeviceSim) -> Step,
    ) -> Step {
        let mut out = Step::default();
        match (sim.fault(), self.state()) {
            (Some(Fault::Down(_)), None) => sim.repair(),
            (None, Some(why)) => out = sim.break_down(why, now + 8 * 3_600_000),
            _ => {}
        }
        let s = step(sim);
        if s.events.iter().any(|e| e.0 == "device.up") {
            self.repair();
        }
        if let (Some(Fault::Down(why)), None) = (sim.fault(), self.state()) {
            self.write(why);
        }
        out.readings = s.readings;
        out.events.extend(s.events);
        out
    }
}

/// The user the agent runs the printer commands as: the one running the simulator.
fn user() -> &'static str {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(|| {
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "nobody".into())
    })
}

/// The agent config that lets the routine check and reset the printer, and only that.
pub fn agent_config(store_dir: &Path) -> String {
    let m = Markers::new(store_dir);
    // The actions that only look, as by default, and `exec` for the two commands.
    let allow: Vec<&str> = storefleet_agent::config::READ_ONLY_ACTIONS
        .into_iter()
        .chain(["exec"])
        .collect();
    let mut s = format!("\n[routines]\nallow = {allow:?}\n");
    let _ = write!(
        s,
        "\n[routines.commands.printer-ok]\nargv = [\"/usr/bin/test\", \"!\", \"-e\", {jam:?}, \"-a\", \"!\", \"-e\", {broken:?}]\nuser = {user:?}\n\
         \n[routines.commands.printer-reset]\nargv = [\"/bin/rm\", \"-f\", {jam:?}]\nuser = {user:?}\n",
        jam = m.jam.display().to_string(),
        broken = m.broken.display().to_string(),
        user = user(),
    );
    s
}

/// Writes the routine into the agent's routine directory: it runs once the printer's
/// `metric` (`up` when the printer's readings are pushed, the probe's `probe.up` when the
/// agent asks the printer over SNMP) has said down for `after_secs`.
pub fn install_routine(store_dir: &Path, after_secs: u64, metric: &str) -> std::io::Result<()> {
    let dir = store_dir.join("routines.d");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("receipt-printer-unstick.toml"),
        ROUTINE
            .replace("{after}", &after_secs.to_string())
            .replace("{metric}", metric),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    #[test]
    fn files_and_faults_follow_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let m = Markers::new(dir.path());
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut d = DeviceSim::new("receipt-printer", "printer-1");
        // A file made by hand breaks the printer.
        std::fs::create_dir_all(dir.path().join("sim")).unwrap();
        std::fs::write(dir.path().join("sim/printer-1.broken"), "").unwrap();
        let s = m.step(&mut d, 0, |d| d.step(0, 12, &mut rng));
        assert!(s.events.iter().any(|e| e.0 == "device.down"), "{s:?}");
        assert_eq!(d.fault(), Some(Fault::Down(BROKEN)));
        assert!(s.readings.contains(&("up", 0.0)));
        // Still broken while the file is there.
        let s = m.step(&mut d, 10_000, |d| d.step(10_000, 12, &mut rng));
        assert!(s.readings.contains(&("up", 0.0)));
        // The engineer repairs it: back up, with an event.
        m.repair();
        let s = m.step(&mut d, 20_000, |d| d.step(20_000, 12, &mut rng));
        assert!(s.events.iter().any(|e| e.0 == "device.up"), "{s:?}");
        assert!(s.readings.contains(&("up", 1.0)));
        assert_eq!(d.fault(), None);
    }

    #[test]
    fn a_random_jam_gets_its_file_and_ends_when_the_reset_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let m = Markers::new(dir.path());
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let mut d = DeviceSim::new("receipt-printer", "printer-1");
        let mut t = 0;
        while d.fault() != Some(Fault::Down(JAM)) {
            t += 10_000;
            m.step(&mut d, t, |d| d.step(t, 12, &mut rng));
            assert!(t < 1_000_000_000, "no jam");
            if d.fault() == Some(Fault::Down(BROKEN)) {
                m.repair();
                m.step(&mut d, t, |d| d.step(t, 12, &mut rng));
            }
        }
        assert!(dir.path().join("sim/printer-1.jam").exists());
        std::fs::remove_file(dir.path().join("sim/printer-1.jam")).unwrap();
        let s = m.step(&mut d, t + 10_000, |d| d.step(t + 10_000, 12, &mut rng));
        assert!(s.events.iter().any(|e| e.0 == "device.up"));
    }

    #[test]
    fn the_commands_are_the_two_the_routine_names() {
        let dir = tempfile::tempdir().unwrap();
        let text = agent_config(dir.path());
        assert!(text.contains("[routines.commands.printer-ok]"));
        assert!(text.contains("[routines.commands.printer-reset]"));
        install_routine(dir.path(), 7, "probe.up").unwrap();
        let doc =
            std::fs::read_to_string(dir.path().join("routines.d/receipt-printer-unstick.toml"))
                .unwrap();
        assert!(doc.contains("command = \"printer-ok\"") && doc.contains("printer-reset"));
        assert!(doc.contains("for_secs = 7"), "{doc}");
        assert!(doc.contains("metric = \"probe.up\""), "{doc}");
        let parsed: toml::Value = toml::from_str(&doc).unwrap();
        assert_eq!(parsed["name"].as_str(), Some("receipt-printer-unstick"));
    }
}
