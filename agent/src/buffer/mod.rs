//! The local buffer: everything the agent collects waits here until the broker has it.
//!
//! # Ownership
//!
//! One thread owns the SQLite connection ([`store::Store`]). Everyone else talks to it
//! through a [`Buffer`] handle over a bounded channel; the thread takes whatever requests
//! are queued (up to a cap), applies them in one transaction, commits, and only then
//! answers. An ingest request is acknowledged only after its transaction committed.
//!
//! # Format
//!
//! SQLite in WAL mode with exclusive locking (one process, one connection), schema versioned by `PRAGMA user_version` (see `schema.rs`). Tables:
//! `points` (one row per point or aggregate, in arrival order), `series` (device and metric
//! names), `events` (events and command results, as body JSON), `inventory` (one row, the
//! latest), `outbox` (sealed, signed messages waiting for a PUBACK), `commands_seen`
//! (command ids already run) and `meta` (the next `seq`).
//!
//! # Priority classes and limits
//!
//! - Events and command results are never dropped. They have their own quota
//!   (`buffer.events_max_bytes`); when it is full new ones are refused
//!   ([`BufferError::EventsFull`], HTTP 503 at ingest) and counted.
//! - Inventory is coalesced: only the latest is kept, and only a change is sent.
//! - Metrics live under the disk quota (`buffer.max_bytes`, database plus WAL); when over,
//!   the oldest are downsampled (raw -> 1 min -> 10 min -> 1 h), then evicted, oldest
//!   first, with counters for both (`quota.rs`). The file stays within the quota plus a
//!   slack of one group transaction (at most [`GROUP_MAX_POINTS`] points or one request
//!   body) for the database and one for the WAL: [`QUOTA_SLACK_BYTES`] in all.
//! - A disk that fills before the quota: the request that hit it gets
//!   [`BufferError::DiskFull`] (HTTP 503) and nothing of it is stored; the buffer gives up
//!   its reserve file (`buffer.db.reserve`, [`RESERVE_BYTES`], twice the most WAL kept
//!   between checkpoints, [`WAL_CHECKPOINT_BYTES`]) so it can go on
//!   sealing and deleting, lowers its budget to three quarters of what it holds, and
//!   reports a `buffer.disk_full` event. Metrics then give way as under the quota.
//! - A record leaves the buffer only when the broker acknowledged the message carrying it
//!   (see `seal.rs`). Live data is sealed before backlog.
//!
//! # What survives a power cut
//!
//! With `durability = "full"` (the default) every commit is fsynced before the answer:
//! whatever ingest acknowledged survives a power cut, and so do sealed messages. With
//! `"normal"` everything survives a crash of the agent, but a power cut may lose every
//! commit since the last WAL checkpoint: up to [`WAL_CHECKPOINT_BYTES`] of writes (ingested
//! points and events, sealed messages, acknowledgements, which then go out again). The
//! sequence counter never goes backwards in either mode (`seq_ceiling.rs`). A database found corrupt at start is moved aside
//! (`buffer.db.corrupt-<ms>`), replaced by an empty one, and reported as a
//! `buffer.corrupt` event; the agent keeps running.

mod downsample;
mod quota;
mod recovery;
mod schema;
mod seal;
mod seq_ceiling;
mod store;
#[cfg(test)]
mod tests;
mod upload;

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;

use storefleet_protocol::message::{CommandResult, Event, Inventory};
use storefleet_protocol::routine::RunRecord;
use storefleet_protocol::Kind;
use tokio::sync::{oneshot, Notify};

pub use downsample::{fold, Row};
pub use recovery::is_corruption;
pub use store::{new_event_id, Sealer, Store, MAX_NAME_LEN, RESERVE_BYTES, WAL_CHECKPOINT_BYTES};
pub use upload::Upload;

use crate::config::{BufferSection, Durability, SyncSection};

/// Most points applied in one group transaction.
pub const GROUP_MAX_POINTS: usize = 20_000;
/// Most requests applied in one group transaction.
pub const GROUP_MAX_JOBS: usize = 256;
/// The stated slack over `buffer.max_bytes` that the files may briefly use.
pub const QUOTA_SLACK_BYTES: u64 = 4 * 1024 * 1024;
/// Capacity of the request channel.
const CHANNEL: usize = 1024;

/// Errors from the buffer.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// SQLite failed.
    #[error("buffer database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The event quota is full; the event was not stored. Retry later.
    #[error("event buffer full ({limit} bytes); retry later")]
    EventsFull {
        /// The quota.
        limit: u64,
    },
    /// The disk is full; nothing from the failed request was stored. Retry later.
    #[error("buffer disk full; retry later")]
    DiskFull,
    /// The database is corrupt.
    #[error("buffer database corrupt: {0}")]
    Corrupt(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A record could not be serialised.
    #[error("cannot encode record: {0}")]
    Encode(String),
    /// The buffer thread has stopped.
    #[error("buffer is shut down")]
    Closed,
    /// The group transaction this request was part of failed to commit.
    #[error("buffer write failed: {0}")]
    Failed(String),
}

impl BufferError {
    /// Whether retrying later may succeed (the caller should answer 503, not 4xx or 500).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            BufferError::EventsFull { .. } | BufferError::DiskFull | BufferError::Closed
        )
    }

    fn classify(self) -> BufferError {
        match self {
            BufferError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DiskFull =>
            {
                BufferError::DiskFull
            }
            e => e,
        }
    }
}

/// Limits the store works within.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Quota for the database and its WAL.
    pub max_bytes: u64,
    /// Quota for events and command results.
    pub events_max_bytes: u64,
    /// Points per telemetry message.
    pub max_batch_points: usize,
    /// Bytes per message.
    pub max_batch_bytes: usize,
    /// fsync policy.
    pub durability: Durability,
    /// Send telemetry and inventory compressed (frame version 2).
    pub compress: bool,
}

impl Limits {
    /// From the config sections.
    pub fn from_config(b: &BufferSection, s: &SyncSection) -> Limits {
        Limits {
            max_bytes: b.max_bytes,
            events_max_bytes: b.events_max_bytes,
            max_batch_points: s.max_batch_points,
            max_batch_bytes: s.max_batch_bytes,
            durability: b.durability,
            compress: s.compress,
        }
    }

    /// Bytes the WAL may keep between checkpoints.
    pub fn wal_bytes(&self) -> u64 {
        self.max_bytes / 8
    }

    /// Bytes of database pages in use that trigger downsampling.
    pub fn db_budget(&self) -> u64 {
        self.max_bytes - self.wal_bytes()
    }
}

/// Points of one series to add.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesIn {
    /// Device id; `None` for the gateway.
    pub device: Option<String>,
    /// Metric name.
    pub metric: String,
    /// `(timestamp ms, value)`, oldest first.
    pub points: Vec<(i64, f64)>,
}

impl SeriesIn {
    /// One point per metric, all at time `t`, for `device` (`None`: the gateway).
    pub fn snapshot(device: Option<&str>, t: i64, metrics: Vec<(String, f64)>) -> Vec<SeriesIn> {
        metrics
            .into_iter()
            .map(|(metric, v)| SeriesIn {
                device: device.map(str::to_owned),
                metric,
                points: vec![(t, v)],
            })
            .collect()
    }
}

/// A sealed message ready to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Its sequence number.
    pub seq: u64,
    /// Its kind (the topic's last level).
    pub kind: Kind,
    /// The signed frame.
    pub payload: Vec<u8>,
}

type Reply<T> = oneshot::Sender<Result<T, BufferError>>;

/// Sends a job's result, or the group's commit failure.
type SendAnswer = Box<dyn FnOnce(Option<&BufferError>)>;

/// A job's answer, sent once the group's commit outcome is known.
struct Answer {
    send: SendAnswer,
    /// Set when the job failed because the database is corrupt.
    corruption: Option<String>,
    /// Set when the job failed because the disk is full.
    disk_full: bool,
}

enum Job {
    Points(Vec<SeriesIn>, Reply<usize>),
    Events(Vec<Event>, Reply<(usize, usize)>),
    Result(Box<CommandResult>, Reply<bool>),
    Run(Box<RunRecord>, Reply<bool>),
    Inventory(Box<Inventory>, Reply<bool>),
    Next {
        after: u64,
        max: usize,
        reply: Reply<Vec<Outgoing>>,
    },
    Ack(Vec<u64>),
    Reserve(u64, Reply<u64>),
    MarkBacklog,
    CommandSeen(String, Reply<bool>),
    UsedBytes(Reply<(u64, u64)>),
    SetUpload(Box<Upload>),
}

impl Job {
    fn points(&self) -> usize {
        match self {
            Job::Points(s, _) => s.iter().map(|s| s.points.len()).sum(),
            _ => 1,
        }
    }
}

/// A handle to the buffer thread. Cheap to clone.
#[derive(Clone)]
pub struct Buffer {
    tx: SyncSender<Job>,
    /// Notified after each commit that added something to send.
    pub ready: Arc<Notify>,
    /// The latest reading of every series added (for routine conditions).
    pub latest: Arc<crate::latest::Latest>,
}

impl Buffer {
    /// Opens the store and starts its owner thread. The thread ends when every handle is
    /// dropped, after finishing queued requests.
    pub fn start(store: Store) -> (Buffer, std::thread::JoinHandle<()>) {
        let (tx, rx) = sync_channel(CHANNEL);
        let ready = Arc::new(Notify::new());
        let notify = ready.clone();
        let handle = std::thread::Builder::new()
            .name("buffer".into())
            .spawn(move || owner(store, &rx, &notify))
            .expect("spawn buffer thread");
        (
            Buffer {
                tx,
                ready,
                latest: Arc::default(),
            },
            handle,
        )
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Job) -> Result<T, BufferError> {
        let (reply, rx) = oneshot::channel();
        let mut job = make(reply);
        // The channel is bounded: wait for room without blocking the async runtime.
        loop {
            match self.tx.try_send(job) {
                Ok(()) => break,
                Err(TrySendError::Full(j)) => {
                    job = j;
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                Err(TrySendError::Disconnected(_)) => return Err(BufferError::Closed),
            }
        }
        rx.await.map_err(|_| BufferError::Closed)?
    }

    /// Adds points; answers after they are committed.
    pub async fn add_points(&self, series: Vec<SeriesIn>) -> Result<usize, BufferError> {
        self.latest.record(&series);
        self.call(|r| Job::Points(series, r)).await
    }

    /// Adds an event; `false` if its id was already buffered.
    pub async fn add_event(&self, ev: Event) -> Result<bool, BufferError> {
        self.add_events(vec![ev]).await.map(|(added, _)| added == 1)
    }

    /// Adds events all together or none; returns `(added, already buffered)`.
    pub async fn add_events(&self, evs: Vec<Event>) -> Result<(usize, usize), BufferError> {
        self.call(|r| Job::Events(evs, r)).await
    }

    /// Adds a command result.
    pub async fn add_result(&self, res: CommandResult) -> Result<bool, BufferError> {
        self.call(|r| Job::Result(Box::new(res), r)).await
    }

    /// Adds a routine run record (never dropped; refused only when the event quota is full).
    pub async fn add_run(&self, run: RunRecord) -> Result<bool, BufferError> {
        self.call(|r| Job::Run(Box::new(run), r)).await
    }

    /// Stores the latest inventory; `true` when it changed.
    pub async fn set_inventory(&self, inv: Inventory) -> Result<bool, BufferError> {
        self.call(|r| Job::Inventory(Box::new(inv), r)).await
    }

    /// Messages to publish: unacked ones with a seq above `after`, then new ones.
    pub async fn next_messages(
        &self,
        after: u64,
        max: usize,
    ) -> Result<Vec<Outgoing>, BufferError> {
        self.call(|reply| Job::Next { after, max, reply }).await
    }

    /// Queues a job that needs no answer without blocking the caller: when the channel is
    /// full, a task waits for room, so the job is never dropped while the buffer runs.
    fn send_later(&self, job: Job) {
        match self.tx.try_send(job) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(job)) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let mut job = job;
                    loop {
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                        match tx.try_send(job) {
                            Err(TrySendError::Full(j)) => job = j,
                            _ => return,
                        }
                    }
                });
            }
        }
    }

    /// Seals by `upload` from now on (a reloaded config).
    pub fn set_upload(&self, upload: Upload) {
        self.send_later(Job::SetUpload(Box::new(upload)));
    }

    /// Tells the buffer the broker acknowledged these seqs; the messages are deleted.
    pub fn ack(&self, seqs: Vec<u64>) {
        self.send_later(Job::Ack(seqs));
    }

    /// Reserves `n` sequence numbers; returns the first.
    pub async fn reserve_seqs(&self, n: u64) -> Result<u64, BufferError> {
        self.call(|r| Job::Reserve(n, r)).await
    }

    /// Marks what is buffered now as backlog (called when the link comes back).
    pub fn mark_backlog(&self) {
        self.send_later(Job::MarkBacklog);
    }

    /// Records a command id; `true` the first time.
    pub async fn command_seen(&self, id: &str) -> Result<bool, BufferError> {
        let id = id.to_owned();
        self.call(|r| Job::CommandSeen(id, r)).await
    }

    /// `(pages in use in bytes, bytes on disk including the WAL)`.
    pub async fn used_bytes(&self) -> Result<(u64, u64), BufferError> {
        self.call(Job::UsedBytes).await
    }
}

fn owner(mut store: Store, rx: &Receiver<Job>, ready: &Notify) {
    let mut last_gauges = std::time::Instant::now();
    loop {
        let first = match rx.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(j) => j,
            Err(RecvTimeoutError::Timeout) => {
                let _ = store.publish_gauges();
                store.ensure_reserve();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut jobs = vec![first];
        let mut points = jobs[0].points();
        while jobs.len() < GROUP_MAX_JOBS && points < GROUP_MAX_POINTS {
            match rx.try_recv() {
                Ok(j) => {
                    points += j.points();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let (wrote, corrupt, disk_full) = run_group(&mut store, jobs);
        if disk_full {
            if let Err(e) = store.on_disk_full() {
                tracing::error!(error = %e, "Buffer could not make room on a full disk");
            }
            ready.notify_one();
        }
        if let Some(cause) = corrupt {
            if let Err(e) = store.recover(&cause) {
                tracing::error!(error = %e, "Buffer database corrupt and could not be replaced");
            }
            ready.notify_one();
        }
        if wrote {
            ready.notify_one();
            if let Err(e) = store.enforce_quota() {
                tracing::error!(error = %e, "Buffer quota enforcement failed");
            }
        }
        if wrote || last_gauges.elapsed().as_millis() > 500 {
            let _ = store.publish_gauges();
            last_gauges = std::time::Instant::now();
        }
    }
    let _ = store.publish_gauges();
    tracing::debug!("Buffer thread stopped");
}

/// Applies a group of jobs in one transaction and answers them after the commit. Returns
/// whether anything to send was added, the error if the database turned out corrupt, and
/// whether the disk was full.
fn run_group(store: &mut Store, jobs: Vec<Job>) -> (bool, Option<BufferError>, bool) {
    let mut answers: Vec<Answer> = Vec::with_capacity(jobs.len());
    let mut wrote = false;
    if let Err(e) = store.begin() {
        let e = e.classify();
        tracing::error!(error = %e, "Buffer transaction failed to begin");
        fail_all(jobs, &e);
        let full = matches!(e, BufferError::DiskFull);
        return (false, is_corruption(&e).then_some(e), full);
    }
    for job in jobs {
        match job {
            Job::Points(s, reply) => {
                let r = store.savepoint(|st| st.add_points(&s));
                wrote |= r.is_ok();
                answers.push(answer(reply, r));
            }
            Job::Events(evs, reply) => {
                let r = store.savepoint(|st| st.add_events(&evs));
                wrote |= matches!(r, Ok((added, _)) if added > 0);
                answers.push(answer(reply, r));
            }
            Job::Result(res, reply) => {
                let r = store.savepoint(|st| st.add_result(&res));
                wrote |= matches!(r, Ok(true));
                answers.push(answer(reply, r));
            }
            Job::Run(run, reply) => {
                let r = store.savepoint(|st| st.add_run(&run));
                wrote |= matches!(r, Ok(true));
                answers.push(answer(reply, r));
            }
            Job::Inventory(inv, reply) => {
                let r = store.savepoint(|st| st.set_inventory(&inv));
                wrote |= matches!(r, Ok(true));
                answers.push(answer(reply, r));
            }
            Job::Next { after, max, reply } => {
                let r = store.savepoint(|st| st.next_messages(after, max));
                answers.push(answer(reply, r));
            }
            Job::Ack(seqs) => {
                if let Err(e) = store.ack(&seqs) {
                    tracing::warn!(error = %e, "Buffer ack failed; the message will be sent again");
                }
            }
            Job::Reserve(n, reply) => answers.push(answer(reply, store.reserve_seqs(n))),
            Job::MarkBacklog => {
                if let Err(e) = store.mark_backlog() {
                    tracing::warn!(error = %e, "Buffer backlog mark failed");
                }
            }
            Job::CommandSeen(id, reply) => answers.push(answer(reply, store.command_seen(&id))),
            Job::UsedBytes(reply) => {
                let r = store.used_bytes().map(|u| (u, store.file_bytes()));
                answers.push(answer(reply, r));
            }
            Job::SetUpload(u) => store.upload = *u,
        }
    }
    let mut corrupt = answers.iter().find_map(|a| a.corruption.clone());
    let mut disk_full = answers.iter().any(|a| a.disk_full);
    let failure = store.commit().err().map(BufferError::classify);
    if let Some(e) = &failure {
        tracing::error!(error = %e, "Buffer commit failed; the group's requests get an error");
        store.rollback();
        if let Err(e) = store.reload_counts() {
            tracing::error!(error = %e, "Buffer counts could not be reloaded");
        }
        wrote = false;
    }
    if let Some(e) = failure.as_ref().filter(|e| is_corruption(e)) {
        corrupt = Some(e.to_string());
    }
    disk_full |= matches!(failure, Some(BufferError::DiskFull));
    for a in answers {
        (a.send)(failure.as_ref());
    }
    (wrote, corrupt.map(BufferError::Corrupt), disk_full)
}

fn answer<T: Send + 'static>(reply: Reply<T>, r: Result<T, BufferError>) -> Answer {
    let r = r.map_err(BufferError::classify);
    let corruption = match &r {
        Err(e) if is_corruption(e) => Some(e.to_string()),
        _ => None,
    };
    let disk_full = matches!(r, Err(BufferError::DiskFull));
    Answer {
        send: Box::new(move |failure| {
            let r = match failure {
                Some(e) => Err(copy_err(e)),
                None => r,
            };
            let _ = reply.send(r);
        }),
        corruption,
        disk_full,
    }
}

/// A copy of a commit failure for every request of the group.
fn copy_err(e: &BufferError) -> BufferError {
    match e {
        BufferError::DiskFull => BufferError::DiskFull,
        other => BufferError::Failed(other.to_string()),
    }
}

fn fail_all(jobs: Vec<Job>, e: &BufferError) {
    for job in jobs {
        match job {
            Job::Points(_, r) => drop(r.send(Err(copy_err(e)))),
            Job::Events(_, r) => drop(r.send(Err(copy_err(e)))),
            Job::Result(_, r) | Job::Run(_, r) | Job::Inventory(_, r) | Job::CommandSeen(_, r) => {
                drop(r.send(Err(copy_err(e))));
            }
            Job::Next { reply, .. } => drop(reply.send(Err(copy_err(e)))),
            Job::Reserve(_, r) => drop(r.send(Err(copy_err(e)))),
            Job::UsedBytes(r) => drop(r.send(Err(copy_err(e)))),
            Job::Ack(_) | Job::MarkBacklog | Job::SetUpload(_) => {}
        }
    }
}
