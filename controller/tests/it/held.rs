//! A message whose data the database refuses is held apart; the rest of its batch is
//! stored, every message is acknowledged, and the lane goes on. An admin retries it once
//! the cause is fixed, or drops it. Runs on both backends (the suite's two passes):
//!
//! - A gateway registered for a store that has no row (a stand-in for data the database
//!   refuses on both backends: its agent row breaks the store's foreign key). Retried after
//!   the store is created, it is stored.
//! - On PostgreSQL, an event carrying a NUL character, which PostgreSQL text cannot hold
//!   (SQLite stores it). It can never be stored there; the admin drops it.
//!
//! Before holding, such a batch was retried whole forever, unacknowledged, and blocked its
//! lane: the `all_acked` waits below fail then.

use storefleet_controller::cli::CliError;
use storefleet_protocol::message::{Event as AgentEvent, Severity};
use storefleet_protocol::{now_ms, Kind, Message, SigningKey};
use storefleet_storage::SqlExt as _;
use tokio_util::sync::CancellationToken;

use crate::common::eventually;
use crate::lanes::{controller, Gateway};

fn event(id: &str, message: &str) -> Message {
    Message::Event(AgentEvent {
        id: id.into(),
        ts: now_ms(),
        device: Some("printer-1".into()),
        code: "printer.jam".into(),
        severity: Severity::Critical,
        message: message.into(),
        data: serde_json::Map::new(),
    })
}

async fn count(state: &storefleet_controller::state::AppState, sql: &'static str) -> i64 {
    state.db.read(move |c| c.int(sql, &[], "n")).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_database_refuses_is_held_and_the_rest_stored() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::common::in_process_config(dir.path());
    let postgres = !config.database.url.is_empty();
    let token = CancellationToken::new();
    let key = SigningKey::generate().unwrap();
    let running = controller(config, &token, "gw-held", key.public_key()).await;
    let state = &running.state;
    let client = crate::common::client_of(&running);
    let ghost_key = SigningKey::generate().unwrap();
    state
        .registry
        .insert("gw-ghost", ghost_key.public_key(), "GHOST");

    let gw = Gateway::on(&running, "gw-held", key);
    let ghost = Gateway::on(&running, "gw-ghost", ghost_key);
    let t = now_ms() - 60_000;
    gw.reading(1, t).await;
    ghost.send(1, Kind::Event, event("ghost-1", "Jam")).await;
    gw.send(2, Kind::Event, event("nul-1", "Jam\0in tray 2"))
        .await;
    gw.reading(3, t + 1).await;
    gw.all_acked(3).await;
    ghost.all_acked(1).await;

    let held_now = if postgres { 2 } else { 1 };
    let list = eventually(10, "the refused messages held", || async {
        let l = client.held(100).await.unwrap();
        (l.count == held_now).then_some(l)
    })
    .await;
    let by_ghost = list
        .messages
        .iter()
        .find(|h| h.agent_id == "gw-ghost")
        .expect("the ghost's event is held");
    assert_eq!((by_ghost.seq, by_ghost.store.as_str()), (1, "GHOST"));
    assert_eq!(by_ghost.kind, "event");
    assert!(
        by_ghost.error.to_lowercase().contains("foreign key"),
        "the refusal is named: {}",
        by_ghost.error
    );
    if postgres {
        let nul = list.messages.iter().find(|h| h.agent_id == "gw-held");
        let nul = nul.expect("the NUL event is held");
        assert_eq!(nul.seq, 2);
        assert!(nul.error.contains("0x00"), "{}", nul.error);
    }
    // The rest is stored, each message once; the counter counts the held ones.
    eventually(10, "both readings stored", || async {
        (count(state, "SELECT count(*) AS n FROM points").await == 2).then_some(())
    })
    .await;
    // A batch rolled back before its messages were stored one by one left no series id
    // behind that a later batch used.
    let orphans = "SELECT count(*) AS n FROM points p LEFT JOIN series s ON s.id = p.series_id WHERE s.id IS NULL";
    assert_eq!(count(state, orphans).await, 0);
    let stored_events = count(state, "SELECT count(*) AS n FROM events").await;
    assert_eq!(
        stored_events,
        i64::from(!postgres),
        "SQLite stores the NUL event"
    );
    let mut metrics = String::new();
    state.stats.render(&mut metrics);
    assert!(
        metrics.contains(&format!(
            "storefleet_controller_ingest_messages_held_total {held_now}\n"
        )),
        "{metrics}"
    );

    // Retried before the cause is fixed: refused again, named, still held.
    let err = client.retry_held("gw-ghost", 1).await.unwrap_err();
    let CliError::Api { status, message } = err else {
        panic!("{err}")
    };
    assert_eq!(status, 422, "{message}");
    assert!(message.to_lowercase().contains("foreign key"), "{message}");
    assert_eq!(client.held(100).await.unwrap().count, held_now);

    // The store exists now: the retry stores it, and it is no longer held.
    let body =
        serde_json::json!({"code": "GHOST", "name": "Ghost", "region": "north", "timezone": "UTC"});
    client
        .call("PUT", "/api/v1/stores/GHOST", Some(&body))
        .await
        .unwrap();
    let r = client.retry_held("gw-ghost", 1).await.unwrap();
    assert!(r.stored);
    assert_eq!(
        count(
            state,
            "SELECT count(*) AS n FROM events WHERE event_id = 'ghost-1'"
        )
        .await,
        1
    );
    let left = client.held(100).await.unwrap();
    assert_eq!(left.count, held_now - 1);
    assert!(left.messages.iter().all(|h| h.agent_id != "gw-ghost"));
    let missing = client.retry_held("gw-ghost", 1).await.unwrap_err();
    assert!(
        matches!(missing, CliError::Api { status: 404, .. }),
        "{missing}"
    );

    if postgres {
        client.drop_held("gw-held", 2).await.unwrap();
        assert_eq!(client.held(100).await.unwrap().count, 0);
        let again = client.drop_held("gw-held", 2).await.unwrap_err();
        assert!(
            matches!(again, CliError::Api { status: 404, .. }),
            "{again}"
        );
    }

    // The lane goes on.
    gw.send(4, Kind::Event, event("after-1", "Jam")).await;
    gw.all_acked(4).await;
    eventually(10, "a later event stored", || async {
        (count(
            state,
            "SELECT count(*) AS n FROM events WHERE event_id = 'after-1'",
        )
        .await
            == 1)
            .then_some(())
    })
    .await;
    token.cancel();
    running.wait().await;
}
