//! A broken configuration stops the controller with a message that names the file or
//! variable, the key and what was expected.

use std::process::Command;

use crate::common::STOREFLEET;

fn check(files: &[(&str, &str)], env: &[(&str, &str)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let mut c = Command::new(STOREFLEET);
    c.args([
        "--config",
        dir.path().join("controller.toml").to_str().unwrap(),
        "check-config",
    ]);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_prints_the_database_without_its_password() {
    let (ok, out, err) = check(
        &[
            (
                "controller.d/20-database.toml",
                "[database]\nurl = \"postgres://storefleet:s3cret-pw@db.example:5432/fleet\"\n",
            ),
            ("controller.toml", ""),
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("postgres://storefleet@db.example:5432/fleet"),
        "{out}"
    );
    assert!(!out.contains("s3cret-pw"), "{out}");
}

#[test]
fn broken_configs_name_the_file_the_key_and_what_was_expected() {
    let (ok, _, err) = check(&[("controller.toml", "[http\nlisten = 1")], &[]);
    assert!(
        !ok && err.contains("controller.toml") && err.contains("not valid TOML"),
        "{err}"
    );

    let (ok, _, err) = check(
        &[("controller.toml", "[http]\nlisten = \"not an address\"")],
        &[],
    );
    assert!(!ok && err.contains("http.listen"), "{err}");

    let (ok, _, err) = check(
        &[("controller.toml", "[mqtt]\nurl = \"tcp://broker\"")],
        &[],
    );
    assert!(
        !ok && err.contains("mqtt.url") && err.contains("mqtt://"),
        "{err}"
    );

    let (ok, _, err) = check(
        &[
            ("controller.toml", ""),
            (
                "controller.d/10-db.toml",
                "[database]\nsynchronous = \"off\"",
            ),
        ],
        &[],
    );
    assert!(!ok && err.contains("database.synchronous"), "{err}");

    let (ok, _, err) = check(
        &[("controller.toml", "")],
        &[(
            "STOREFLEET_CONTROLLER__TELEMETRY__RAW_RETENTION_DAYS",
            "a week",
        )],
    );
    assert!(
        !ok && err.contains("STOREFLEET_CONTROLLER__TELEMETRY__RAW_RETENTION_DAYS"),
        "{err}"
    );

    // Drop-ins and the environment apply in order.
    let (ok, out, err) = check(
        &[
            ("controller.toml", "[presence]\noffline_after_secs = 100"),
            (
                "controller.d/20-p.toml",
                "[presence]\noffline_after_secs = 200",
            ),
        ],
        &[(
            "STOREFLEET_CONTROLLER__PRESENCE__STALE_AFTER_INTERVALS",
            "7",
        )],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("offline_after_secs = 200") && out.contains("stale_after_intervals = 7"),
        "{out}"
    );
}

#[test]
fn a_replica_needs_postgresql_an_external_broker_and_a_plain_name() {
    let db = "[database]\nurl = \"postgres://sf@db:5432/sf\"\n";
    let broker = "[mqtt]\nurl = \"mqtt://broker:1883\"\n";
    for (config, wanted) in [
        (
            format!("[controller]\nreplica = \"a\"\n{broker}"),
            "database.url",
        ),
        (format!("[controller]\nreplica = \"a\"\n{db}"), "mqtt.url"),
        (
            format!("[controller]\nreplica = \"A/1\"\n{db}{broker}"),
            "lower-case",
        ),
        (
            format!("[mqtt]\nurl = \"mqtt://broker:1883\"\nshare_group = \"a/b\"\n{db}"),
            "mqtt.share_group",
        ),
        (
            "[database]\nca_file = \"/etc/ssl/db-ca.pem\"\n".to_owned(),
            "database.ca_file",
        ),
    ] {
        let (ok, _, err) = check(&[("controller.toml", &config)], &[]);
        assert!(!ok && err.contains(wanted), "{config}: {err}");
    }
    let (ok, out, err) = check(
        &[(
            "controller.toml",
            &format!("[controller]\nreplica = \"b-2\"\n{db}{broker}"),
        )],
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("replica = \"b-2\""), "{out}");
}
