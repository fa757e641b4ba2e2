//! Fleet tasks on both backends: a task resolves its targets when made, an agent's report
//! counts once and only from the target's own agent, a report read before a later one stays
//! pending, the engine's state survives a reload, and operators' requests hold only while
//! a task runs.

use storefleet_protocol::message::{CommandResult, CommandStatus};
use storefleet_storage::args;

use crate::db::testing::on_each_backend;
use crate::db::DbError;
use crate::rollout::TargetState;
use crate::tasks::db::{self, Request};
use crate::tasks::TaskSpec;

fn result(command: &str, status: CommandStatus) -> CommandResult {
    CommandResult {
        command_id: command.into(),
        status,
        message: "done".into(),
        data: serde_json::json!({"outcome": "healed"}),
        finished_at: 5_000,
    }
}

#[test]
fn tasks_targets_reports_and_requests_on_both_backends() {
    let spec: TaskSpec = serde_json::from_value(serde_json::json!({
        "action": {"type": "routine", "name": "receipt-printer-unstick"},
        "select": {"all": true},
    }))
    .unwrap();
    on_each_backend("tasks", |backend, db| {
        db(&mut |c| {
            let e = db::create(c, "T0", &spec, "user:ana", 1_000).unwrap_err();
            assert!(matches!(&e, DbError::Invalid(m) if m.contains("no enrolled agent")), "{backend}: {e:?}");
            for (store, agent) in [("S1", "gw-1"), ("S2", "gw-2")] {
                c.execute(
                    "INSERT INTO stores(code, name, region, created_at) VALUES (?1, ?1, 'north', 0)",
                    args![store],
                )?;
                c.execute(
                    "INSERT INTO agents(id, public_key, store_code, enrolled_at) VALUES (?1, 'k', ?2, 0)",
                    args![agent, store],
                )?;
            }
            assert_eq!(db::create(c, "T1", &spec, "user:ana", 1_000)?, 2);
            let t = db::get(c, "T1")?;
            assert_eq!((t.total, t.counts.get("queued").copied()), (2, Some(2)), "{backend}");
            assert_eq!((t.name.as_str(), t.created_by.as_str(), t.phase.as_str()), ("receipt-printer-unstick", "user:ana", "running"));
            assert_eq!(t.waves.iter().map(|w| w.targets).sum::<u64>(), 2);
            assert!(matches!(db::get(c, "T9"), Err(DbError::NotFound(_))));

            // Reports: only the target's own agent; a final one once.
            let cmd = db::targets(c, "T1", None)?[0].command_id.clone();
            assert!(!db::report(c, "gw-2", &result(&cmd, CommandStatus::Ok))?, "{backend}: another agent");
            assert!(db::report(c, "gw-1", &result(&cmd, CommandStatus::Running))?);
            assert!(db::report(c, "gw-1", &result(&cmd, CommandStatus::Ok))?);
            assert!(!db::report(c, "gw-1", &result(&cmd, CommandStatus::Failed))?, "{backend}: redelivery");
            let pending = db::pending_reports(c, "T1")?;
            assert_eq!(pending.len(), 1);
            assert!(pending[0].started && pending[0].reported.as_deref() == Some("ok"), "{backend}: {pending:?}");
            // Read before the final report: stays pending; as read: cleared.
            let mut stale = pending.clone();
            stale[0].reported = None;
            db::clear_reports(c, "T1", &stale)?;
            assert_eq!(db::pending_reports(c, "T1")?.len(), 1, "{backend}");
            db::clear_reports(c, "T1", &pending)?;
            assert!(db::pending_reports(c, "T1")?.is_empty());

            // The engine's state, saved and loaded.
            let mut active = db::load(c, "T1")?.unwrap();
            assert_eq!(active.places.len(), 2);
            assert_eq!(active.places["gw-1"].1, cmd);
            let changed = vec![
                ("gw-1".to_owned(), TargetState::Succeeded),
                ("gw-2".to_owned(), TargetState::Sent { at: 2_000 }),
            ];
            db::save(c, "T1", &changed, &active.rollout, 3_000)?;
            let rows = db::targets(c, "T1", None)?;
            assert_eq!((rows[0].state.as_str(), rows[0].finished_at), ("succeeded", Some(3_000)), "{backend}");
            assert_eq!((rows[1].state.as_str(), rows[1].sent_at, rows[1].finished_at), ("sent", Some(2_000), None));
            assert_eq!(db::targets(c, "T1", Some("sent"))?.len(), 1);
            // Reloaded, the rollout carries what was saved.
            active = db::load(c, "T1")?.unwrap();
            assert_eq!(active.rollout.state_of("gw-1"), Some(TargetState::Succeeded), "{backend}");
            assert_eq!(active.rollout.state_of("gw-2"), Some(TargetState::Sent { at: 2_000 }));

            // Requests while running; the list, newest first.
            db::request(c, "T1", Request::Pause)?;
            assert_eq!(db::unfinished(c)?, vec![("T1".to_owned(), Some(Request::Pause))]);
            db::clear_request(c, "T1", Request::Resume)?;
            assert_eq!(db::unfinished(c)?[0].1, Some(Request::Pause), "{backend}: a newer request stays");
            db::clear_request(c, "T1", Request::Pause)?;
            assert_eq!(db::unfinished(c)?[0].1, None);
            assert!(matches!(db::request(c, "T9", Request::Pause), Err(DbError::NotFound(_))));
            assert_eq!(db::create(c, "T2", &spec, "user:bo", 2_000)?, 2);
            let ids: Vec<_> = db::list(c, 10)?.into_iter().map(|t| t.id).collect();
            assert_eq!(ids, ["T2", "T1"]);
            Ok(())
        })
        .unwrap();
    });
}
