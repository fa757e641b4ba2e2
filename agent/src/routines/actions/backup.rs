//! `backup.dir` and `backup.verify`: a store data directory archived nightly with retention.
//!
//! ```toml
//! action = "backup.dir"
//! args = { source = "/srv/pos/data", dest = "/srv/backup", name = "pos-data", keep = 7 }
//! ```
//!
//! An archive is `DEST/NAME-YYYYMMDDTHHMMSSZ.tar.gz`, written as `.partial`, synced, then
//! renamed, so a power cut never leaves a half archive under the real name. After a good
//! archive the oldest beyond `keep` are deleted. Links are stored as links, never followed.
//! `backup.verify` holds when the newest archive is recent enough and reads back whole.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::Deserialize;

use super::{resolve_inside, Cx, Done};

fn seven() -> usize {
    7
}

fn backup() -> String {
    "backup".into()
}

fn day_and_a_bit() -> f64 {
    26.0
}

/// `backup.dir`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dir {
    /// Directory to archive.
    pub source: PathBuf,
    /// Directory for the archives.
    pub dest: PathBuf,
    /// Archive name prefix.
    #[serde(default = "backup")]
    pub name: String,
    /// Archives kept.
    #[serde(default = "seven")]
    pub keep: usize,
}

/// `backup.verify`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// Directory of the archives.
    pub dest: PathBuf,
    /// Archive name prefix.
    #[serde(default = "backup")]
    pub name: String,
    /// The newest archive is at most this old, hours.
    #[serde(default = "day_and_a_bit")]
    pub max_age_hours: f64,
}

fn valid_name(n: &str) -> Result<(), String> {
    if !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !n.starts_with('.')
    {
        Ok(())
    } else {
        Err(format!(
            "backup name {n:?}: letters, digits, '-', '_' or '.'"
        ))
    }
}

/// The archives of `name` in `dir`, oldest first (names sort by time).
pub fn archives(dir: &Path, name: &str) -> Result<Vec<PathBuf>, String> {
    let prefix = format!("{name}-");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(&prefix) && f.ends_with(".tar.gz"))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn write_archive(source: &Path, file: &Path, base: &str) -> std::io::Result<u64> {
    let f = File::create(file)?;
    let mut tar = tar::Builder::new(GzEncoder::new(f, flate2::Compression::default()));
    tar.follow_symlinks(false);
    tar.append_dir_all(base, source)?;
    let gz = tar.into_inner()?;
    let f = gz.finish()?;
    f.sync_all()?;
    Ok(f.metadata()?.len())
}

/// Entries and bytes of an archive, reading it to the end.
pub fn read_back(file: &Path) -> std::io::Result<(usize, u64)> {
    let mut tar = tar::Archive::new(GzDecoder::new(File::open(file)?));
    let (mut n, mut bytes) = (0, 0);
    for entry in tar.entries()? {
        let mut e = entry?;
        bytes += std::io::copy(&mut e, &mut std::io::sink())?;
        n += 1;
    }
    Ok((n, bytes))
}

impl Dir {
    fn archive(&self, cx: &Cx) -> Result<String, String> {
        valid_name(&self.name)?;
        if self.keep == 0 {
            return Err("keep: at least 1".into());
        }
        let source = resolve_inside(&cx.policy.paths, &self.source)?;
        std::fs::create_dir_all(&self.dest).map_err(|e| format!("{}: {e}", self.dest.display()))?;
        let dest = resolve_inside(&cx.policy.paths, &self.dest)?;
        if dest.starts_with(&source) {
            return Err(format!(
                "{} is inside {}: the backup would contain itself",
                dest.display(),
                source.display()
            ));
        }
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let file = dest.join(format!("{}-{stamp}.tar.gz", self.name));
        let partial = dest.join(format!(".{}-{stamp}.tar.gz.partial", self.name));
        let base = source
            .file_name()
            .map_or_else(|| "data".to_owned(), |f| f.to_string_lossy().into_owned());
        let size = write_archive(&source, &partial, &base).map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            format!("writing {}: {e}", partial.display())
        })?;
        std::fs::rename(&partial, &file).map_err(|e| format!("{}: {e}", file.display()))?;
        if let Ok(d) = File::open(&dest) {
            let _ = d.sync_all();
        }
        let all = archives(&dest, &self.name)?;
        let mut removed = 0;
        for old in &all[..all.len().saturating_sub(self.keep)] {
            if std::fs::remove_file(old).is_ok() {
                removed += 1;
            }
        }
        Ok(format!(
            "wrote {} ({size} bytes); {} kept, {removed} old removed",
            file.display(),
            all.len() - removed
        ))
    }

    /// Runs it.
    pub async fn run(&self, cx: &Cx) -> Done {
        let (me, cx) = (self.clone(), cx.clone());
        match tokio::task::spawn_blocking(move || me.archive(&cx)).await {
            Ok(Ok(s)) => Done::ok(s),
            Ok(Err(e)) => Done::fail(e),
            Err(e) => Done::fail(format!("backup stopped: {e}")),
        }
    }
}

impl Verify {
    fn verify(&self) -> Result<String, String> {
        valid_name(&self.name)?;
        let all = archives(&self.dest, &self.name)?;
        let newest = all
            .last()
            .ok_or_else(|| format!("no {}-*.tar.gz in {}", self.name, self.dest.display()))?;
        let age = std::fs::metadata(newest)
            .and_then(|m| m.modified())
            .map(|m| SystemTime::now().duration_since(m).unwrap_or_default())
            .map_err(|e| format!("{}: {e}", newest.display()))?;
        if age > Duration::from_secs_f64(self.max_age_hours * 3600.0) {
            return Err(format!(
                "newest {} is {:.1} h old, more than {} h",
                newest.display(),
                age.as_secs_f64() / 3600.0,
                self.max_age_hours
            ));
        }
        let (n, bytes) =
            read_back(newest).map_err(|e| format!("{} is damaged: {e}", newest.display()))?;
        Ok(format!(
            "{}: {n} entries, {bytes} bytes, {:.1} h old; {} archive(s)",
            newest.display(),
            age.as_secs_f64() / 3600.0,
            all.len()
        ))
    }

    /// Runs it.
    pub async fn run(&self) -> Done {
        let me = self.clone();
        match tokio::task::spawn_blocking(move || me.verify()).await {
            Ok(Ok(s)) => Done::ok(s),
            Ok(Err(e)) => Done::fail(e),
            Err(e) => Done::fail(format!("verify stopped: {e}")),
        }
    }
}
