//! The alert state machine's tests.
use super::*;

const T: Timing = Timing {
    for_ms: 60_000,
    clear_ms: 30_000,
};

fn key() -> AlertKey {
    AlertKey {
        rule: "printer-down".into(),
        store: "S1".into(),
        subject: "printer-1".into(),
    }
}

fn obs(reading: Reading, since: Option<i64>) -> Vec<Observation> {
    vec![Observation {
        key: key(),
        reading,
        since,
        detail: "down".into(),
    }]
}

#[allow(clippy::unnecessary_wraps)] // the evaluator's signature
fn timing(_: &str) -> Option<Timing> {
    Some(T)
}

fn fired(c: &[Change]) -> usize {
    c.iter()
        .filter(|c| matches!(c, Change::Fired { .. }))
        .count()
}

fn cleared(c: &[Change]) -> usize {
    c.iter()
        .filter(|c| matches!(c, Change::Cleared { .. }))
        .count()
}

#[test]
fn an_alert_fires_once_after_its_duration_counted_from_when_the_condition_began() {
    let mut e = Evaluator::default();
    assert!(e
        .step(10_000, &obs(Reading::Holds, Some(0)), timing)
        .is_empty());
    assert_eq!(e.next_due(timing), Some(60_000));
    assert!(e
        .step(59_999, &obs(Reading::Holds, Some(0)), timing)
        .is_empty());
    let c = e.step(60_000, &obs(Reading::Holds, Some(0)), timing);
    assert_eq!(fired(&c), 1);
    assert!(matches!(
        &c[0],
        Change::Fired {
            since: 0,
            at: 60_000,
            ..
        }
    ));
    assert!(e
        .step(120_000, &obs(Reading::Holds, Some(0)), timing)
        .is_empty());
    assert_eq!(e.next_due(timing), None);
}

#[test]
fn a_condition_older_than_the_duration_fires_at_once() {
    let mut e = Evaluator::default();
    let c = e.step(100_000, &obs(Reading::Holds, Some(1_000)), timing);
    assert_eq!(fired(&c), 1);
}

#[test]
fn a_short_blip_never_fires() {
    let mut e = Evaluator::default();
    e.step(0, &obs(Reading::Holds, None), timing);
    assert!(e
        .step(30_000, &obs(Reading::Clear, None), timing)
        .is_empty());
    assert!(e.state(&key()).is_none());
    assert!(e
        .step(90_000, &obs(Reading::Clear, None), timing)
        .is_empty());
}

#[test]
fn clearing_waits_for_the_clear_time_and_a_relapse_does_not_fire_again() {
    let mut e = Evaluator::default();
    e.step(60_000, &obs(Reading::Holds, Some(0)), timing);
    assert!(e
        .step(70_000, &obs(Reading::Clear, None), timing)
        .is_empty());
    assert_eq!(e.next_due(timing), Some(100_000));
    // Holds again while clearing: still the same alert, nothing new.
    assert!(e
        .step(80_000, &obs(Reading::Holds, None), timing)
        .is_empty());
    assert!(matches!(e.state(&key()), Some(State::Firing { .. })));
    e.step(90_000, &obs(Reading::Clear, None), timing);
    let c = e.step(120_000, &obs(Reading::Clear, None), timing);
    assert_eq!(cleared(&c), 1);
    assert!(e.state(&key()).is_none());
}

#[test]
fn a_reading_between_thresholds_changes_nothing() {
    let mut e = Evaluator::default();
    e.step(60_000, &obs(Reading::Holds, Some(0)), timing);
    for t in [70_000, 200_000, 900_000] {
        assert!(e.step(t, &obs(Reading::Between, None), timing).is_empty());
    }
    assert!(matches!(e.state(&key()), Some(State::Firing { .. })));
    // Pending stays pending too.
    let mut p = Evaluator::default();
    p.step(0, &obs(Reading::Holds, None), timing);
    p.step(10_000, &obs(Reading::Between, None), timing);
    assert_eq!(p.state(&key()), Some(State::Pending { since: 0 }));
}

#[test]
fn a_subject_no_longer_observed_counts_as_clear() {
    let mut e = Evaluator::default();
    e.step(60_000, &obs(Reading::Holds, Some(0)), timing);
    e.step(61_000, &[], timing);
    let c = e.step(91_000, &[], timing);
    assert_eq!(cleared(&c), 1);
}

#[test]
fn restored_alerts_do_not_fire_again_and_unknown_rules_are_dropped() {
    let mut e = Evaluator::restore([(key(), 0, 60_000)]);
    assert!(e
        .step(100_000, &obs(Reading::Holds, Some(0)), timing)
        .is_empty());
    let c = e.step(100_000, &obs(Reading::Holds, Some(0)), |_| None);
    assert!(c.is_empty());
    assert!(e.state(&key()).is_none());
}

#[test]
fn zero_durations_fire_and_clear_in_one_step() {
    let t0 = |_: &str| {
        Some(Timing {
            for_ms: 0,
            clear_ms: 0,
        })
    };
    let mut e = Evaluator::default();
    assert_eq!(fired(&e.step(5, &obs(Reading::Holds, None), t0)), 1);
    assert_eq!(cleared(&e.step(6, &obs(Reading::Clear, None), t0)), 1);
}

#[test]
fn random_readings_keep_fired_and_cleared_alternating() {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut e = Evaluator::default();
    let mut open = false;
    let mut now = 0;
    for _ in 0..20_000 {
        now += rng.random_range(0..20_000);
        let r = match rng.random_range(0..3) {
            0 => Reading::Holds,
            1 => Reading::Clear,
            _ => Reading::Between,
        };
        for c in e.step(now, &obs(r, None), timing) {
            match c {
                Change::Fired { .. } => {
                    assert!(!open, "fired twice without clearing");
                    open = true;
                }
                Change::Cleared { .. } => {
                    assert!(open, "cleared without firing");
                    open = false;
                }
            }
        }
        assert_eq!(open, e.firing().next().is_some());
    }
}

fn at(store: &str, reading: Reading, since: Option<i64>) -> Observation {
    Observation {
        key: AlertKey {
            store: store.into(),
            ..key()
        },
        reading,
        since,
        detail: "down".into(),
    }
}

#[test]
fn a_step_within_some_stores_leaves_the_others_alone() {
    let mut e = Evaluator::default();
    e.step(
        0,
        &[
            at("S1", Reading::Holds, None),
            at("S2", Reading::Holds, None),
        ],
        timing,
    );
    // S1 only, with nothing observed: S1's pending alert is gone, S2's is not, and an
    // observation of S3 outside the stores looked at is ignored.
    let within = |s: &str| s == "S1";
    let c = e.step_within(70_000, &[at("S3", Reading::Holds, Some(0))], timing, within);
    assert!(c.is_empty());
    let k = |s: &str| AlertKey {
        store: s.into(),
        ..key()
    };
    assert_eq!(e.state(&k("S1")), None);
    assert_eq!(e.state(&k("S2")), Some(State::Pending { since: 0 }));
    assert_eq!(e.state(&k("S3")), None);
    // S2 is due since 60 s: it is the store to look at, and firing takes S2 alone.
    assert_eq!(e.due_stores(59_999, timing), BTreeSet::new());
    assert_eq!(
        e.due_stores(70_000, timing),
        BTreeSet::from(["S2".to_owned()])
    );
    let c = e.step_within(70_000, &[at("S2", Reading::Holds, None)], timing, |s| {
        s == "S2"
    });
    assert_eq!(fired(&c), 1);
    assert!(e.due_stores(80_000, timing).is_empty());
}

#[test]
fn an_alert_looked_at_after_its_time_without_changing_is_not_due_again() {
    let mut e = Evaluator::default();
    e.step(60_000, &obs(Reading::Holds, Some(0)), timing);
    e.step(70_000, &obs(Reading::Clear, None), timing);
    assert_eq!(e.next_due(timing), Some(100_000));
    // Between the thresholds at its clearing time: it stays clearing, and waits for new
    // data instead of being due at once for ever.
    assert!(e
        .step(100_000, &obs(Reading::Between, None), timing)
        .is_empty());
    assert!(matches!(e.state(&key()), Some(State::Clearing { .. })));
    assert_eq!(e.next_due(timing), None);
    assert!(e.due_stores(200_000, timing).is_empty());
    // Clear again later: it clears, its clear time long past.
    assert_eq!(
        cleared(&e.step(100_001, &obs(Reading::Clear, None), timing)),
        1
    );
}
