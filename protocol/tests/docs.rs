//! The protocol docs are a contract: their examples decode, their test vectors verify, and
//! their tables name what the types really serialise to.

use base64::Engine as _;
use storefleet_protocol::message::{CommandStatus, Kind, PresenceState, Severity};
use storefleet_protocol::routine::{Outcome, StepKind};
use storefleet_protocol::verify::{Pinned, Verifier};
use storefleet_protocol::{envelope, wire, PublicKey, SigningKey};

fn key() -> SigningKey {
    SigningKey::from_pkcs8(&wire::example_key_pkcs8()).unwrap()
}

#[test]
fn the_example_frame_is_what_the_documented_key_makes_and_it_verifies() {
    let key = key();
    assert_eq!(key.public_key().to_base64(), wire::EXAMPLE_PUBLIC_KEY);
    let frame = base64::engine::general_purpose::STANDARD
        .decode(wire::EXAMPLE_FRAME)
        .unwrap();
    assert_eq!(&frame[..3], b"SF\x01");
    assert_eq!(&frame[67..], wire::EXAMPLE_ENVELOPE.as_bytes());
    assert_eq!(
        envelope::frame(wire::EXAMPLE_ENVELOPE.as_bytes(), &key),
        frame,
        "Ed25519 is deterministic: the same bytes"
    );
    let mut v = Verifier::new(Pinned {
        sender: "gw-example".into(),
        key: PublicKey::from_base64(wire::EXAMPLE_PUBLIC_KEY).unwrap(),
    });
    // Checked at the frame's own time, so its age does not matter.
    let env = v
        .verify("sf/v1/gw-example/up/telemetry", &frame, 1_700_000_000_000)
        .unwrap();
    assert_eq!(env.seq, 1_700_000_000_000_001);
    assert_eq!(env.message.kind(), Kind::Telemetry);
}

/// A compressed frame made by another implementation inflates to the example envelope
/// and verifies; a flipped content byte does not.
#[test]
fn the_compressed_example_frame_inflates_and_verifies() {
    let mut frame = base64::engine::general_purpose::STANDARD
        .decode(wire::EXAMPLE_FRAME_ZLIB)
        .unwrap();
    assert_eq!(&frame[..3], b"SF\x02");
    assert_eq!(frame[67], envelope::CONTENT_ZLIB);
    let raw = envelope::open(&frame).unwrap();
    assert_eq!(
        raw.envelope,
        envelope::Envelope::from_json(wire::EXAMPLE_ENVELOPE.as_bytes()).unwrap()
    );
    let mut v = Verifier::new(Pinned {
        sender: "gw-example".into(),
        key: PublicKey::from_base64(wire::EXAMPLE_PUBLIC_KEY).unwrap(),
    });
    let topic = "sf/v1/gw-example/up/telemetry";
    v.verify(topic, &frame, 1_700_000_000_000).unwrap();
    frame[67] = envelope::CONTENT_JSON;
    assert!(v.verify(topic, &frame, 1_700_000_000_000).is_err());
}

#[test]
fn the_example_broker_token_is_what_the_documented_key_makes() {
    let key = key();
    let t = storefleet_protocol::broker::agent_password("gw-example", 1_700_000_000_000, &key);
    assert_eq!(t, wire::EXAMPLE_BROKER_TOKEN);
    assert_eq!(
        storefleet_protocol::broker::check_agent_password(
            "gw-example",
            wire::EXAMPLE_BROKER_TOKEN,
            &key.public_key(),
            1_700_000_000_000
        ),
        Ok(())
    );
}

#[test]
fn the_enrollment_signature_covers_the_documented_bytes() {
    assert_eq!(
        storefleet_protocol::enroll::EnrollRequest::signed_bytes(
            "t-1", "gw-1", "PK+/=", "host", 42
        ),
        b"storefleet-enroll-v1\nt-1\ngw-1\nPK+/=\nhost\n42".to_vec()
    );
}

/// The body examples in the crate docs (`lib.rs`, section Bodies), each sealed into a frame
/// with the test key, decode into their types.
#[test]
fn every_documented_body_example_decodes() {
    let docs = include_str!("../src/lib.rs");
    let block: String = docs
        .split("//! ```json\n")
        .nth(2)
        .expect("the Bodies block")
        .split("//! ```")
        .next()
        .unwrap()
        .lines()
        .map(|l| l.trim_start_matches("//!").trim())
        .collect::<Vec<_>>()
        .join(" ");
    let examples: Vec<&str> = block
        .split("{\"kind\"")
        .filter(|s| !s.trim().is_empty())
        .collect();
    assert!(examples.len() >= 5, "{block}");
    let key = key();
    for e in examples {
        let text = format!("{{\"kind\"{e}");
        let v: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|err| panic!("documented example is not JSON: {text}: {err}"));
        let kind = v["kind"].as_str().unwrap();
        let mut env = serde_json::json!({
            "v": 1, "from": "gw-example", "seq": 1, "ts": 1_700_000_000_000_i64,
            "kind": kind, "body": v["body"],
        });
        if kind == "command" {
            env["to"] = "gw-example".into();
            env["exp"] = 1_700_000_060_000_i64.into();
        }
        let frame = envelope::frame(env.to_string().as_bytes(), &key);
        let opened = envelope::open(&frame)
            .unwrap_or_else(|err| panic!("documented {kind} example does not decode: {err}"));
        assert_eq!(opened.envelope.message.kind().as_str(), kind);
    }
}

/// Each value in the wire module's table of enumerations decodes into its type, and each
/// of the type's values is in the table.
#[test]
fn the_table_of_names_is_what_the_types_serialise_to() {
    let docs = include_str!("../src/wire.rs");
    let row = |label: &str| -> Vec<String> {
        let line = docs
            .lines()
            .find(|l| l.starts_with(&format!("//! | {label} |")))
            .unwrap_or_else(|| panic!("no row {label}"));
        let values = line.rsplit(" | ").next().unwrap();
        values
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    fn check<T: serde::de::DeserializeOwned + serde::Serialize>(names: &[String], all: &[T]) {
        for n in names {
            serde_json::from_value::<T>(serde_json::Value::String(n.clone()))
                .unwrap_or_else(|_| panic!("{n} is not a name of its type"));
        }
        for v in all {
            let s = serde_json::to_value(v).unwrap();
            assert!(
                names.contains(&s.as_str().unwrap().to_owned()),
                "{s} missing from the table"
            );
        }
    }
    check(&row("envelope `kind`, topic `{kind}`"), &Kind::ALL);
    check(
        &row("presence `state`"),
        &[PresenceState::Online, PresenceState::Offline],
    );
    check(
        &row("event `severity`"),
        &[
            Severity::Info,
            Severity::Warning,
            Severity::Error,
            Severity::Critical,
        ],
    );
    check(
        &row("command result `status`"),
        &[
            CommandStatus::Ok,
            CommandStatus::Failed,
            CommandStatus::Rejected,
            CommandStatus::Skipped,
            CommandStatus::Running,
        ],
    );
    check(
        &row("routine run `outcome`"),
        &[
            Outcome::AlreadyFine,
            Outcome::Healed,
            Outcome::Failed,
            Outcome::Escalated,
            Outcome::Skipped,
        ],
    );
    check(
        &row("routine step `kind`"),
        &[StepKind::Check, StepKind::Action, StepKind::Verify],
    );
    let actions = row("command `action` (a tag beside `id`)");
    for a in ["ping", "reload-config"] {
        assert!(actions.contains(&a.to_owned()));
        let c: storefleet_protocol::message::Command =
            serde_json::from_value(serde_json::json!({"id": "c-1", "action": a})).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap()["action"], a);
    }
}
