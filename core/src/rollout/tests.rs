//! The rollout machine, driven without a clock or a socket.

use std::collections::HashSet;

use proptest::prelude::*;

use super::*;

#[derive(Default)]
struct Fleet {
    offline: HashSet<String>,
    closed: HashSet<String>,
}

impl World for Fleet {
    fn online(&self, agent: &str) -> bool {
        !self.offline.contains(agent)
    }
    fn in_window(&self, agent: &str) -> bool {
        !self.closed.contains(agent)
    }
}

fn plan(canary: usize, waves: &[u8]) -> Plan {
    Plan {
        canary,
        waves: waves.to_vec(),
        region_concurrency: 0,
        target_timeout_ms: 60_000,
        abort_failure_rate: 0.2,
        abort_min_finished: 2,
        expiry_ms: 3_600_000,
    }
}

fn agents(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("a{i:02}"), ["north", "south"][i % 2].to_owned()))
        .collect()
}

fn sent(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(s) => Some(s.clone()),
            Action::Finished => None,
        })
        .collect()
}

#[test]
fn canary_failures_abort_and_cancel_everything_not_sent() {
    let mut r = Rollout::new(plan(2, &[10, 50, 100]), agents(50)).unwrap();
    let w = Fleet::default();
    let first = sent(&r.step(0, &w));
    assert_eq!(first, vec!["a00", "a01"], "the canary goes first, alone");
    r.result("a00", Outcome::Failed);
    r.result("a01", Outcome::Failed);
    let actions = r.step(1000, &w);
    assert_eq!(actions, vec![Action::Finished]);
    assert!(matches!(
        r.phase(),
        Phase::Aborted {
            failures: 2,
            finished: 2
        }
    ));
    let cancelled = r
        .targets()
        .iter()
        .filter(|t| t.state == TargetState::Cancelled)
        .count();
    assert_eq!(cancelled, 48);
    assert!(
        sent(&r.step(2000, &w)).is_empty(),
        "nothing is sent after an abort"
    );
}

#[test]
fn a_wave_opens_only_when_the_one_before_has_finished() {
    let mut r = Rollout::new(plan(1, &[50, 100]), agents(5)).unwrap();
    let w = Fleet::default();
    assert_eq!(sent(&r.step(0, &w)), vec!["a00"]);
    assert!(sent(&r.step(10, &w)).is_empty(), "canary still running");
    r.started("a00");
    r.result("a00", Outcome::Succeeded);
    assert_eq!(sent(&r.step(20, &w)), vec!["a01", "a02"]);
    r.result("a01", Outcome::Succeeded);
    assert!(sent(&r.step(30, &w)).is_empty(), "a02 still running");
    r.result("a02", Outcome::Succeeded);
    assert_eq!(sent(&r.step(40, &w)), vec!["a03", "a04"]);
    r.result("a03", Outcome::Succeeded);
    r.result("a04", Outcome::Succeeded);
    assert_eq!(r.step(50, &w), vec![Action::Finished]);
    assert_eq!(r.phase(), &Phase::Completed);
    assert!(r.step(60, &w).is_empty(), "finished is said once");
}

#[test]
fn the_region_cap_limits_what_is_in_flight() {
    let mut p = plan(0, &[100]);
    p.region_concurrency = 2;
    let mut r = Rollout::new(p, agents(10)).unwrap();
    let w = Fleet::default();
    let first = sent(&r.step(0, &w));
    assert_eq!(first, vec!["a00", "a01", "a02", "a03"], "two per region");
    r.result("a00", Outcome::Succeeded);
    assert_eq!(sent(&r.step(1, &w)), vec!["a04"], "a north slot freed");
}

#[test]
fn a_closed_window_keeps_a_store_waiting_until_it_opens() {
    let mut r = Rollout::new(plan(0, &[100]), agents(3)).unwrap();
    let mut w = Fleet::default();
    w.closed.insert("a01".into());
    assert_eq!(sent(&r.step(0, &w)), vec!["a00", "a02"]);
    r.result("a00", Outcome::Succeeded);
    r.result("a02", Outcome::Succeeded);
    // Long past the expiry: a closed window does not expire anyone.
    assert!(sent(&r.step(10 * 3_600_000, &w)).is_empty());
    assert_eq!(r.state_of("a01"), Some(TargetState::Queued));
    w.closed.clear();
    assert_eq!(sent(&r.step(10 * 3_600_000 + 1, &w)), vec!["a01"]);
}

#[test]
fn an_offline_target_waits_is_served_on_return_or_expires() {
    let mut r = Rollout::new(plan(0, &[100]), agents(3)).unwrap();
    let mut w = Fleet::default();
    w.offline.insert("a01".into());
    w.offline.insert("a02".into());
    assert_eq!(sent(&r.step(0, &w)), vec!["a00"]);
    r.result("a00", Outcome::Succeeded);
    w.offline.remove("a01");
    assert_eq!(
        sent(&r.step(1000, &w)),
        vec!["a01"],
        "served when it returns"
    );
    r.result("a01", Outcome::Succeeded);
    r.step(3_599_999, &w);
    assert_eq!(
        r.state_of("a02"),
        Some(TargetState::Queued),
        "still within the expiry"
    );
    assert_eq!(r.step(3_600_000, &w), vec![Action::Finished]);
    assert_eq!(
        r.state_of("a02"),
        Some(TargetState::Skipped),
        "gone past the expiry"
    );
    // Skips do not count as failures.
    assert_eq!(r.phase(), &Phase::Completed);
}

#[test]
fn a_silent_target_times_out_and_a_late_or_repeated_result_changes_nothing() {
    let mut r = Rollout::new(plan(0, &[100]), agents(2)).unwrap();
    let w = Fleet::default();
    r.step(0, &w);
    r.started("a00");
    r.result("a01", Outcome::Succeeded);
    r.result("a01", Outcome::Failed); // redelivered, different: ignored
    r.step(60_000, &w);
    assert_eq!(r.state_of("a00"), Some(TargetState::TimedOut));
    assert_eq!(r.state_of("a01"), Some(TargetState::Succeeded));
    r.result("a00", Outcome::Succeeded); // too late
    assert_eq!(r.state_of("a00"), Some(TargetState::TimedOut));
}

#[test]
fn pause_holds_sending_resume_continues_cancel_stops() {
    let mut r = Rollout::new(plan(0, &[50, 100]), agents(4)).unwrap();
    let w = Fleet::default();
    assert_eq!(sent(&r.step(0, &w)), vec!["a00", "a01"]);
    r.pause();
    r.result("a00", Outcome::Succeeded);
    r.result("a01", Outcome::Succeeded);
    assert!(
        r.step(1, &w).is_empty(),
        "paused: nothing sent, not finished"
    );
    r.resume();
    assert_eq!(sent(&r.step(2, &w)), vec!["a02", "a03"]);
    r.cancel();
    assert_eq!(r.phase(), &Phase::Cancelled);
    // In-flight ones may still finish; nothing new is sent.
    r.result("a02", Outcome::Succeeded);
    r.step(3, &w);
    assert_eq!(r.state_of("a02"), Some(TargetState::Succeeded));
    r.result("a03", Outcome::Rejected);
    assert_eq!(r.step(4, &w), vec![Action::Finished]);
    assert_eq!(
        r.phase(),
        &Phase::Cancelled,
        "a cancelled rollout stays cancelled"
    );
}

#[test]
fn duplicate_targets_and_bad_plans_are_refused() {
    let mut t = agents(2);
    t.push(t[0].clone());
    assert!(Rollout::new(plan(0, &[100]), t).is_err());
    assert!(Rollout::new(plan(0, &[40]), agents(2)).is_err());
}

#[derive(Debug, Clone)]
enum Event {
    Step(u16),
    Result(usize, u8),
    Started(usize),
    Offline(usize, bool),
    Window(usize, bool),
    Pause,
    Resume,
    Cancel,
    Restore,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (1u16..20_000).prop_map(Event::Step),
        4 => (0usize..12, 0u8..4).prop_map(|(i, o)| Event::Result(i, o)),
        1 => Just(Event::Restore),
        1 => (0usize..12).prop_map(Event::Started),
        2 => (0usize..12, any::<bool>()).prop_map(|(i, b)| Event::Offline(i, b)),
        1 => (0usize..12, any::<bool>()).prop_map(|(i, b)| Event::Window(i, b)),
        1 => Just(Event::Pause),
        1 => Just(Event::Resume),
        1 => Just(Event::Cancel),
    ]
}

proptest! {
    /// Whatever happens, in any order: a target is sent at most once, only when online,
    /// inside its window and in an open wave; the region cap holds; no wave opens before
    /// the ones before it are finished; a final target never changes; once every target is
    /// final the rollout says it finished exactly once.
    #[test]
    fn invariants_hold_for_any_sequence(events in prop::collection::vec(event(), 1..120), canary in 0usize..3, cap in 0usize..3) {
        let mut p = plan(canary, &[30, 100]);
        p.region_concurrency = cap;
        p.target_timeout_ms = 30_000;
        p.expiry_ms = 50_000;
        p.abort_min_finished = 3;
        p.abort_failure_rate = 0.5;
        let mut r = Rollout::new(p, agents(12)).unwrap();
        let mut w = Fleet::default();
        let mut now = 0i64;
        let mut ever_sent = HashSet::new();
        let mut finished_said = 0;
        let name = |i: usize| format!("a{i:02}");
        for e in events {
            let before: Vec<TargetState> = r.targets().iter().map(|t| t.state).collect();
            let actions = match e {
                Event::Step(d) => { now += i64::from(d); r.step(now, &w) }
                Event::Result(i, o) => { r.result(&name(i), [Outcome::Succeeded, Outcome::Failed, Outcome::Rejected, Outcome::Skipped][o as usize]); Vec::new() }
                Event::Started(i) => { r.started(&name(i)); Vec::new() }
                Event::Offline(i, b) => { if b { w.offline.insert(name(i)); } else { w.offline.remove(&name(i)); } Vec::new() }
                Event::Window(i, b) => { if b { w.closed.insert(name(i)); } else { w.closed.remove(&name(i)); } Vec::new() }
                Event::Pause => { r.pause(); Vec::new() }
                Event::Resume => { r.resume(); Vec::new() }
                Event::Cancel => { r.cancel(); Vec::new() }
                Event::Restore => {
                    // What the engine stores and reads back after a restart.
                    let back = Rollout::restore(r.plan().clone(), r.targets().to_vec(), r.opened().to_vec(), r.phase().clone(), r.finished()).unwrap();
                    prop_assert_eq!(&back, &r);
                    r = back;
                    Vec::new()
                }
            };
            for (t, b) in r.targets().iter().zip(&before) {
                if b.is_final() { prop_assert_eq!(t.state, *b, "a final target changed"); }
            }
            for a in &actions {
                match a {
                    Action::Send(s) => {
                        prop_assert!(ever_sent.insert(s.clone()), "{} sent twice", s);
                        prop_assert!(w.online(s) && w.in_window(s));
                        let t = r.targets().iter().find(|t| &t.agent == s).unwrap();
                        prop_assert!(r.targets().iter().filter(|o| o.wave < t.wave).all(|o| o.state.is_final()), "wave opened early");
                    }
                    Action::Finished => finished_said += 1,
                }
            }
            if cap > 0 {
                for region in ["north", "south"] {
                    let n = r.targets().iter().filter(|t| t.region == region && t.state.in_flight()).count();
                    prop_assert!(n <= cap, "{} in flight in {}", n, region);
                }
            }
            prop_assert!(finished_said <= 1);
            if finished_said == 1 {
                prop_assert!(r.targets().iter().all(|t| t.state.is_final()));
            }
        }
    }
}
