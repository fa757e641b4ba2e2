//! Printer queue recovery through CUPS's own command-line tools (`lpstat`, `cupsenable`,
//! `cupsaccept`, `cancel`, `lp`), so that it works with whatever CUPS the gateway runs and
//! honours `CUPS_SERVER` like every CUPS client.
//!
//! - `cups.queue_state { queue, stale_after_secs = 600 }`: holds when the queue exists, is
//!   enabled, accepts jobs and has no job older than `stale_after_secs`.
//! - `cups.enable { queue }`: enables the queue and makes it accept jobs.
//! - `cups.cancel_stale { queue, older_than_secs = 600 }`: cancels the jobs older than that
//!   (a receipt from an hour ago should not print when the queue comes back).
//! - `cups.test_page { queue }`: queues a short test page.

use std::fmt::Write as _;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Deserialize;

use super::{Cx, Done};
use crate::process::{run_args, Opts};

const TIMEOUT: Duration = Duration::from_secs(30);

fn default_stale() -> u64 {
    600
}

/// `cups.queue_state`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueState {
    /// Queue (printer) name.
    pub queue: String,
    /// A job older than this is stuck, seconds.
    #[serde(default = "default_stale")]
    pub stale_after_secs: u64,
}

/// `cups.enable`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enable {
    /// Queue name.
    pub queue: String,
}

/// `cups.cancel_stale`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelStale {
    /// Queue name.
    pub queue: String,
    /// Jobs older than this are cancelled, seconds.
    #[serde(default = "default_stale")]
    pub older_than_secs: u64,
}

/// `cups.test_page`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestPage {
    /// Queue name.
    pub queue: String,
}

/// A queue as `lpstat` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Queue {
    /// Printing is enabled (not paused).
    pub enabled: bool,
    /// Why it is disabled, as CUPS says.
    pub reason: String,
    /// New jobs are accepted.
    pub accepting: bool,
    /// Pending jobs: id and submission time.
    pub jobs: Vec<(String, Timestamp)>,
}

fn valid_queue(q: &str) -> Result<(), String> {
    let ok = !q.is_empty()
        && q.len() <= 127
        && !q.starts_with('-')
        && q.bytes()
            .all(|b| b.is_ascii_graphic() && !b"/#\\'\"".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("{q:?} is not a CUPS queue name"))
    }
}

/// Runs a CUPS tool. They take no `--`; queue names and job ids are checked not to start
/// with `-` instead.
async fn tool(argv: &[&str], cx: &Cx) -> Result<String, String> {
    let o = run_args(argv, &Opts::new(TIMEOUT, cx.policy.max_output_bytes)).await?;
    if o.success() {
        Ok(o.text)
    } else {
        Err(format!("{}: {}", argv[0], o.describe()))
    }
}

/// Reads a queue's state.
pub async fn read(queue: &str, cx: &Cx) -> Result<Queue, String> {
    valid_queue(queue)?;
    let printer = tool(&["lpstat", "-p", queue], cx).await?;
    let accepting = tool(&["lpstat", "-a", queue], cx).await?;
    let jobs = tool(&["lpstat", "-o", queue], cx).await?;
    parse(queue, &printer, &accepting, &jobs, &TimeZone::system())
}

/// Parses `lpstat -p`, `lpstat -a` and `lpstat -o` output (C locale; times in `tz`).
pub fn parse(
    queue: &str,
    printer: &str,
    accepting: &str,
    jobs: &str,
    tz: &TimeZone,
) -> Result<Queue, String> {
    let mut q = Queue::default();
    let head = format!("printer {queue} ");
    let mut lines = printer.lines();
    let first = lines
        .find(|l| l.starts_with(&head))
        .ok_or_else(|| format!("lpstat does not know queue {queue}: {}", printer.trim()))?;
    q.enabled = !first[head.len()..].starts_with("disabled");
    if !q.enabled {
        q.reason = lines
            .next()
            .map(|l| l.trim().to_owned())
            .unwrap_or_default();
    }
    q.accepting = accepting
        .lines()
        .any(|l| l.starts_with(&format!("{queue} accepting")));
    let prefix = format!("{queue}-");
    for line in jobs.lines().filter(|l| l.starts_with(&prefix)) {
        let mut fields = line.split_whitespace();
        let id = fields.next().unwrap_or_default().to_owned();
        // id, user, size, then the date: "Sun Nov 22 18:09:11 2026"
        let date: Vec<&str> = fields.skip(2).collect();
        let date = date.join(" ");
        let at = jiff::fmt::strtime::parse("%a %b %d %H:%M:%S %Y", &date)
            .and_then(|t| t.to_datetime())
            .and_then(|dt| dt.to_zoned(tz.clone()))
            .map_err(|e| format!("job {id}: cannot read its time {date:?}: {e}"))?;
        q.jobs.push((id, at.timestamp()));
    }
    Ok(q)
}

impl Queue {
    fn stale(&self, secs: u64, now: Timestamp) -> Vec<&str> {
        self.jobs
            .iter()
            .filter(|(_, at)| now.duration_since(*at).as_secs() >= secs as i64)
            .map(|(id, _)| id.as_str())
            .collect()
    }

    fn describe(&self, queue: &str, stale: usize, secs: u64) -> String {
        let mut s = format!(
            "{queue}: {}, {}, {} job(s)",
            if self.enabled {
                "enabled".to_owned()
            } else if self.reason.is_empty() {
                "disabled".to_owned()
            } else {
                format!("disabled ({})", self.reason)
            },
            if self.accepting {
                "accepting"
            } else {
                "rejecting jobs"
            },
            self.jobs.len()
        );
        if stale > 0 {
            let _ = write!(s, ", {stale} older than {secs} s");
        }
        s
    }
}

impl QueueState {
    /// Runs it.
    pub async fn run(&self, cx: &Cx) -> Done {
        match read(&self.queue, cx).await {
            Ok(q) => {
                let stale = q.stale(self.stale_after_secs, Timestamp::now()).len();
                Done::from(
                    q.enabled && q.accepting && stale == 0,
                    q.describe(&self.queue, stale, self.stale_after_secs),
                )
            }
            Err(e) => Done::fail(e),
        }
    }
}

impl Enable {
    /// Runs it.
    pub async fn run(&self, cx: &Cx) -> Done {
        if let Err(e) = valid_queue(&self.queue) {
            return Done::fail(e);
        }
        for t in ["cupsenable", "cupsaccept"] {
            if let Err(e) = tool(&[t, &self.queue], cx).await {
                return Done::fail(e);
            }
        }
        Done::ok(format!("{}: enabled and accepting", self.queue))
    }
}

impl CancelStale {
    /// Runs it.
    pub async fn run(&self, cx: &Cx) -> Done {
        let q = match read(&self.queue, cx).await {
            Ok(q) => q,
            Err(e) => return Done::fail(e),
        };
        let stale = q.stale(self.older_than_secs, Timestamp::now());
        let mut failed = Vec::new();
        for id in &stale {
            if let Err(e) = tool(&["cancel", id], cx).await {
                failed.push(e);
            }
        }
        if failed.is_empty() {
            Done::ok(format!(
                "{}: cancelled {} job(s) older than {} s{}{}",
                self.queue,
                stale.len(),
                self.older_than_secs,
                if stale.is_empty() { "" } else { ": " },
                stale.join(", ")
            ))
        } else {
            Done::fail(failed.join("; "))
        }
    }
}

impl TestPage {
    /// Runs it.
    pub async fn run(&self, cx: &Cx) -> Done {
        if let Err(e) = valid_queue(&self.queue) {
            return Done::fail(e);
        }
        let file = std::env::temp_dir().join(format!("storefleet-testpage-{}.txt", self.queue));
        let text = format!(
            "Storefleet test page\nqueue {}\n{}\n",
            self.queue,
            Timestamp::now()
        );
        if let Err(e) = std::fs::write(&file, text) {
            return Done::fail(format!("{}: {e}", file.display()));
        }
        let path = file.to_string_lossy().into_owned();
        let r = tool(
            &["lp", "-d", &self.queue, "-t", "Storefleet test page", &path],
            cx,
        )
        .await;
        let _ = std::fs::remove_file(&file);
        match r {
            Ok(out) => Done::ok(out.trim().to_owned()),
            Err(e) => Done::fail(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lpstat_output_reads_into_a_queue() {
        let q = parse(
            "receipt",
            "printer receipt disabled since Mon Nov  2 18:09:11 2026 -\n\tPaused\n",
            "receipt not accepting requests since Mon Nov  2 18:09:19 2026 -\n\tRejecting Jobs\n",
            "receipt-1                root              1024   Mon Nov  2 18:09:11 2026\n\
             receipt-12               pos               2048   Mon Nov 23 07:00:00 2026\n",
            &TimeZone::UTC,
        )
        .unwrap();
        assert!(!q.enabled && !q.accepting);
        assert_eq!(q.reason, "Paused");
        assert_eq!(q.jobs.len(), 2);
        assert_eq!(q.jobs[1].0, "receipt-12");
        assert_eq!(q.jobs[0].1.to_string(), "2026-11-02T18:09:11Z");
        let now: Timestamp = "2026-11-23T07:05:00Z".parse().unwrap();
        assert_eq!(q.stale(600, now), vec!["receipt-1"]);
        assert!(q
            .describe("receipt", 1, 600)
            .contains("disabled (Paused), rejecting jobs, 2 job(s), 1 older"));
    }

    #[test]
    fn an_unknown_queue_or_a_bad_name_is_named() {
        let e = parse(
            "x",
            "lpstat: Invalid destination name in list \"x\".",
            "",
            "",
            &TimeZone::UTC,
        )
        .unwrap_err();
        assert!(e.contains("queue x"), "{e}");
        assert!(valid_queue("-E").is_err());
        assert!(valid_queue("a/b").is_err());
        assert!(valid_queue("receipt_1").is_ok());
    }
}
