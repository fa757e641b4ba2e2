//! Judging a new store's readiness: the format's expected devices against what its gateway
//! reports. Pure: the caller reads the rows.

use std::collections::HashMap;

use storefleet_client::openings::{Check, DeviceCheck, ExpectedDevice, State, StoreFormat};

use crate::fleet::DeviceState;

/// A reported device with what its asset record says it is.
#[derive(Debug, Clone)]
pub struct Reported<'a> {
    /// Its live state.
    pub device: &'a DeviceState,
    /// `vendor model` from its asset record; empty when unknown.
    pub model: String,
}

/// Whether `model` is of `profile`: every word of the profile appears in it, any case.
pub fn fits(profile: &str, model: &str) -> bool {
    let model = model.to_lowercase();
    profile
        .split_whitespace()
        .all(|w| model.contains(&w.to_lowercase()))
}

/// How a reported device stands, its model aside.
fn live(d: &DeviceState) -> (State, String) {
    if d.state == "down" {
        let why = if d.note.is_empty() { "down" } else { &d.note };
        (State::Down, why.to_owned())
    } else if d.stale {
        (State::Down, "silent: no readings for a while".into())
    } else if d.last_seen.is_none() {
        (
            State::Misconfigured,
            "configured, no readings yet (address, credentials?)".into(),
        )
    } else {
        (State::Ready, "reporting".into())
    }
}

/// One line per expected device, worst first, and the reported devices nothing expects.
///
/// Lines with a profile are filled before the same class's lines without one, each with
/// the best-standing device that fits; a device of the class that does not fit any profile
/// still fills a place, as misconfigured (it is there, but not the model the format wants).
pub fn devices(format: &StoreFormat, reported: &[Reported<'_>]) -> (Vec<DeviceCheck>, Vec<String>) {
    let mut used = vec![false; reported.len()];
    let mut out = Vec::new();
    let mut lines: Vec<&ExpectedDevice> = format.devices.iter().collect();
    // Specific before general, so that a general line does not take a device a profile
    // line needs.
    lines.sort_by_key(|l| l.profile.is_empty());
    let mut short: Vec<(&ExpectedDevice, u32)> = Vec::new();
    for line in &lines {
        let mut left = line.count;
        let mut fitting: Vec<usize> = (0..reported.len())
            .filter(|&i| {
                !used[i]
                    && reported[i].device.class == line.class
                    && (line.profile.is_empty() || fits(&line.profile, &reported[i].model))
            })
            .collect();
        fitting.sort_by_key(|&i| std::cmp::Reverse(live(reported[i].device).0));
        for i in fitting.into_iter().take(line.count as usize) {
            used[i] = true;
            left -= 1;
            let (state, note) = live(reported[i].device);
            out.push(DeviceCheck {
                class: line.class.clone(),
                profile: line.profile.clone(),
                device: Some(reported[i].device.device.clone()),
                state,
                note,
            });
        }
        if left > 0 {
            short.push((line, left));
        }
    }
    // Places still open: a device of the class that fits no line stands there, wrongly.
    for (line, left) in short {
        for _ in 0..left {
            let other =
                (0..reported.len()).find(|&i| !used[i] && reported[i].device.class == line.class);
            match other {
                Some(i) => {
                    used[i] = true;
                    let r = &reported[i];
                    let is = if r.model.is_empty() {
                        "its model is not known".to_owned()
                    } else {
                        format!("it is {}", r.model)
                    };
                    out.push(DeviceCheck {
                        class: line.class.clone(),
                        profile: line.profile.clone(),
                        device: Some(r.device.device.clone()),
                        state: State::Misconfigured,
                        note: format!("expected {}; {is}", line.profile),
                    });
                }
                None => out.push(DeviceCheck {
                    class: line.class.clone(),
                    profile: line.profile.clone(),
                    device: None,
                    state: State::Missing,
                    note: "the gateway does not report it".into(),
                }),
            }
        }
    }
    out.sort_by(|a, b| (a.state, &a.class, &a.device).cmp(&(b.state, &b.class, &b.device)));
    let extra = reported
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(r, _)| format!("{} ({})", r.device.device, r.device.class))
        .collect();
    (out, extra)
}

/// The checklist: the gateway first, then the format's items with who ticked them.
pub fn checklist<S: std::hash::BuildHasher>(
    format: &StoreFormat,
    gateway: Check,
    ticked: &HashMap<String, (String, i64), S>,
) -> Vec<Check> {
    let mut out = vec![gateway];
    for item in &format.checklist {
        let t = ticked.get(item);
        out.push(Check {
            item: item.clone(),
            auto: false,
            done: t.is_some(),
            by: t.map(|t| t.0.clone()),
            at: t.map(|t| t.1),
            note: String::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: &str, class: &str, state: &str, seen: bool, stale: bool) -> DeviceState {
        DeviceState {
            store: "S".into(),
            device: id.into(),
            class: class.into(),
            agent_id: "a".into(),
            last_seen: seen.then_some(1),
            interval_ms: 10_000,
            state: state.into(),
            state_at: None,
            note: if state == "down" {
                "paper jam".into()
            } else {
                String::new()
            },
            stale,
        }
    }

    fn format(lines: &[(&str, u32, &str)]) -> StoreFormat {
        StoreFormat {
            name: "express".into(),
            description: String::new(),
            devices: lines
                .iter()
                .map(|(c, n, p)| ExpectedDevice {
                    class: (*c).into(),
                    count: *n,
                    profile: (*p).into(),
                })
                .collect(),
            tasks: vec![],
            checklist: vec![],
        }
    }

    fn states(v: &[DeviceCheck]) -> Vec<(&str, Option<&str>, State)> {
        v.iter()
            .map(|d| (d.class.as_str(), d.device.as_deref(), d.state))
            .collect()
    }

    #[test]
    fn each_expected_device_is_ready_missing_misconfigured_or_down() {
        let f = format(&[
            ("receipt-printer", 2, "Epson TM-T88"),
            ("ups", 1, ""),
            ("pos", 2, ""),
        ]);
        let devs = [
            dev("printer-1", "receipt-printer", "up", true, false),
            dev("printer-2", "receipt-printer", "up", true, false),
            dev("ups-1", "ups", "down", true, false),
            dev("pos-1", "pos", "up", false, false),
            dev("cam-1", "camera", "up", true, false),
        ];
        let models = ["EPSON TM-T88VI", "Star TSP100", "APC Smart-UPS", "", ""];
        let rep: Vec<Reported> = devs
            .iter()
            .zip(models)
            .map(|(d, m)| Reported {
                device: d,
                model: m.into(),
            })
            .collect();
        let (lines, extra) = devices(&f, &rep);
        assert_eq!(
            states(&lines),
            vec![
                ("pos", None, State::Missing),
                ("pos", Some("pos-1"), State::Misconfigured),
                ("receipt-printer", Some("printer-2"), State::Misconfigured),
                ("ups", Some("ups-1"), State::Down),
                ("receipt-printer", Some("printer-1"), State::Ready),
            ]
        );
        assert_eq!(lines[2].note, "expected Epson TM-T88; it is Star TSP100");
        assert_eq!(lines[3].note, "paper jam");
        assert!(
            lines[1].note.contains("no readings yet"),
            "{}",
            lines[1].note
        );
        assert_eq!(extra, vec!["cam-1 (camera)"]);
    }

    #[test]
    fn a_profile_line_takes_the_fitting_device_before_a_general_line_does() {
        // The general line comes first in the format, but must not take the only Zebra.
        let f = format(&[("label-printer", 1, ""), ("label-printer", 1, "zebra")]);
        let devs = [
            dev("lp-1", "label-printer", "up", true, false),
            dev("lp-2", "label-printer", "up", true, false),
        ];
        let rep = [
            Reported {
                device: &devs[0],
                model: "Zebra ZD421".into(),
            },
            Reported {
                device: &devs[1],
                model: "Brother QL".into(),
            },
        ];
        let (lines, extra) = devices(&f, &rep);
        assert!(lines.iter().all(|l| l.state == State::Ready), "{lines:?}");
        let zebra = lines.iter().find(|l| l.profile == "zebra").unwrap();
        assert_eq!(zebra.device.as_deref(), Some("lp-1"));
        assert!(extra.is_empty());
    }

    #[test]
    fn the_best_standing_fitting_device_fills_the_place_and_silence_is_down() {
        let f = format(&[("ups", 1, "")]);
        let devs = [
            dev("ups-1", "ups", "up", true, true),
            dev("ups-2", "ups", "up", true, false),
        ];
        let rep: Vec<Reported> = devs
            .iter()
            .map(|d| Reported {
                device: d,
                model: String::new(),
            })
            .collect();
        let (lines, extra) = devices(&f, &rep);
        assert_eq!(states(&lines), vec![("ups", Some("ups-2"), State::Ready)]);
        assert_eq!(extra, vec!["ups-1 (ups)"]);
        let f = format(&[("ups", 2, "")]);
        let (lines, _) = devices(&f, &rep);
        assert_eq!(lines[0].state, State::Down);
        assert!(lines[0].note.contains("silent"));
    }

    #[test]
    fn profiles_match_words_in_any_case_and_order() {
        assert!(fits("Epson TM-T88", "EPSON TM-T88VI"));
        assert!(fits("tm-t88 epson", "Epson TM-T88V"));
        assert!(!fits("Epson TM-T88", "Epson TM-T20"));
        assert!(!fits("Epson", ""));
        assert!(fits("", "anything"));
    }
}
