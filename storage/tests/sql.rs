//! The connection interface behaves the same on SQLite and on PostgreSQL: every kind of
//! value goes in and comes back by column name, booleans and integers meet either column
//! kind, a failed write leaves nothing behind, a duplicate key is a conflict, and a bad
//! column read names the column.

use storefleet_storage::postgres::{testing, Pool};
use storefleet_storage::{args, Error, Sql, SqlExt as _, Value};

const SCHEMA: &str = "CREATE TABLE t (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    flag BOOLEAN,
    score DOUBLE PRECISION,
    data BYTEA,
    note TEXT
)";

/// Runs a job in one transaction of the backend under test.
type Job<'a> = &'a mut (dyn FnMut(&dyn Sql) -> Result<(), Error> + Send);

fn suite(db: &dyn Fn(Job<'_>) -> Result<(), Error>) {
    db(&mut |c| {
        c.execute(
            "INSERT INTO t(id, name, flag, score, data, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            args![
                1i64,
                "Zürich ☃",
                true,
                2.5f64,
                vec![0u8, 255, 7],
                None::<String>
            ],
        )?;
        // An integer for a boolean column and a boolean where an integer is compared.
        c.execute(
            "INSERT INTO t(id, name, flag, score) VALUES (?1, ?2, ?3, ?4)",
            args![2i64, "b", 0i64, 3i64],
        )?;
        Ok(())
    })
    .unwrap();
    db(&mut |c| {
        let r = c
            .one(
                "SELECT note, data, score, flag, name, id FROM t WHERE id = ?1",
                args![1i64],
            )?
            .unwrap();
        assert_eq!(r.i64("id")?, 1);
        assert_eq!(r.text("name")?, "Zürich ☃");
        assert!(r.bool("flag")?);
        assert!((r.f64("score")? - 2.5).abs() < 1e-12);
        assert_eq!(r.blob("data")?, vec![0u8, 255, 7]);
        assert_eq!(r.opt_text("note")?, None);
        assert_eq!(r.value("note")?, &Value::Null);
        let err = r.i64("name").unwrap_err().to_string();
        assert!(
            err.contains("\"name\"") && err.contains("expected integer"),
            "{err}"
        );
        let err = r.i64("nope").unwrap_err().to_string();
        assert!(err.contains("no column \"nope\""), "{err}");
        let names = c.all(
            "SELECT name FROM t WHERE flag = ?1 ORDER BY id",
            args![false],
            |r| r.text("name"),
        )?;
        assert_eq!(names, vec!["b".to_owned()]);
        assert_eq!(
            c.int(
                "SELECT count(*) AS n FROM t WHERE score >= ?1",
                args![2.5f64],
                "n"
            )?,
            2
        );
        Ok(())
    })
    .unwrap();
    // A write that fails half-way leaves nothing.
    let err = db(&mut |c| {
        c.execute("INSERT INTO t(id, name) VALUES (?1, ?2)", args![3i64, "c"])?;
        c.execute("INSERT INTO t(id, name) VALUES (?1, ?2)", args![4i64, "b"])?;
        Ok(())
    })
    .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err:?}");
    db(&mut |c| {
        assert_eq!(c.int("SELECT count(*) AS n FROM t", args![], "n")?, 2);
        // RETURNING and ON CONFLICT on both.
        let r = c.one(
            "INSERT INTO t(id, name) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET note = ?2 RETURNING id, note",
            args![2i64, "updated"],
        )?.unwrap();
        assert_eq!((r.i64("id")?, r.opt_text("note")?), (2, Some("updated".to_owned())));
        // Rows looked up by 40 keys: two statements of 16 keys, then one statement per key;
        // a name in the first statement and one in the last.
        let mut keys: Vec<Vec<Value>> = (0..40).map(|k| vec![format!("k{k}").into()]).collect();
        keys[3] = vec!["Zürich ☃".into()];
        keys[39] = vec!["b".into()];
        let found = storefleet_storage::many::lookup(
            c,
            "SELECT id FROM t WHERE name IN (VALUES ",
            1,
            ")",
            &keys,
        )?;
        let ids: Vec<i64> = found.iter().map(|r| r.i64("id")).collect::<Result<_, _>>()?;
        assert_eq!(ids, [1, 2]);
        Ok(())
    })
    .unwrap();
}

#[test]
fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    let conn = std::cell::RefCell::new(conn);
    suite(&|f| {
        let mut c = conn.borrow_mut();
        let tx = c.transaction()?;
        f(&*tx)?;
        tx.commit()?;
        Ok(())
    });
}

#[test]
fn postgres() {
    let Some(test) = testing::database("storage sql suite") else {
        return;
    };
    let pool = Pool::connect(&test.url, 2).unwrap();
    pool.migrate(&[SCHEMA]).unwrap();
    // Migrating again is a no-op at the same version.
    assert_eq!(pool.migrate(&[SCHEMA]).unwrap(), 1);
    // A controller that knows fewer migrations than the database has refuses it.
    let err = pool.migrate(&[]).unwrap_err().to_string();
    assert!(
        err.contains("schema version 1, newer than this controller knows (0)"),
        "{err}"
    );
    suite(&|f| pool.run_blocking(false, |c| f(c)));
    assert!(pool.place().starts_with("postgres://"));
    // A wrong address is "unavailable", naming where.
    let err = Pool::connect("postgres://nobody@127.0.0.1:1/none?connect_timeout=2", 1).unwrap_err();
    assert!(
        matches!(&err, Error::Unavailable(m) if m.contains("127.0.0.1:1")),
        "{err:?}"
    );
}

#[test]
fn postgres_sessions_hold_locks_and_hear_notifications() {
    let Some(test) = testing::database("storage sessions") else {
        return;
    };
    let pool = Pool::connect(&test.url, 2).unwrap();
    // A session-level lock: one holder at a time, free again when its session ends.
    let mut first = pool.session().unwrap();
    let mut second = pool.session().unwrap();
    assert!(first.try_lock(42).unwrap());
    assert!(!second.try_lock(42).unwrap(), "held by the first session");
    first.check().unwrap();
    drop(first);
    let mut taken = false;
    for _ in 0..50 {
        if second.try_lock(42).unwrap() {
            taken = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(taken, "the lock is free once its session is gone");

    // LISTEN: what a transaction notifies is heard once it commits, in order.
    let mut ear = pool.session().unwrap();
    ear.listen("sf_test_channel").unwrap();
    assert!(ear.listen("bad channel; drop").is_err());
    pool.run_blocking(false, |c| {
        for p in ["one", "two"] {
            c.execute("SELECT pg_notify('sf_test_channel', ?1)", &[p.into()])?;
        }
        Ok(())
    })
    .unwrap();
    let mut heard = Vec::new();
    for _ in 0..10 {
        heard.extend(
            ear.notifications(std::time::Duration::from_millis(500))
                .unwrap()
                .into_iter()
                .map(|n| (n.channel, n.payload)),
        );
        if heard.len() >= 2 {
            break;
        }
    }
    assert_eq!(
        heard,
        [
            ("sf_test_channel".to_owned(), "one".to_owned()),
            ("sf_test_channel".to_owned(), "two".to_owned())
        ]
    );
    // Nothing more: an empty wait.
    assert!(ear
        .notifications(std::time::Duration::from_millis(100))
        .unwrap()
        .is_empty());
}

#[test]
fn postgres_transactions_that_take_turns_see_each_others_writes() {
    let Some(test) = testing::database("storage turns") else {
        return;
    };
    let pool = Pool::connect(&test.url, 4).unwrap();
    pool.run_blocking(false, |c| {
        c.execute("CREATE TABLE turns (n BIGINT NOT NULL)", &[])?;
        Ok(())
    })
    .unwrap();
    // A holds its turn while it writes slowly; B, starting later, counts what it sees.
    let seen_by_b = |turns: bool| {
        let (a_pool, b_pool) = (pool.clone(), pool.clone());
        let a = std::thread::spawn(move || {
            a_pool
                .run_blocking(false, |c| {
                    if turns {
                        c.take_turn("turns")?;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(400));
                    c.execute("INSERT INTO turns(n) VALUES (1)", &[])?;
                    Ok(())
                })
                .unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        let n = b_pool
            .run_blocking(false, |c| {
                if turns {
                    c.take_turn("turns")?;
                }
                c.int("SELECT count(*) AS n FROM turns", &[], "n")
            })
            .unwrap();
        a.join().unwrap();
        n
    };
    assert_eq!(
        seen_by_b(false),
        0,
        "without turns B reads before A commits"
    );
    assert_eq!(
        seen_by_b(true),
        2,
        "with turns B waits for A's commit (and the first row)"
    );
}

/// The machine's PostgreSQL serves TLS with Debian's self-signed "snakeoil" certificate
/// (for `localhost`); trusting that certificate, a pool connects over TLS and nothing
/// else: the wrong name or an unknown certificate is refused.
#[test]
fn postgres_over_tls_checks_the_certificate_and_the_name() {
    let snakeoil = std::path::Path::new("/etc/ssl/certs/ssl-cert-snakeoil.pem");
    let Some(test) = testing::database("storage tls") else {
        return;
    };
    if !snakeoil.exists() {
        eprintln!(
            "skipped: no /etc/ssl/certs/ssl-cert-snakeoil.pem (Debian's PostgreSQL serves it)"
        );
        return;
    }
    let plain = Pool::connect(&test.url, 1).unwrap();
    let ssl_on = plain
        .run_blocking(true, |c| {
            c.one("SHOW ssl", &[]).map(|r| r.map(|r| r.text("ssl")))
        })
        .unwrap()
        .transpose()
        .unwrap();
    if ssl_on.as_deref() != Some("on") || !test.url.contains("@127.0.0.1") {
        eprintln!(
            "skipped: PostgreSQL at {} serves no TLS, or not at 127.0.0.1",
            plain.place()
        );
        return;
    }
    use rustls::pki_types::pem::PemObject as _;
    let trusting = |pem: &std::path::Path| {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_file_iter(pem).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
    };
    let on = |host: &str| test.url.replacen("127.0.0.1", host, 1);
    let pool = Pool::connect_tls(&on("localhost"), 1, Some(trusting(snakeoil))).unwrap();
    let ssl = pool
        .run_blocking(true, |c| {
            c.one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .map(|r| r.map(|r| r.bool("ssl")))
        })
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(ssl, "the connection is encrypted");
    // 127.0.0.1 is not a name on the certificate.
    let err = Pool::connect_tls(&on("127.0.0.1"), 1, Some(trusting(snakeoil))).unwrap_err();
    assert!(
        matches!(&err, Error::Unavailable(m) if m.contains("certificate")),
        "{err:?}"
    );
    // Another CA's trust does not vouch for it.
    let other = tempfile::tempdir().unwrap();
    if storefleet_testkit::certs::have("openssl") {
        storefleet_testkit::certs::make_ca(other.path(), "other");
        let pem = other.path().join("other.pem");
        let err = Pool::connect_tls(&on("localhost"), 1, Some(trusting(&pem))).unwrap_err();
        assert!(
            matches!(&err, Error::Unavailable(m) if m.contains("certificate")),
            "{err:?}"
        );
    }
}

/// Two transactions that lock the same rows in opposite order deadlock; PostgreSQL rolls
/// one back, and that one says it collided (so callers run it again at once instead of
/// treating it as a failing database).
#[test]
fn postgres_a_deadlock_is_a_collision_that_can_run_again() {
    let Some(test) = testing::database("storage deadlock") else {
        return;
    };
    let pool = Pool::connect(&test.url, 4).unwrap();
    pool.run_blocking(false, |c| {
        c.execute(
            "CREATE TABLE pair (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)",
            &[],
        )?;
        c.execute("INSERT INTO pair VALUES (1, 0), (2, 0)", &[])?;
        Ok(())
    })
    .unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let writer = |first: i64, second: i64| {
        let (pool, barrier) = (pool.clone(), barrier.clone());
        std::thread::spawn(move || {
            pool.run_blocking(false, move |c| {
                c.execute("UPDATE pair SET n = n + 1 WHERE id = ?1", args![first])?;
                barrier.wait();
                c.execute("UPDATE pair SET n = n + 1 WHERE id = ?1", args![second])?;
                Ok(())
            })
        })
    };
    let (a, b) = (writer(1, 2), writer(2, 1));
    let results = [a.join().unwrap(), b.join().unwrap()];
    let collided: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(collided.len(), 1, "{results:?}");
    assert!(
        matches!(collided[0], Error::Collision(m) if m.contains("deadlock")),
        "{collided:?}"
    );
    // The loser left nothing behind; run again, it goes through.
    pool.run_blocking(false, |c| {
        c.execute("UPDATE pair SET n = n + 1 WHERE id IN (1, 2)", &[])?;
        Ok(())
    })
    .unwrap();
    let total = pool
        .run_blocking(true, |c| {
            c.int("SELECT CAST(sum(n) AS BIGINT) AS s FROM pair", &[], "s")
        })
        .unwrap();
    assert_eq!(total, 4);
}
