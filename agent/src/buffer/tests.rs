//! Store tests against a real SQLite file in a temporary directory.

use std::collections::HashMap;
use std::sync::Arc;

use storefleet_protocol::message::{Event, Inventory, Severity};
use storefleet_protocol::{Message, PublicKey, SigningKey, Verifier};

use super::*;

struct Fixture {
    dir: tempfile::TempDir,
    key: Arc<SigningKey>,
    health: Arc<Health>,
}

use crate::health::Health;

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            key: Arc::new(SigningKey::generate().unwrap()),
            health: Arc::new(Health::default()),
        }
    }

    fn limits(max_bytes: u64) -> Limits {
        Limits {
            max_bytes,
            events_max_bytes: 64 * 1024,
            max_batch_points: 100,
            max_batch_bytes: 64 * 1024,
            durability: Durability::Normal,
            compress: true,
        }
    }

    fn open_with(&self, limits: Limits) -> Store {
        Store::open(
            &self.dir.path().join("buffer.db"),
            Sealer {
                agent_id: "gw-1".into(),
                key: self.key.clone(),
            },
            limits,
            self.health.clone(),
        )
        .unwrap()
    }

    fn open(&self) -> Store {
        self.open_with(Fixture::limits(64 * 1024 * 1024))
    }

    fn verifier(&self) -> Verifier<HashMap<String, PublicKey>> {
        Verifier::new(HashMap::from([("gw-1".to_owned(), self.key.public_key())]))
    }
}

fn series(metric: &str, from: i64, n: usize) -> Vec<SeriesIn> {
    spaced(metric, from, n, 1000)
}

fn spaced(metric: &str, from: i64, n: usize, step_ms: i64) -> Vec<SeriesIn> {
    vec![SeriesIn {
        device: Some("dev".into()),
        metric: metric.into(),
        points: (0..n as i64)
            .map(|i| (from + i * step_ms, i as f64))
            .collect(),
    }]
}

fn event(id: &str, bytes: usize) -> Event {
    Event {
        id: id.into(),
        ts: 1,
        device: None,
        code: "test.event".into(),
        severity: Severity::Info,
        message: "x".repeat(bytes),
        data: serde_json::Map::new(),
    }
}

fn telemetry(v: &mut Verifier<HashMap<String, PublicKey>>, o: &Outgoing) -> (bool, Vec<f64>) {
    let topic =
        storefleet_protocol::Topic::format("gw-1", storefleet_protocol::Direction::Up, o.kind);
    let env = v.verify(&topic, &o.payload, 0).unwrap();
    match env.message {
        Message::Telemetry(b) => (
            b.backlog,
            b.series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.v))
                .collect(),
        ),
        other => panic!("expected telemetry, got {other:?}"),
    }
}

#[test]
fn points_are_sealed_signed_in_order_and_gone_after_ack() {
    let f = Fixture::new();
    let mut s = f.open();
    s.in_tx(|s| s.add_points(&series("m", 0, 250))).unwrap();
    let msgs = s.in_tx(|s| s.next_messages(0, 10)).unwrap();
    assert_eq!(msgs.len(), 3, "250 points at 100 per message");
    assert!(msgs.windows(2).all(|w| w[0].seq < w[1].seq));
    let mut v = f.verifier();
    let values: Vec<f64> = msgs.iter().flat_map(|m| telemetry(&mut v, m).1).collect();
    assert_eq!(values, (0..250).map(f64::from).collect::<Vec<_>>());
    s.in_tx(|s| s.ack(&msgs.iter().map(|m| m.seq).collect::<Vec<_>>()))
        .unwrap();
    assert!(s.in_tx(|s| s.next_messages(0, 10)).unwrap().is_empty());
    assert_eq!(
        f.health
            .points_acked
            .load(std::sync::atomic::Ordering::Relaxed),
        250
    );
}

#[test]
fn unacked_messages_come_back_byte_for_byte_after_a_restart() {
    let f = Fixture::new();
    let first = {
        let mut s = f.open();
        s.in_tx(|s| s.add_points(&series("m", 0, 50))).unwrap();
        s.in_tx(|s| s.next_messages(0, 10)).unwrap()
    };
    let mut s = f.open();
    let again = s.in_tx(|s| s.next_messages(0, 10)).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].seq, first[0].seq);
    assert_eq!(again[0].payload, first[0].payload);
    // Past the cursor nothing is sealed twice.
    assert!(s
        .in_tx(|s| s.next_messages(first[0].seq, 10))
        .unwrap()
        .is_empty());
}

#[test]
fn live_points_go_before_the_backlog() {
    let f = Fixture::new();
    let mut s = f.open();
    s.in_tx(|s| s.add_points(&series("m", 0, 150))).unwrap();
    s.in_tx(Store::mark_backlog).unwrap();
    s.in_tx(|s| s.add_points(&series("m", 1_000_000, 5)))
        .unwrap();
    let msgs = s.in_tx(|s| s.next_messages(0, 10)).unwrap();
    let mut v = f.verifier();
    let decoded: Vec<(bool, Vec<f64>)> = msgs.iter().map(|m| telemetry(&mut v, m)).collect();
    assert_eq!(decoded[0], (false, vec![0.0, 1.0, 2.0, 3.0, 4.0]));
    assert!(decoded[1..].iter().all(|(backlog, _)| *backlog));
    let backlog: Vec<f64> = decoded[1..].iter().flat_map(|d| d.1.clone()).collect();
    assert_eq!(backlog, (0..150).map(f64::from).collect::<Vec<_>>());
}

#[test]
fn events_are_refused_when_their_quota_is_full_and_accepted_after_acks() {
    let f = Fixture::new();
    let mut s = f.open();
    let mut stored = 0;
    let err = loop {
        match s.in_tx(|s| s.add_event(&event(&format!("e{stored}"), 4000))) {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, BufferError::EventsFull { limit: 65536 }),
        "{err}"
    );
    assert!(err.is_transient());
    assert!(stored >= 14, "{stored}");
    // A retried event with the same id is not stored twice.
    let sent = s.in_tx(|s| s.next_messages(0, 100)).unwrap();
    assert_eq!(sent.len(), stored);
    assert!(
        s.in_tx(|s| s.add_event(&event("more", 4000))).is_err(),
        "sealed but unacked still count"
    );
    s.in_tx(|s| s.ack(&sent.iter().map(|m| m.seq).collect::<Vec<_>>()))
        .unwrap();
    assert!(s.in_tx(|s| s.add_event(&event("more", 4000))).unwrap());
    assert!(!s.in_tx(|s| s.add_event(&event("more", 4000))).unwrap());
}

#[test]
fn a_final_result_while_its_start_is_unsent_is_kept_and_a_repeat_is_not() {
    use storefleet_protocol::message::{CommandResult, CommandStatus};
    let f = Fixture::new();
    let mut s = f.open();
    let result = |status| CommandResult {
        command_id: "c-1".into(),
        status,
        message: String::new(),
        data: serde_json::Value::Null,
        finished_at: 1,
    };
    assert!(s
        .in_tx(|s| s.add_result(&result(CommandStatus::Running)))
        .unwrap());
    assert!(s
        .in_tx(|s| s.add_result(&result(CommandStatus::Rejected)))
        .unwrap());
    assert!(!s
        .in_tx(|s| s.add_result(&result(CommandStatus::Rejected)))
        .unwrap());
    let sent = s.in_tx(|s| s.next_messages(0, 100)).unwrap();
    assert_eq!(sent.len(), 2, "the start and the answer");
}

#[test]
fn a_small_quota_holds_by_downsampling_then_evicting_with_matching_counters() {
    use std::sync::atomic::Ordering::Relaxed;
    let f = Fixture::new();
    let max = 2 * 1024 * 1024;
    let mut s = f.open_with(Fixture::limits(max));
    let mut ingested = 0u64;
    for round in 0..60 {
        let mut batch = Vec::new();
        // Dense series fold well; two-hourly ones cannot fold and must be evicted.
        let step = if round % 2 == 0 { 1000 } else { 7_200_000 };
        for m in 0..10 {
            batch.extend(spaced(&format!("m{m}"), round * 10_000_000_000, 2000, step));
        }
        ingested += s.in_tx(|s| s.add_points(&batch)).unwrap() as u64;
        s.enforce_quota().unwrap();
        assert!(s.used_bytes().unwrap() <= s.limits.db_budget() + QUOTA_SLACK_BYTES);
        assert!(
            s.file_bytes() <= max + QUOTA_SLACK_BYTES,
            "round {round}: {}",
            s.file_bytes()
        );
    }
    let h = &f.health;
    let (down, made, evicted) = (
        h.points_downsampled.load(Relaxed),
        h.aggregates_created.load(Relaxed),
        h.points_evicted.load(Relaxed),
    );
    assert!(down > 0 && evicted > 0, "down {down} evicted {evicted}");
    let in_db: u64 = s
        .conn
        .query_row("SELECT COUNT(*) FROM points", [], |r| r.get(0))
        .unwrap();
    assert_eq!(in_db, ingested - down + made - evicted);
    assert_eq!(in_db, s.points);
}

#[test]
fn a_corrupt_database_is_moved_aside_and_reported() {
    let f = Fixture::new();
    let path = f.dir.path().join("buffer.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let mut s = f.open();
    let moved: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(moved.len(), 1);
    let msgs = s.in_tx(|s| s.next_messages(0, 10)).unwrap();
    let env = f
        .verifier()
        .verify("sf/v1/gw-1/up/event", &msgs[0].payload, 0)
        .unwrap();
    match env.message {
        Message::Event(e) => assert_eq!(e.code, "buffer.corrupt"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn inventory_is_sent_only_when_it_changes() {
    let f = Fixture::new();
    let mut s = f.open();
    let mut inv = Inventory::default();
    assert!(s.in_tx(|s| s.set_inventory(&inv)).unwrap());
    inv.gateway.hostname = "a".into();
    assert!(s.in_tx(|s| s.set_inventory(&inv)).unwrap());
    let msgs = s.in_tx(|s| s.next_messages(0, 10)).unwrap();
    assert_eq!(msgs.len(), 1, "coalesced to the latest");
    assert!(!s.in_tx(|s| s.set_inventory(&inv)).unwrap());
    assert!(s
        .in_tx(|s| s.next_messages(msgs[0].seq, 10))
        .unwrap()
        .is_empty());
}

#[test]
fn command_ids_are_remembered_across_restarts() {
    let f = Fixture::new();
    {
        let mut s = f.open();
        assert!(s.in_tx(|s| s.command_seen("c1")).unwrap());
        assert!(!s.in_tx(|s| s.command_seen("c1")).unwrap());
    }
    let mut s = f.open();
    assert!(!s.in_tx(|s| s.command_seen("c1")).unwrap());
    assert!(s.in_tx(|s| s.command_seen("c2")).unwrap());
}

#[test]
fn a_fresh_database_starts_its_sequence_at_the_clock() {
    let f = Fixture::new();
    let mut s = f.open();
    let seq = s.in_tx(|s| s.reserve_seqs(2)).unwrap();
    assert!(seq > 1_600_000_000_000_000, "{seq}");
    assert_eq!(s.in_tx(|s| s.reserve_seqs(1)).unwrap(), seq + 2);
}

/// Regression: with `durability = "normal"` a power cut rolled the stored next seq back,
/// and the restarted agent reused numbers the controller had already stored, which then
/// dropped the new messages as duplicates.
#[test]
fn the_sequence_never_goes_back_when_the_stored_counter_rolls_back() {
    let f = Fixture::new();
    let mut s = f.open();
    let first = s.in_tx(|s| s.reserve_seqs(1)).unwrap();
    // Far more than the clock moves meanwhile, so that only the ceiling can save the day.
    let last = s.in_tx(|s| s.reserve_seqs(10_000_000_000)).unwrap() + 9_999_999_999;
    // What a power cut leaves: the counter as it was before those reservations, and a
    // clock that did not move on (a gateway without a real-time clock).
    s.set_meta("next_seq", first as i64).unwrap();
    drop(s);
    let mut s = f.open();
    let next = s.in_tx(|s| s.reserve_seqs(1)).unwrap();
    assert!(next > last, "reused: {next} <= {last}");
    // A replaced database starts above the ceiling as well.
    drop(s);
    std::fs::remove_file(f.dir.path().join("buffer.db")).unwrap();
    let _ = std::fs::remove_file(f.dir.path().join("buffer.db-wal"));
    let ceiling = seq_ceiling::read(&f.dir.path().join("buffer.db.seq"))
        .unwrap()
        .unwrap();
    let mut s = f.open();
    assert!(s.in_tx(|s| s.reserve_seqs(1)).unwrap() >= ceiling.min(next + 1));
}

/// Regression: the reserve was written without fsync and only checked for existence, so a
/// power cut could leave it empty for good.
#[test]
fn an_empty_or_short_reserve_file_is_made_whole_at_open() {
    let f = Fixture::new();
    let reserve = f.dir.path().join("buffer.db.reserve");
    drop(f.open());
    assert_eq!(
        std::fs::metadata(&reserve).unwrap().len(),
        RESERVE_BYTES as u64
    );
    std::fs::write(&reserve, b"").unwrap();
    drop(f.open());
    assert_eq!(
        std::fs::metadata(&reserve).unwrap().len(),
        RESERVE_BYTES as u64
    );
    std::fs::write(&reserve, vec![0u8; 4096]).unwrap();
    drop(f.open());
    assert_eq!(
        std::fs::metadata(&reserve).unwrap().len(),
        RESERVE_BYTES as u64
    );
}

#[test]
fn downsampled_points_go_out_as_aggregates_that_account_for_every_raw_point() {
    let f = Fixture::new();
    let mut s = f.open_with(Fixture::limits(1024 * 1024));
    let mut raw = 0usize;
    while s.used_bytes().unwrap() <= s.limits.db_budget() {
        raw += s
            .in_tx(|s| s.add_points(&series("m", raw as i64 * 1000, 5000)))
            .unwrap();
    }
    s.enforce_quota().unwrap();
    assert_eq!(
        f.health
            .points_evicted
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let mut v = f.verifier();
    let mut total = 0u64;
    let mut aggregates = 0;
    let mut after = 0;
    loop {
        let msgs = s.in_tx(|s| s.next_messages(after, 50)).unwrap();
        let Some(last) = msgs.last() else { break };
        after = last.seq;
        for m in &msgs {
            let topic = storefleet_protocol::Topic::format(
                "gw-1",
                storefleet_protocol::Direction::Up,
                m.kind,
            );
            if let Message::Telemetry(b) = v.verify(&topic, &m.payload, 0).unwrap().message {
                for p in b.series.iter().flat_map(|s| &s.points) {
                    match p.agg {
                        Some(a) => {
                            aggregates += 1;
                            assert!(a.min <= p.v && p.v <= a.max);
                            total += u64::from(a.n);
                        }
                        None => total += 1,
                    }
                }
            }
        }
    }
    assert!(aggregates > 0);
    assert_eq!(
        total, raw as u64,
        "aggregates carry the count of the points they replace"
    );
}

#[test]
fn a_database_found_corrupt_while_running_is_replaced_and_reported() {
    let f = Fixture::new();
    let mut s = f.open();
    s.in_tx(|s| s.add_points(&series("m", 0, 10))).unwrap();
    s.recover(&BufferError::Corrupt(
        "database disk image is malformed".into(),
    ))
    .unwrap();
    assert_eq!(s.points, 0, "a fresh database");
    let aside = std::fs::read_dir(f.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .count();
    assert_eq!(aside, 1);
    let msgs = s.in_tx(|s| s.next_messages(0, 10)).unwrap();
    let env = f
        .verifier()
        .verify("sf/v1/gw-1/up/event", &msgs[0].payload, 0)
        .unwrap();
    match env.message {
        Message::Event(e) => {
            assert_eq!(e.code, "buffer.corrupt");
            assert!(e.data["error"].as_str().unwrap().contains("malformed"));
        }
        other => panic!("{other:?}"),
    }
    // And it keeps working.
    s.in_tx(|s| s.add_points(&series("m", 0, 3))).unwrap();
    assert_eq!(s.points, 3);
    assert!(super::is_corruption(&BufferError::Corrupt(String::new())));
}

/// Telemetry held for the closed hours stays in the buffer while the store is open, and
/// an event goes at once all the same; once the store is closed (here: no trading hours)
/// the readings go. Live readings wait the delay for company, then go together.
#[test]
fn upload_windows_hold_telemetry_but_never_events() {
    let f = Fixture::new();
    let open_all_day = Upload {
        telemetry_closed_only: true,
        store_time: Some(storefleet_schedule::StoreTime::new("24/7", "UTC").unwrap()),
        ..Upload::default()
    };
    let kinds = |msgs: &[Outgoing]| msgs.iter().map(|m| m.kind).collect::<Vec<_>>();
    {
        let mut s = f.open().with_upload(open_all_day);
        s.in_tx(|s| s.add_points(&series("m", 0, 5))).unwrap();
        s.in_tx(|s| s.add_event(&event("e1", 100))).unwrap();
        let msgs = s.in_tx(|s| s.next_messages(0, 10)).unwrap();
        assert_eq!(kinds(&msgs), [Kind::Event]);
        s.in_tx(|s| s.ack(&[msgs[0].seq])).unwrap();
    }
    let mut s = f.open();
    let msgs = s.in_tx(|s| s.next_messages(0, 10)).unwrap();
    assert_eq!(kinds(&msgs), [Kind::Telemetry]);
    s.in_tx(|s| s.ack(&[msgs[0].seq])).unwrap();

    let mut s = s.with_upload(Upload {
        delay: std::time::Duration::from_millis(300),
        ..Upload::default()
    });
    s.in_tx(|s| s.add_points(&series("m", 10, 3))).unwrap();
    assert!(s.in_tx(|s| s.next_messages(0, 10)).unwrap().is_empty());
    s.in_tx(|s| s.add_points(&series("m", 20, 3))).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(350));
    let msgs = s.in_tx(|s| s.next_messages(0, 10)).unwrap();
    assert_eq!(kinds(&msgs), [Kind::Telemetry]);
    assert_eq!(telemetry(&mut f.verifier(), &msgs[0]).1.len(), 6);
}
