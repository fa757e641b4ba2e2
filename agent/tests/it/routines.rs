//! Routines end to end with the real agent binary: real files with real ages and sizes,
//! a real CUPS (installed by `scripts/install-cups.sh`; skipped with a note where it is not
//! running), refusals of what the config does not allow and of forged or modified routine
//! commands, and a task sent while the agent is offline that runs exactly once.

use std::path::Path;
use std::process::Command as Proc;
use std::time::{Duration, SystemTime};

use rumqttc::QoS;
use storefleet_protocol::message::{CommandAction, CommandStatus};
use storefleet_protocol::routine::{Outcome, RunRecord};
use storefleet_protocol::{now_ms, Direction, Kind, SigningKey, Topic};
use storefleet_testkit::agent::AgentHome;
use storefleet_testkit::broker::BrokerProcess;
use storefleet_testkit::proxy::Proxy;
use storefleet_testkit::sink::Sink;

use crate::common::{agent_home, command, controller_client, keys, metric, wait_online};

/// `storefleet-agent routine run NAME` through the real CLI; its stdout and success.
fn run_cli(home: &AgentHome, name: &str) -> (bool, String) {
    let out = home
        .command()
        .args(["routine", "run", name, "--json"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn record(text: &str) -> RunRecord {
    let start = text
        .find('{')
        .unwrap_or_else(|| panic!("no record in {text}"));
    let end = text.rfind('}').unwrap();
    serde_json::from_str(&text[start..=end]).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn write_routine(home: &AgentHome, name: &str, text: &str) {
    let dir = home.dir.path().join("routines.d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
}

fn set_age(path: &Path, days: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_and_backup_work_on_real_files() {
    let data = tempfile::tempdir().unwrap();
    let logs = data.path().join("logs");
    let store = data.path().join("store");
    let backups = data.path().join("backup");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(store.join("prices")).unwrap();
    for i in 0..5 {
        let p = logs.join(format!("pos.log.{i}"));
        std::fs::write(&p, vec![b'x'; 10_000]).unwrap();
        set_age(&p, 20 + i);
    }
    for i in 0..3 {
        let p = logs.join(format!("pos-recent-{i}.log"));
        std::fs::write(&p, vec![b'y'; 1024 * 1024]).unwrap();
        set_age(&p, 3 - i); // recent-0 is the oldest of them
    }
    std::fs::write(logs.join("keep.txt"), b"not a log").unwrap();
    set_age(&logs.join("keep.txt"), 100);
    std::fs::write(store.join("prices/today.csv"), "sku;price\n1;2.50\n").unwrap();
    std::fs::write(store.join("journal.db"), vec![7u8; 50_000]).unwrap();

    let broker = BrokerProcess::start();
    let home = agent_home(
        broker.addr,
        &format!(
            "[routines]\nallow = [\"files.*\", \"backup.*\", \"disk.check\"]\npaths = [{:?}]\n",
            data.path().display().to_string()
        ),
    );
    write_routine(
        &home,
        "log-cleanup",
        &include_str!("../../routines/log-cleanup.toml")
            .replace("/var/log/pos", &logs.display().to_string())
            .replace("max_total_mb = 500", "max_total_mb = 2")
            .replace(
                "path = \"/var\", min_free_percent = 10",
                "path = \"/\", min_free_percent = 0",
            ),
    );
    write_routine(
        &home,
        "nightly-backup",
        &include_str!("../../routines/nightly-backup.toml")
            .replace("/srv/store/data", &store.display().to_string())
            .replace("/srv/backup", &backups.display().to_string())
            .replace("keep = 7", "keep = 2"),
    );
    let sink = Sink::start(broker.addr, keys(&home)).await;
    let mut agent = home.spawn();
    wait_online(&home, &sink).await;

    let (ok, text) = run_cli(&home, "log-cleanup");
    assert!(ok, "{text}");
    let r = record(&text);
    assert_eq!(r.outcome, Outcome::Healed, "{text}");
    let mut left: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["keep.txt", "pos-recent-1.log", "pos-recent-2.log"],
        "old logs by age, then the oldest recent one by size; other files untouched"
    );
    assert!(
        r.steps[1].output.contains("deleted 6 file(s)"),
        "{:?}",
        r.steps[1]
    );
    // Run again: nothing to do.
    let (ok, text) = run_cli(&home, "log-cleanup");
    assert!(ok, "{text}");
    assert_eq!(record(&text).outcome, Outcome::AlreadyFine);

    for round in 0..3 {
        let (ok, text) = run_cli(&home, "nightly-backup");
        assert!(ok, "round {round}: {text}");
        assert_eq!(record(&text).outcome, Outcome::Healed, "{text}");
        tokio::time::sleep(Duration::from_millis(1100)).await; // one archive name per second
    }
    let archives: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archives.len(), 2, "keep = 2: {archives:?}");
    let listing = Proc::new("tar")
        .args(["-tzf", archives[0].to_str().unwrap()])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("store/prices/today.csv") && listing.contains("store/journal.db"),
        "{listing}"
    );

    // The records reach the controller side, each once.
    assert!(
        sink.wait(Duration::from_secs(10), |s| s.runs.len() == 5)
            .await,
        "{:?}",
        sink.with(|s| s.runs.len())
    );
    assert_eq!(
        metric(agent.ingest, "storefleet_agent_routine_runs_total").await,
        5
    );
    assert!(agent.terminate().success());
}

fn cups_running() -> bool {
    Proc::new("lpstat")
        .arg("-r")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("scheduler is running"))
}

/// Whether CUPS runs here (see [`crate::common::peer_here`]).
pub(crate) fn cups_here() -> bool {
    crate::common::peer_here(
        cups_running(),
        "STOREFLEET_TEST_CUPS",
        "CUPS is not running",
        "scripts/install-cups.sh",
    )
}

pub(crate) fn sh(args: &[&str]) -> String {
    let o = Proc::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn cupsd_pid() -> Option<String> {
    let o = Proc::new("pgrep").args(["-x", "cupsd"]).output().ok()?;
    let s = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    (!s.is_empty()).then_some(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printer_queue_recovery_and_service_restart_against_real_cups() {
    if !cups_here() {
        return;
    }
    let queue = format!("sf-{:08x}", rand::random::<u32>());
    sh(&["lpadmin", "-p", &queue, "-E", "-v", "file:///dev/null"]);
    sh(&["cupsdisable", "-r", "paper out", &queue]);
    for i in 0..3 {
        let f = std::env::temp_dir().join(format!("{queue}-{i}.txt"));
        std::fs::write(&f, format!("receipt {i}\n")).unwrap();
        sh(&["lp", "-d", &queue, f.to_str().unwrap()]);
    }
    tokio::time::sleep(Duration::from_millis(2100)).await; // the jobs become stale (2 s)

    let broker = BrokerProcess::start();
    let home = agent_home(
        broker.addr,
        "[routines]\nallow = [\"cups.*\", \"service.*\"]\nservices = [\"cups\"]\n",
    );
    write_routine(
        &home,
        "receipt-printer-unstick",
        &include_str!("../../routines/receipt-printer-unstick.toml")
            .replace("queue = \"receipt\"", &format!("queue = \"{queue}\""))
            .replace("= 300", "= 2"),
    );
    write_routine(
        &home,
        "cups-restart",
        "name = \"cups-restart\"\nversion = 1\n\
         [[steps]]\nkind = \"action\"\nname = \"restart cups\"\naction = \"service.restart\"\nargs = { name = \"cups\" }\n\
         [[steps]]\nkind = \"verify\"\nname = \"cups running\"\naction = \"service.status\"\nargs = { name = \"cups\" }\nretries = 3\nretry_delay_secs = 1\n",
    );
    write_routine(
        &home,
        "test-page",
        &format!(
            "name = \"test-page\"\nversion = 1\n\
             [[steps]]\nkind = \"action\"\nname = \"print\"\naction = \"cups.test_page\"\nargs = {{ queue = \"{queue}\" }}\n\
             [[steps]]\nkind = \"verify\"\nname = \"idle\"\naction = \"cups.queue_state\"\nargs = {{ queue = \"{queue}\" }}\n"
        ),
    );
    let sink = Sink::start(broker.addr, keys(&home)).await;
    let mut agent = home.spawn();
    wait_online(&home, &sink).await;

    let (ok, text) = run_cli(&home, "receipt-printer-unstick");
    let state = sh(&["lpstat", "-p", &queue]);
    let jobs = sh(&["lpstat", "-o", &queue]);
    let (page_ok, page) = run_cli(&home, "test-page");
    sh(&["lpadmin", "-x", &queue]);
    assert!(page_ok, "{page}");
    assert!(
        record(&page).steps[0].output.contains("request id is"),
        "{page}"
    );
    assert!(ok, "{text}");
    let r = record(&text);
    assert_eq!(r.outcome, Outcome::Healed, "{text}");
    assert!(
        !r.steps[0].ok && r.steps[0].output.contains("disabled (paper out)"),
        "{:?}",
        r.steps[0]
    );
    assert!(
        r.steps[1].output.contains("cancelled 3 job(s)"),
        "{:?}",
        r.steps[1]
    );
    assert!(state.contains("enabled"), "{state}");
    assert!(jobs.trim().is_empty(), "stale jobs left: {jobs}");
    assert!(
        sink.wait(Duration::from_secs(10), |s| s
            .runs
            .iter()
            .any(|x| x.id == r.id && x.outcome == Outcome::Healed))
            .await,
        "healed run record not delivered"
    );

    let before = cupsd_pid().expect("cupsd runs");
    let (ok, text) = run_cli(&home, "cups-restart");
    assert!(ok, "{text}");
    assert_eq!(record(&text).outcome, Outcome::Healed, "{text}");
    let after = cupsd_pid().expect("cupsd runs again");
    assert_ne!(before, after, "the cupsd process was replaced");
    assert!(cups_running());
    assert!(agent.terminate().success());
}

fn routine_command(id: &str, document: &str, seq: u64, to: &str, key: &SigningKey) -> Vec<u8> {
    let action = CommandAction::RunRoutine {
        name: String::new(),
        document: document.into(),
        task: "t-1".into(),
        ignore_window: false,
    };
    command(id, action, seq, to, now_ms() + 600_000, key)
}

fn current_user() -> String {
    let uid = nix::unistd::geteuid();
    nix::unistd::User::from_uid(uid)
        .unwrap()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_routines_and_an_offline_task_that_runs_exactly_once() {
    let broker = BrokerProcess::start();
    let proxy = Proxy::start(broker.addr).await;
    let work = tempfile::tempdir().unwrap();
    let tally = work.path().join("tally");
    let home = agent_home(
        proxy.addr,
        &format!(
            "[routines]\nallow = [\"exec\", \"disk.check\"]\n\
             [routines.commands.tally]\nargv = [\"/bin/sh\", \"-c\", \"echo run >> {}\"]\nuser = \"{}\"\n",
            tally.display(),
            current_user()
        ),
    );
    let sink = Sink::start(broker.addr, keys(&home)).await;
    let mut agent = home.spawn();
    wait_online(&home, &sink).await;
    let ctl = controller_client(broker.addr);
    let topic = Topic::format(&home.id, Direction::Down, Kind::Command);
    let key = &home.controller;
    let tally_doc = "name = \"tally\"\nversion = 1\n\
        [[steps]]\nkind = \"action\"\nname = \"count\"\naction = \"exec\"\nargs = { command = \"tally\" }\n\
        [[steps]]\nkind = \"verify\"\nname = \"disk\"\naction = \"disk.check\"\nargs = { min_free_percent = 0 }\n";

    // Not allowed by config: refused with the setting that refuses it.
    let restart = "name = \"restart\"\nversion = 1\n\
        [[steps]]\nkind = \"action\"\nname = \"restart\"\naction = \"service.restart\"\nargs = { name = \"cups\" }\n\
        [[steps]]\nkind = \"verify\"\nname = \"status\"\naction = \"service.status\"\nargs = { name = \"cups\" }\n";
    ctl.publish(
        &topic,
        QoS::AtLeastOnce,
        false,
        routine_command("c-restart", restart, 1, &home.id, key),
    )
    .await
    .unwrap();
    // Forged: signed by a key that is not the controller's.
    let forger = SigningKey::generate().unwrap();
    ctl.publish(
        &topic,
        QoS::AtLeastOnce,
        false,
        routine_command("c-forged", tally_doc, 2, &home.id, &forger),
    )
    .await
    .unwrap();
    // Modified: the controller signed it, then the routine's command was changed on the way.
    let mut modified = routine_command("c-modified", tally_doc, 3, &home.id, key);
    let at = modified
        .windows(5)
        .position(|w| w == b"tally")
        .expect("document in frame");
    modified[at] = b'T';
    ctl.publish(&topic, QoS::AtLeastOnce, false, modified)
        .await
        .unwrap();
    assert!(
        sink.wait(Duration::from_secs(10), |s| !s.results.is_empty())
            .await,
        "no result for the disallowed routine"
    );
    let mut refused = 0;
    for _ in 0..50 {
        refused = metric(agent.ingest, "storefleet_agent_commands_refused_total").await;
        if refused >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refused, 2, "forged and modified are refused and counted");
    assert_eq!(
        metric(agent.ingest, "storefleet_agent_routines_refused_total").await,
        1
    );
    sink.with(|s| {
        assert_eq!(s.results.len(), 1, "only the authentic command is answered");
        let r = &s.results[0];
        assert_eq!(r.status, CommandStatus::Rejected);
        assert!(
            r.message.contains("service.restart") && r.message.contains("routines.allow"),
            "{}",
            r.message
        );
    });
    assert!(!tally.exists(), "nothing ran");

    // Offline: the task waits at the broker, arrives on reconnect, runs once even though
    // it is delivered again (same frame) and re-sent (same id, new seq).
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let task = routine_command("c-tally", tally_doc, 4, &home.id, key);
    ctl.publish(&topic, QoS::AtLeastOnce, false, task.clone())
        .await
        .unwrap();
    ctl.publish(&topic, QoS::AtLeastOnce, false, task)
        .await
        .unwrap();
    ctl.publish(
        &topic,
        QoS::AtLeastOnce,
        false,
        routine_command("c-tally", tally_doc, 5, &home.id, key),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!tally.exists(), "offline: nothing ran yet");
    proxy.restore();
    assert!(
        sink.wait(Duration::from_secs(30), |s| s
            .results
            .iter()
            .any(
                |r| r.command_id == "c-tally" && r.status == CommandStatus::Ok
            )
            && !s.runs.is_empty())
            .await,
        "the task never ran after reconnecting"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    // And a restart does not run it again either.
    assert!(agent.terminate().success());
    let mut agent = home.spawn();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        std::fs::read_to_string(&tally).unwrap(),
        "run\n",
        "exactly once"
    );
    sink.with(|s| {
        let tally: Vec<_> = s
            .results
            .iter()
            .filter(|r| r.command_id == "c-tally")
            .map(|r| r.status)
            .collect();
        assert_eq!(
            tally,
            [CommandStatus::Running, CommandStatus::Ok],
            "said started, then the result, once each"
        );
        let r = s
            .results
            .iter()
            .find(|r| r.status == CommandStatus::Ok)
            .unwrap();
        let run: RunRecord = serde_json::from_value(r.data.clone()).unwrap();
        assert_eq!(run.id, "c-tally");
        assert_eq!(run.outcome, Outcome::Healed);
        assert_eq!(s.runs.iter().filter(|x| x.id == "c-tally").count(), 1);
    });
    let status = agent.terminate();
    assert!(
        status.success(),
        "agent exited with {status}:\n{}",
        home.log()
    );
}
