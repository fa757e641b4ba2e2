//! Running a program (an exec probe, a routine action): no shell, stdin closed, stdout and stderr read together
//! up to a cap (the rest is read and thrown away so the program never blocks on a full
//! pipe), a timeout after which the program's whole process group is killed, and optionally
//! another user. If the future is dropped (the step's own timeout), the group is killed too.

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, User};
use tokio::io::{AsyncRead, AsyncReadExt};

/// How to run it.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Longest it may run.
    pub timeout: Duration,
    /// Output kept, bytes.
    pub cap: usize,
    /// Run as this user (name); `None`: as the agent.
    pub user: Option<String>,
    /// Keep stderr with stdout; `false` discards it (for output that is parsed).
    pub stderr: bool,
}

impl Opts {
    /// A timeout and an output cap, as the agent's user.
    pub fn new(timeout: Duration, cap: usize) -> Opts {
        Opts {
            timeout,
            cap,
            user: None,
            stderr: true,
        }
    }
}

/// What a program did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Exit code; `None` when killed by a signal or the timeout.
    pub code: Option<i32>,
    /// The timeout fired.
    pub timed_out: bool,
    /// stdout and stderr, interleaved as read, capped.
    pub text: String,
}

impl Output {
    /// Exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The output, or a line saying how it ended when there was none.
    pub fn describe(&self) -> String {
        let text = self.text.trim();
        let how = match (self.timed_out, self.code) {
            (true, _) => "timed out and was killed".to_owned(),
            (false, Some(c)) => format!("exit {c}"),
            (false, None) => "killed by a signal".to_owned(),
        };
        if text.is_empty() {
            how
        } else if self.success() {
            text.to_owned()
        } else {
            format!("{text} ({how})")
        }
    }
}

/// Kills the process group when dropped before the program was reaped.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
}

/// The uid and gid of a user name.
pub fn user_ids(name: &str) -> Result<(u32, u32), String> {
    let user = User::from_name(name)
        .map_err(|e| format!("cannot look up user {name:?}: {e}"))?
        .ok_or_else(|| format!("user {name:?} does not exist on this gateway"))?;
    Ok((user.uid.as_raw(), user.gid.as_raw()))
}

/// Runs `argv`; `Err` when it could not be started at all.
pub async fn run(argv: &[String], opts: &Opts) -> Result<Output, String> {
    let (program, rest) = argv
        .split_first()
        .ok_or_else(|| "empty command".to_owned())?;
    // A path is checked before spawning: the error names the file plainly (and does not
    // depend on how the exec failure travels back, which differs under emulators).
    if program.contains('/') {
        use std::os::unix::fs::PermissionsExt as _;
        match std::fs::metadata(program) {
            Err(e) => return Err(format!("cannot start {program}: {e}")),
            Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => {
                return Err(format!("cannot start {program}: not an executable file"));
            }
            Ok(_) => {}
        }
    }
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if opts.stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .env("LC_ALL", "C")
        .process_group(0)
        .kill_on_drop(true);
    if let Some(name) = &opts.user {
        let (uid, gid) = user_ids(name)?;
        let me = nix::unistd::geteuid().as_raw();
        if me != uid {
            if me != 0 {
                return Err(format!(
                    "cannot run as {name:?}: the agent runs as uid {me} and may not switch users"
                ));
            }
            cmd.uid(uid).gid(gid);
            // The agent's environment stays with the agent (std drops root's extra groups).
            cmd.env_clear()
                .env("LC_ALL", "C")
                .env("PATH", "/usr/local/bin:/usr/bin:/bin");
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let mut guard = GroupGuard(child.id().map(|id| Pid::from_raw(id as i32)));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let readers = [
        stdout.map(|s| Box::new(s) as Box<dyn AsyncRead + Unpin + Send>),
        stderr.map(|s| Box::new(s) as Box<dyn AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut r| {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        })
    })
    .collect::<Vec<_>>();
    drop(tx);
    let collect = async {
        let mut out = Vec::new();
        let mut dropped = 0usize;
        while let Some(chunk) = rx.recv().await {
            let room = opts.cap.saturating_sub(out.len());
            out.extend_from_slice(&chunk[..room.min(chunk.len())]);
            dropped += chunk.len().saturating_sub(room);
        }
        (out, dropped)
    };
    let waited = tokio::time::timeout(opts.timeout, async {
        let (status, (out, dropped)) = tokio::join!(child.wait(), collect);
        (status, out, dropped)
    })
    .await;
    let (code, timed_out, out, dropped) = match waited {
        Ok((status, out, dropped)) => {
            guard.0 = None;
            let status = status.map_err(|e| format!("waiting for {program}: {e}"))?;
            (status.code(), false, out, dropped)
        }
        Err(_) => {
            drop(guard);
            let _ = child.wait().await;
            (None, true, Vec::new(), 0)
        }
    };
    for r in readers {
        r.abort();
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    if dropped > 0 {
        let _ = write!(text, "… ({dropped} bytes cut)");
    }
    Ok(Output {
        code,
        timed_out,
        text,
    })
}

/// Runs a program given as string slices.
pub async fn run_args(argv: &[&str], opts: &Opts) -> Result<Output, String> {
    let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
    run(&argv, opts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(ms: u64, cap: usize) -> Opts {
        Opts::new(Duration::from_millis(ms), cap)
    }

    #[tokio::test]
    async fn output_is_capped_and_the_program_still_finishes() {
        let o = run_args(
            &[
                "/bin/sh",
                "-c",
                "head -c 100000 /dev/zero | tr '\\0' x; echo err >&2",
            ],
            &opts(10_000, 1000),
        )
        .await
        .unwrap();
        assert!(o.success(), "{o:?}");
        assert!(o.text.starts_with(&"x".repeat(1000)), "{}", &o.text[..20]);
        assert!(o.text.contains("bytes cut"), "{}", o.text.len());
    }

    #[tokio::test]
    async fn a_hanging_program_and_its_children_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("still-running");
        let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let o = run_args(&["/bin/sh", "-c", &script], &opts(300, 1000))
            .await
            .unwrap();
        assert!(o.timed_out && o.code.is_none(), "{o:?}");
        assert!(o.describe().contains("timed out"));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!marker.exists(), "the group's background child survived");
    }

    #[tokio::test]
    async fn a_missing_program_or_user_is_a_clear_error() {
        let e = run_args(&["/nonexistent/tool"], &opts(1000, 100))
            .await
            .unwrap_err();
        assert!(e.contains("/nonexistent/tool"), "{e}");
        let mut o = opts(1000, 100);
        o.user = Some("no-such-user-here".into());
        let e = run_args(&["/bin/true"], &o).await.unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[tokio::test]
    async fn exit_codes_are_reported() {
        let o = run_args(&["/bin/sh", "-c", "echo nope; exit 3"], &opts(5000, 100))
            .await
            .unwrap();
        assert_eq!(o.code, Some(3));
        assert_eq!(o.describe(), "nope (exit 3)");
    }
}
