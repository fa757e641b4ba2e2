//! The sequence ceiling: a small file beside the buffer (`buffer.db.seq`) that no sequence
//! number in use ever reaches, written and fsynced before the numbers below it are handed
//! out, whatever `buffer.durability` says.
//!
//! The database's own `next_seq` can roll back: with `durability = "normal"` a power cut
//! loses the commits since the last checkpoint. At every start the next number is the
//! larger of the stored one and the ceiling (a new database starts at the clock in
//! microseconds), so a number the controller has seen is never used again (it would drop
//! the new message as a duplicate). Numbers between the last one used and the ceiling are
//! skipped after a restart: at most [`SEQ_BLOCK`], so that messages resent from before the
//! restart stay close to the new ones (a receiver's replay window is 4,096 numbers); a
//! block costs one fsync.
//!
//! Format: 20 decimal digits and a newline, rewritten in place (one sector, so a power cut
//! leaves the old or the new value). An unreadable file makes the next start jump
//! [`GARBLED_JUMP`] ahead and say so.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use super::BufferError;

/// Numbers reserved by one write of the ceiling.
pub const SEQ_BLOCK: u64 = 1024;
/// How far past everything known the next number goes when the ceiling file is unreadable.
pub const GARBLED_JUMP: u64 = 1 << 40;

/// The ceiling file of the buffer at `db`.
pub fn path_for(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.seq", db.display()))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BufferError + '_ {
    move |source| BufferError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The ceiling stored at `path`: `Ok(None)` when there is none, `Err` text when it cannot
/// be read as one.
pub fn read(path: &Path) -> Result<Option<u64>, String> {
    let mut text = String::new();
    match std::fs::File::open(path) {
        Ok(mut f) => f
            .read_to_string(&mut text)
            .map_err(|e| format!("{}: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    text.trim()
        .parse::<u64>()
        .map(Some)
        .map_err(|_| format!("{}: not a sequence number: {text:?}", path.display()))
}

/// Stores `ceiling` at `path` durably: in place when the file exists (no new disk blocks,
/// so it works on a full disk), otherwise through a synced temporary file and a rename.
pub fn write(path: &Path, ceiling: u64) -> Result<(), BufferError> {
    let line = format!("{ceiling:020}\n");
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(path) {
        if f.metadata().map_err(io(path))?.len() == line.len() as u64 {
            f.seek(SeekFrom::Start(0)).map_err(io(path))?;
            f.write_all(line.as_bytes()).map_err(io(path))?;
            return f.sync_data().map_err(io(path));
        }
    }
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(line.as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    sync_dir(path)
}

/// Fsyncs the directory holding `path`, so that a new or renamed file survives a power cut.
pub fn sync_dir(path: &Path) -> Result<(), BufferError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// The first number to use at start: the larger of `stored` (or, for a new database,
/// `clock_us`) and the ceiling read from disk; the text says why the ceiling could not be
/// read.
pub fn start(
    stored: Option<u64>,
    ceiling: Result<Option<u64>, String>,
    clock_us: u64,
) -> (u64, Option<String>) {
    let base = stored.unwrap_or(clock_us);
    match ceiling {
        Ok(c) => (base.max(c.unwrap_or(0)), None),
        Err(why) => (base.max(clock_us).saturating_add(GARBLED_JUMP), Some(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_is_never_below_the_ceiling_or_the_stored_value() {
        let rolled_back = start(Some(10), Ok(Some(500)), 100).0;
        assert_eq!(rolled_back, 500, "rolled back: the ceiling");
        assert_eq!(start(Some(900), Ok(Some(500)), 100).0, 900);
        let restart = start(Some(10), Ok(None), 100).0;
        assert_eq!(
            restart, 10,
            "a restart goes on from the stored value, not the clock"
        );
        assert_eq!(
            start(None, Ok(None), 100).0,
            100,
            "a new database: the clock"
        );
        assert_eq!(
            start(None, Ok(Some(500)), 100).0,
            500,
            "a replaced one: the ceiling"
        );
        let (n, why) = start(Some(10), Err("garbled".into()), 100);
        assert_eq!(n, 100 + GARBLED_JUMP);
        assert!(why.is_some());
    }

    #[test]
    fn the_ceiling_is_rewritten_in_place_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_for(&dir.path().join("buffer.db"));
        assert_eq!(read(&p), Ok(None));
        write(&p, 42).unwrap();
        assert_eq!(read(&p), Ok(Some(42)));
        write(&p, u64::MAX).unwrap();
        assert_eq!(read(&p), Ok(Some(u64::MAX)));
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 21);
        std::fs::write(&p, b"12x").unwrap();
        assert!(read(&p).unwrap_err().contains("not a sequence number"));
        write(&p, 7).unwrap();
        assert_eq!(read(&p), Ok(Some(7)), "a garbled file is replaced whole");
    }
}
