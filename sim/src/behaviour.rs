//! Plausible readings and occasional faults for each class of simulated device: a pure
//! state machine per device, stepped with a clock and a random source.

use rand::Rng;

/// What one step produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Step {
    /// Readings (metric, value); empty when the device is silent.
    pub readings: Vec<(&'static str, f64)>,
    /// Events: (code, severity, message).
    pub events: Vec<(&'static str, &'static str, String)>,
}

/// A fault in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The device reports it is down (paper out, jam...).
    Down(&'static str),
    /// The device stopped sending data (crashed, unplugged).
    Silent,
    /// A reading out of its normal range (fridge warm, UPS on battery).
    Abnormal,
}

/// One simulated device's state.
#[derive(Debug, Clone)]
pub struct DeviceSim {
    class: &'static str,
    id: String,
    fault: Option<(Fault, i64)>,
    level: f64,
    counter: f64,
    fault_chance: f64,
}

/// Chance per step that a healthy device develops a fault.
const FAULT_CHANCE: f64 = 0.0015;

/// A printer fault the reset clears.
pub const JAM: &str = "paper jam";
/// A printer fault only an engineer fixes.
pub const BROKEN: &str = "print head failure";
/// Share of printer faults that are jams.
const HEALABLE_SHARE: f64 = 0.7;

impl DeviceSim {
    /// A healthy device.
    pub fn new(class: &'static str, id: &str) -> DeviceSim {
        let counter = if class == "fridge-sensor" { 3.5 } else { 0.0 };
        DeviceSim {
            class,
            id: id.to_owned(),
            fault: None,
            level: 100.0,
            counter,
            fault_chance: FAULT_CHANCE,
        }
    }

    /// The same device without random faults (tests make their own).
    #[must_use]
    pub fn without_random_faults(mut self) -> DeviceSim {
        self.fault_chance = 0.0;
        self
    }

    /// The fault in progress, if any.
    pub fn fault(&self) -> Option<Fault> {
        self.fault.map(|(f, _)| f)
    }

    /// Goes down for `why` until `until` (ms) or [`DeviceSim::repair`], whichever is
    /// first; says so in the next step's events.
    pub fn break_down(&mut self, why: &'static str, until: i64) -> Step {
        self.fault = Some((Fault::Down(why), until));
        Step {
            readings: Vec::new(),
            events: vec![(
                "device.down",
                "error",
                format!("{} is down: {why}", self.id),
            )],
        }
    }

    /// The fault is fixed (by a routine or an engineer): it ends at the next step.
    pub fn repair(&mut self) {
        if let Some((f, _)) = self.fault {
            self.fault = Some((f, i64::MIN));
        }
    }

    /// Advances to `now` (ms); `hour` is the store's local hour, for the trading curve.
    pub fn step(&mut self, now: i64, hour: u32, rng: &mut impl Rng) -> Step {
        let mut s = Step::default();
        if let Some((f, until)) = self.fault {
            if now >= until {
                self.fault = None;
                if let Fault::Down(_) = f {
                    s.events
                        .push(("device.up", "info", format!("{} is back", self.id)));
                }
                if self.class == "receipt-printer" {
                    self.level = 100.0;
                }
            }
        } else if self.fault_chance > 0.0 && rng.random_bool(self.fault_chance) {
            let minutes = rng.random_range(2..20) * 60_000;
            let fault = match self.class {
                // Most printer faults are a jam the routine's reset clears; some are
                // hardware that needs an engineer.
                "receipt-printer" => Fault::Down(if rng.random_bool(HEALABLE_SHARE) {
                    JAM
                } else {
                    BROKEN
                }),
                "pos" | "scanner" | "signage" => Fault::Silent,
                "fridge-sensor" | "ups" => Fault::Abnormal,
                _ => Fault::Down("not responding"),
            };
            // Broken hardware stays broken until someone repairs it (or for a shift).
            let minutes = if fault == Fault::Down(BROKEN) {
                8 * 3_600_000
            } else {
                minutes
            };
            if let Fault::Down(why) = fault {
                s.events.push((
                    "device.down",
                    "error",
                    format!("{} is down: {why}", self.id),
                ));
            }
            if fault == Fault::Abnormal && self.class == "ups" {
                s.events.push((
                    "ups.on_battery",
                    "warning",
                    format!("{} switched to battery", self.id),
                ));
            }
            self.fault = Some((fault, now + minutes));
        }
        if self.fault() == Some(Fault::Silent) {
            return s;
        }
        let busy = if (8..20).contains(&hour) { 1.0 } else { 0.1 };
        let abnormal = self.fault() == Some(Fault::Abnormal);
        let down = matches!(self.fault(), Some(Fault::Down(_)));
        match self.class {
            "pos" => {
                self.counter += busy * rng.random_range(0.0..4.0);
                s.readings.push(("transactions", self.counter.floor()));
                s.readings
                    .push(("basket_eur", busy * rng.random_range(5.0..60.0)));
                s.readings.push(("up", 1.0));
            }
            "receipt-printer" => {
                self.level = (self.level - busy * rng.random_range(0.0..0.4)).max(0.0);
                s.readings
                    .push(("paper_pct", if down { 0.0 } else { self.level }));
                s.readings.push((
                    "queue_jobs",
                    if down {
                        rng.random_range(3.0..12.0_f64).floor()
                    } else {
                        0.0
                    },
                ));
                s.readings.push(("up", if down { 0.0 } else { 1.0 }));
            }
            "scale" => {
                s.readings.push((
                    "weight_kg",
                    if rng.random_bool(0.3 * busy) {
                        rng.random_range(0.05..3.0)
                    } else {
                        0.0
                    },
                ));
                s.readings.push(("up", if down { 0.0 } else { 1.0 }));
            }
            "scanner" => {
                s.readings
                    .push(("scans", (busy * rng.random_range(0.0..30.0_f64)).floor()));
            }
            "signage" => {
                s.readings.push(("up", 1.0));
                s.readings
                    .push(("panel_temp_c", rng.random_range(34.0..41.0)));
            }
            "ups" => {
                self.level = if abnormal {
                    (self.level - 1.5).max(5.0)
                } else {
                    (self.level + 2.0).min(100.0)
                };
                s.readings.push(("battery_pct", self.level));
                s.readings
                    .push(("on_battery", if abnormal { 1.0 } else { 0.0 }));
                s.readings.push(("load_pct", rng.random_range(20.0..45.0)));
            }
            "fridge-sensor" => {
                let target = if abnormal { 9.5 } else { 3.5 };
                self.counter += (target - self.counter) * 0.2 + rng.random_range(-0.2..0.2);
                s.readings.push(("temp_c", self.counter));
                if abnormal && self.counter > 8.0 && rng.random_bool(0.1) {
                    s.events.push((
                        "fridge.temp_high",
                        "warning",
                        format!("{} reads {:.1} °C", self.id, self.counter),
                    ));
                }
            }
            _ => s.readings.push(("up", 1.0)),
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    #[test]
    fn a_printer_goes_down_and_comes_back_with_events() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut d = DeviceSim::new("receipt-printer", "printer-1");
        let (mut downs, mut ups) = (0, 0);
        for i in 0..200_000i64 {
            let s = d.step(i * 10_000, 12, &mut rng);
            downs += s.events.iter().filter(|e| e.0 == "device.down").count();
            ups += s.events.iter().filter(|e| e.0 == "device.up").count();
            assert!(
                !s.readings.is_empty(),
                "a printer keeps reporting while down"
            );
        }
        assert!(downs > 10, "faults happen: {downs}");
        assert!(
            ups + 1 >= downs && ups <= downs,
            "every fault but the last ends: {downs} {ups}"
        );
    }

    #[test]
    fn a_silent_pos_sends_nothing() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut d = DeviceSim::new("pos", "pos-1");
        d.fault = Some((Fault::Silent, 1_000));
        assert!(d.step(0, 12, &mut rng).readings.is_empty());
        assert!(!d.step(1_000, 12, &mut rng).readings.is_empty());
    }
}
