//! Agent releases: binaries per version and architecture, each with its manifest signed by
//! the release key. The controller holds only the key's public half (`releases.public_key`)
//! and refuses a release that does not verify with it, or whose binary is not the one the
//! manifest describes; the private half stays where releases are built
//! (`storefleet release publish` signs there). Binaries are files in the state directory's
//! `releases/`; agents download them from `GET /releases/VERSION/ARCH` (resumable) and check
//! them against the manifest their update command carries, so the download itself needs no
//! secret.

use std::path::{Path, PathBuf};

use storefleet_protocol::release::{check_arch, check_version, sha256_hex, Release};
use storefleet_protocol::PublicKey;
use storefleet_storage::{args, Row, Sql, SqlExt as _};

use crate::db::DbError;

pub use storefleet_client::releases::Published;

/// Where the binary of `version` for `arch` is kept.
pub fn file(state_dir: &Path, version: &str, arch: &str) -> Result<PathBuf, DbError> {
    check_version(version).map_err(|e| DbError::Invalid(e.to_string()))?;
    check_arch(arch).map_err(|e| DbError::Invalid(e.to_string()))?;
    Ok(state_dir
        .join("releases")
        .join(format!("storefleet-agent-{version}-{arch}")))
}

/// Checks `r` against the release key and `binary`, and writes the binary (atomically)
/// where [`file`] says. Run before [`record`]; the file of a release never changes.
pub fn store_binary(
    state_dir: &Path,
    key: Option<&PublicKey>,
    r: &Release,
    binary: &[u8],
) -> Result<PathBuf, DbError> {
    let key = key.ok_or_else(|| {
        DbError::Invalid(
            "no release key configured (releases.public_key): this controller accepts no releases"
                .into(),
        )
    })?;
    r.verify(key).map_err(|e| DbError::Invalid(e.to_string()))?;
    r.check_binary(binary.len() as u64, &sha256_hex(binary))
        .map_err(|e| DbError::Invalid(e.to_string()))?;
    let path = file(state_dir, &r.version, &r.arch)?;
    if let Ok(existing) = std::fs::read(&path) {
        if sha256_hex(&existing) == r.sha256 {
            return Ok(path);
        }
        return Err(DbError::Conflict(format!(
            "release {} for {} is already published with another binary; publish a new version",
            r.version, r.arch
        )));
    }
    let io = |e: std::io::Error| DbError::Backend(format!("{}: {e}", path.display()));
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(io)?;
    }
    let tmp = path.with_extension("new");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(binary).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path)
}

/// Records a release whose binary [`store_binary`] kept.
pub fn record(c: &dyn Sql, r: &Release, by: &str, now: i64) -> Result<(), DbError> {
    let existing = c.one(
        "SELECT sha256 FROM releases WHERE version = ?1 AND arch = ?2",
        args![&r.version, &r.arch],
    )?;
    match existing.map(|row| row.text("sha256")).transpose()? {
        Some(h) if h == r.sha256 => Ok(()),
        Some(_) => Err(DbError::Conflict(format!(
            "release {} for {} is already published with another binary",
            r.version, r.arch
        ))),
        None => {
            c.execute(
                "INSERT INTO releases(version, arch, size, sha256, signature, published_at, published_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                args![&r.version, &r.arch, r.size, &r.sha256, &r.signature, now, by],
            )?;
            Ok(())
        }
    }
}

fn from_row(row: &Row) -> Result<Published, DbError> {
    Ok(Published {
        release: Release {
            version: row.text("version")?,
            arch: row.text("arch")?,
            size: row.int("size")?,
            sha256: row.text("sha256")?,
            signature: row.text("signature")?,
        },
        published_at: row.i64("published_at")?,
        published_by: row.text("published_by")?,
    })
}

const COLUMNS: &str = "version, arch, size, sha256, signature, published_at, published_by";

/// Every release, newest first.
pub fn list(c: &dyn Sql) -> Result<Vec<Published>, DbError> {
    c.all(
        &format!("SELECT {COLUMNS} FROM releases ORDER BY published_at DESC, version, arch"),
        args![],
        from_row,
    )
}

/// The manifests of `version`, one per architecture it was published for.
pub fn manifests(c: &dyn Sql, version: &str) -> Result<Vec<Release>, DbError> {
    c.all(
        &format!("SELECT {COLUMNS} FROM releases WHERE version = ?1 ORDER BY arch"),
        args![version],
        |r| Ok(from_row(r)?.release),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use storefleet_protocol::SigningKey;

    #[test]
    fn only_signed_matching_releases_are_kept_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut c).unwrap();
        let key = SigningKey::generate().unwrap();
        let pk = key.public_key();
        let bin = b"agent v2".to_vec();
        let r = Release::sign("0.2.0", "x86_64", &bin, &key).unwrap();
        assert!(store_binary(dir.path(), None, &r, &bin)
            .unwrap_err()
            .to_string()
            .contains("releases.public_key"));
        let other = SigningKey::generate().unwrap().public_key();
        assert!(store_binary(dir.path(), Some(&other), &r, &bin)
            .unwrap_err()
            .to_string()
            .contains("signature"));
        assert!(store_binary(dir.path(), Some(&pk), &r, b"agent v3")
            .unwrap_err()
            .to_string()
            .contains("does not match"));
        let path = store_binary(dir.path(), Some(&pk), &r, &bin).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bin);
        record(&c, &r, "token:admin", 1).unwrap();
        record(&c, &r, "token:admin", 2).unwrap();
        let r2 = Release::sign("0.2.0", "x86_64", b"another", &key).unwrap();
        assert!(matches!(
            store_binary(dir.path(), Some(&pk), &r2, b"another"),
            Err(DbError::Conflict(_))
        ));
        assert!(matches!(record(&c, &r2, "x", 3), Err(DbError::Conflict(_))));
        assert_eq!(manifests(&c, "0.2.0").unwrap(), vec![r.clone()]);
        let listed = list(&c).unwrap();
        assert_eq!(listed.len(), 1);
        // What the API lists reads back as it was (the typed client's answer).
        let json = serde_json::to_string(&listed).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<Published>>(&json).unwrap(),
            listed
        );
        assert!(file(dir.path(), "../../etc", "x86_64").is_err());
    }
}
