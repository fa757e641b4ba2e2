//! The signed envelope end to end: seal on one side, verify on the other.

use std::collections::HashMap;

use proptest::prelude::*;
use storefleet_protocol::message::{
    Command, CommandAction, Event, Point, Series, Severity, TelemetryBatch,
};
use storefleet_protocol::verify::Pinned;
use storefleet_protocol::{
    envelope, Direction, Envelope, Kind, Message, PublicKey, SigningKey, Topic, Verifier,
    VerifyError, CONTROLLER_ID,
};

const NOW: i64 = 1_700_000_000_000;

fn telemetry(n: usize) -> Message {
    Message::Telemetry(TelemetryBatch {
        backlog: false,
        series: vec![Series {
            device: Some("printer-1".into()),
            metric: "probe.latency_ms".into(),
            points: (0..n)
                .map(|i| Point {
                    t: NOW + i as i64,
                    v: i as f64 / 3.0,
                    agg: None,
                })
                .collect(),
        }],
    })
}

fn agent_verifier(id: &str, key: PublicKey) -> Verifier<HashMap<String, PublicKey>> {
    Verifier::new(HashMap::from([(id.to_owned(), key)]))
}

fn up_topic(id: &str, kind: Kind) -> String {
    Topic::format(id, Direction::Up, kind)
}

#[test]
fn every_message_kind_round_trips() {
    let key = SigningKey::generate().unwrap();
    let mut v = agent_verifier("gw-1", key.public_key());
    let event = Message::Event(Event {
        id: "e1".into(),
        ts: NOW,
        device: None,
        code: "buffer.corrupt".into(),
        severity: Severity::Error,
        message: "moved aside".into(),
        data: serde_json::Map::new(),
    });
    for (seq, msg) in [telemetry(3), event].into_iter().enumerate() {
        let env = Envelope::new("gw-1", seq as u64 + 1, NOW, msg);
        let bytes = env.seal(&key).unwrap();
        let got = v
            .verify(&up_topic("gw-1", env.message.kind()), &bytes, NOW)
            .unwrap();
        assert_eq!(got, env);
        // The signed JSON alone decodes to the same envelope (a receiver that kept it).
        assert_eq!(Envelope::from_json(&env.to_json().unwrap()).unwrap(), env);
    }
    let err = Envelope::from_json(br#"{"v":1,"from":"gw-1"}"#).unwrap_err();
    assert!(err.to_string().contains("envelope"), "{err}");
}

#[test]
fn every_tampered_byte_is_rejected() {
    let key = SigningKey::generate().unwrap();
    let env = Envelope::new("gw-1", 7, NOW, telemetry(2));
    let bytes = env.seal(&key).unwrap();
    let topic = up_topic("gw-1", Kind::Telemetry);
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            let mut v = agent_verifier("gw-1", key.public_key());
            let r = v.verify(&topic, &bad, NOW);
            assert!(r.is_err(), "byte {i} flipped with {flip:#x} was accepted");
        }
    }
    // And the untouched frame still passes, so the loop above tested something.
    let mut v = agent_verifier("gw-1", key.public_key());
    assert!(v.verify(&topic, &bytes, NOW).is_ok());
}

#[test]
fn a_wrong_key_is_a_bad_signature_and_an_unknown_sender_is_named() {
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let bytes = Envelope::new("gw-1", 1, NOW, telemetry(1))
        .seal(&other)
        .unwrap();
    let topic = up_topic("gw-1", Kind::Telemetry);
    let mut v = agent_verifier("gw-1", key.public_key());
    assert_eq!(
        v.verify(&topic, &bytes, NOW),
        Err(VerifyError::BadSignature("gw-1".into()))
    );
    let mut v = agent_verifier("gw-2", key.public_key());
    assert_eq!(
        v.verify(&topic, &bytes, NOW),
        Err(VerifyError::UnknownSender("gw-1".into()))
    );
}

#[test]
fn a_replayed_message_is_refused_after_the_first() {
    let key = SigningKey::generate().unwrap();
    let bytes = Envelope::new("gw-1", 5, NOW, telemetry(1))
        .seal(&key)
        .unwrap();
    let topic = up_topic("gw-1", Kind::Telemetry);
    let mut v = agent_verifier("gw-1", key.public_key());
    assert!(v.verify(&topic, &bytes, NOW).is_ok());
    let err = v.verify(&topic, &bytes, NOW).unwrap_err();
    assert_eq!(err.label(), "replayed");
}

#[test]
fn a_forged_copy_does_not_burn_the_real_sequence_number() {
    let key = SigningKey::generate().unwrap();
    let forger = SigningKey::generate().unwrap();
    let topic = up_topic("gw-1", Kind::Telemetry);
    let mut v = agent_verifier("gw-1", key.public_key());
    let forged = Envelope::new("gw-1", 9, NOW, telemetry(1))
        .seal(&forger)
        .unwrap();
    assert!(v.verify(&topic, &forged, NOW).is_err());
    let real = Envelope::new("gw-1", 9, NOW, telemetry(1))
        .seal(&key)
        .unwrap();
    assert!(v.verify(&topic, &real, NOW).is_ok());
}

#[test]
fn an_expired_command_is_refused_and_a_fresh_one_accepted() {
    let ctl = SigningKey::generate().unwrap();
    let cmd = |id: &str, seq, exp| {
        Envelope::new(
            CONTROLLER_ID,
            seq,
            NOW,
            Message::Command(Command {
                id: id.into(),
                action: CommandAction::Ping,
            }),
        )
        .to("gw-1")
        .expires(exp)
        .seal(&ctl)
        .unwrap()
    };
    let topic = Topic::format("gw-1", Direction::Down, Kind::Command);
    let mut v = Verifier::new(Pinned {
        sender: CONTROLLER_ID.into(),
        key: ctl.public_key(),
    });
    let late = NOW + 60 * 60 * 1000;
    let err = v
        .verify(&topic, &cmd("c1", 1, NOW + 1000), late)
        .unwrap_err();
    assert_eq!(err.label(), "expired");
    assert!(v.verify(&topic, &cmd("c2", 2, late + 1000), late).is_ok());
}

#[test]
fn a_command_for_another_agent_is_refused_on_this_agents_topic() {
    let ctl = SigningKey::generate().unwrap();
    let bytes = Envelope::new(
        CONTROLLER_ID,
        1,
        NOW,
        Message::Command(Command {
            id: "c".into(),
            action: CommandAction::ReloadConfig,
        }),
    )
    .to("gw-2")
    .seal(&ctl)
    .unwrap();
    let mut v = Verifier::new(Pinned {
        sender: CONTROLLER_ID.into(),
        key: ctl.public_key(),
    });
    let topic = Topic::format("gw-1", Direction::Down, Kind::Command);
    assert_eq!(
        v.verify(&topic, &bytes, NOW).unwrap_err().label(),
        "malformed"
    );
}

#[test]
fn kind_on_topic_must_match_the_envelope() {
    let key = SigningKey::generate().unwrap();
    let bytes = Envelope::new("gw-1", 1, NOW, telemetry(1))
        .seal(&key)
        .unwrap();
    let mut v = agent_verifier("gw-1", key.public_key());
    let err = v
        .verify(&up_topic("gw-1", Kind::Event), &bytes, NOW)
        .unwrap_err();
    assert!(matches!(err, VerifyError::Malformed(m) if m.contains("kind")));
}

#[test]
fn unsupported_versions_are_named() {
    let key = SigningKey::generate().unwrap();
    let mut bytes = Envelope::new("gw-1", 1, NOW, telemetry(1))
        .seal(&key)
        .unwrap();
    bytes[2] = 9;
    let mut v = agent_verifier("gw-1", key.public_key());
    let err = v
        .verify(&up_topic("gw-1", Kind::Telemetry), &bytes, NOW)
        .unwrap_err();
    assert_eq!(err.label(), "unsupported_version");

    let json = br#"{"v":2,"from":"gw-1","seq":1,"ts":0,"kind":"event","body":{}}"#;
    let framed = envelope::frame(json, &key);
    let err = v
        .verify(&up_topic("gw-1", Kind::Event), &framed, NOW)
        .unwrap_err();
    assert_eq!(err.label(), "unsupported_version");
}

#[test]
fn a_signed_but_ill_typed_body_is_malformed_not_a_panic() {
    let key = SigningKey::generate().unwrap();
    let json = br#"{"v":1,"from":"gw-1","seq":1,"ts":0,"kind":"telemetry","body":{"series":"x"}}"#;
    let framed = envelope::frame(json, &key);
    let mut v = agent_verifier("gw-1", key.public_key());
    let err = v
        .verify(&up_topic("gw-1", Kind::Telemetry), &framed, NOW)
        .unwrap_err();
    assert!(matches!(err, VerifyError::Malformed(m) if m.contains("telemetry body")));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = envelope::open(&bytes);
        let key = SigningKey::generate().unwrap();
        let mut v = agent_verifier("gw-1", key.public_key());
        prop_assert!(v.verify("sf/v1/gw-1/up/event", &bytes, NOW).is_err());
    }

    #[test]
    fn arbitrary_json_in_a_valid_frame_never_panics(
        body in "\\PC{0,200}",
        kind in prop::sample::select(vec!["presence","telemetry","event","inventory","command","command-result","x"]),
    ) {
        let key = SigningKey::generate().unwrap();
        let json = format!(r#"{{"v":1,"from":"gw-1","seq":1,"ts":0,"kind":"{kind}","body":{body}}}"#);
        let framed = envelope::frame(json.as_bytes(), &key);
        let _ = envelope::open(&framed);
    }

    #[test]
    fn telemetry_of_any_shape_round_trips(
        points in proptest::collection::vec((any::<i64>(), -1e12f64..1e12), 0..50),
        seq in 1u64..u64::MAX,
    ) {
        let key = SigningKey::generate().unwrap();
        let msg = Message::Telemetry(TelemetryBatch {
            backlog: seq % 2 == 0,
            series: vec![Series {
                device: None,
                metric: "m".into(),
                points: points.iter().map(|&(t, v)| Point { t, v, agg: None }).collect(),
            }],
        });
        let env = Envelope::new("gw-1", seq, NOW, msg);
        let bytes = env.seal(&key).unwrap();
        let mut v = agent_verifier("gw-1", key.public_key());
        prop_assert_eq!(v.verify(&up_topic("gw-1", Kind::Telemetry), &bytes, NOW).unwrap(), env);
    }
}

/// A large envelope travels compressed (version 2) and verifies; a small one stays
/// version 1; a receiver refuses an unknown content byte, a stream that does not inflate,
/// and one that inflates past the frame limit (a bomb), naming each.
#[test]
fn compressed_frames_verify_and_bad_ones_are_named() {
    let key = SigningKey::generate().unwrap();
    let mut v = agent_verifier("gw-1", key.public_key());
    let env = Envelope::new("gw-1", 1, NOW, telemetry(500));
    let json = env.to_json().unwrap();
    let frame = envelope::frame_compressed(&json, &key);
    assert_eq!(frame[2], envelope::FRAME_VERSION_CONTENT);
    assert!(
        frame.len() * 3 < json.len(),
        "{} of {}",
        frame.len(),
        json.len()
    );
    let got = v
        .verify(&up_topic("gw-1", Kind::Telemetry), &frame, NOW)
        .unwrap();
    assert_eq!(got, env);
    let small = Envelope::new("gw-1", 2, NOW, telemetry(1))
        .to_json()
        .unwrap();
    assert_eq!(
        envelope::frame_compressed(&small, &key)[2],
        envelope::FRAME_VERSION
    );

    let sign = |content: u8, payload: &[u8]| {
        let mut signed = vec![content];
        signed.extend_from_slice(payload);
        let mut out = b"SF\x02".to_vec();
        out.extend_from_slice(&key.sign(&signed));
        out.extend_from_slice(&signed);
        out
    };
    let zlib = |data: &[u8]| {
        use std::io::Write as _;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(data).unwrap();
        z.finish().unwrap()
    };
    let bomb = zlib(&vec![b' '; envelope::MAX_FRAME_LEN + 1]);
    assert!(bomb.len() < 10_000);
    for (frame, says) in [
        (sign(7, &json), "content encoding 7"),
        (sign(1, &json), "compressed envelope"),
        (sign(1, &bomb), "inflates past"),
        (sign(0, &json[..json.len() - 1]), "envelope"),
    ] {
        let e = envelope::open(&frame).unwrap_err().to_string();
        assert!(e.contains(says), "{says}: {e}");
    }
    // Plain JSON in a version-2 frame is fine too.
    let third = Envelope::new("gw-1", 3, NOW, telemetry(2))
        .to_json()
        .unwrap();
    let got = v
        .verify(&up_topic("gw-1", Kind::Telemetry), &sign(0, &third), NOW)
        .unwrap();
    assert_eq!(got.seq, 3);
}
