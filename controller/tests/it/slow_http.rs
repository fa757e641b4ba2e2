//! Regression: connections that never finish their headers used to pile up until the
//! process ran out of file descriptors, which HTTP shares with the broker and SQLite. The
//! controller runs here with 1,024 open files; an attacker opens more connections than that.
//! The controller serves HTTPS (its default), so the attacker dawdles in the TLS handshake;
//! over plain HTTP it would dawdle in the headers, under the same timeout and caps.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::Controller;

/// A connection from `from` that starts a TLS handshake (a record header announcing a
/// 512-byte ClientHello and its first bytes), or with `plain` half a request's headers, and
/// then sends nothing.
async fn dawdler(from: [u8; 4], to: SocketAddr, plain: bool) -> Option<TcpStream> {
    let sock = TcpSocket::new_v4().ok()?;
    sock.bind(SocketAddr::from((from, 0))).ok()?;
    let mut s = tokio::time::timeout(Duration::from_secs(5), sock.connect(to))
        .await
        .ok()?
        .ok()?;
    let start: &[u8] = if plain {
        b"GET /login HTTP/1.1\r\nHost: x\r\n"
    } else {
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
    };
    let _ = s.write_all(start).await;
    Some(s)
}

/// Whether the broker accepts the controller's own login (CONNACK within 5 s).
async fn broker_answers(ctl: &Controller) -> bool {
    let (client, mut ev) = rumqttc::AsyncClient::new(
        crate::common::controller_mqtt(
            ctl.mqtt,
            &ctl.dir.path().join("state"),
            &ctl.client_id,
            &format!("probe-{:08x}", rand::random::<u32>()),
        ),
        4,
    );
    let ok = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ev.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    let _ = client.try_disconnect();
    ok
}

/// The body of `path` once it answers 200 within `secs` (retrying), with the admin token.
async fn answer(ctl: &Controller, path: &str, secs: u64) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let url = format!("{}{path}", ctl.url());
    while Instant::now() < deadline {
        let r = ctl
            .send(
                storefleet_support::http::Request {
                    method: "GET",
                    url: &url,
                    headers: vec![("authorization", format!("Bearer {}", ctl.token))],
                    body: None,
                },
                Duration::from_secs(3),
            )
            .await;
        match r {
            Ok(r) if r.status == 200 => return Some(r.text()),
            Ok(r) => eprintln!("{path}: {}", r.status),
            Err(e) => eprintln!("{path}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn api_answers(ctl: &Controller, secs: u64) -> bool {
    answer(ctl, "/api/v1/health", secs).await.is_some()
}

async fn counter(ctl: &Controller, outcome: &str) -> u64 {
    let text = answer(ctl, "/metrics", 10).await.expect("/metrics answers");
    let line = format!("storefleet_http_connections_total{{outcome=\"{outcome}\"}}");
    text.lines()
        .find_map(|l| l.strip_prefix(&line).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_broker_keep_answering_while_slow_connections_flood_in() {
    let ctl = Controller::start_limited(
        "[http]\nheader_timeout_secs = 2\nmax_connections_per_address = 100\n",
        1024,
    );
    let plain = !ctl.config().http.tls;
    // One address opens 1,500 connections that never finish their headers.
    let mut held = Vec::new();
    for _ in 0..1500 {
        if let Some(s) = dawdler([127, 0, 0, 2], ctl.http, plain).await {
            held.push(s);
        }
    }
    assert!(
        held.len() > 1024,
        "the attack could not open its connections"
    );
    assert!(
        api_answers(&ctl, 5).await,
        "API during the attack: {}",
        ctl.log()
    );
    assert!(broker_answers(&ctl).await, "broker during the attack");
    let refused = counter(&ctl, "refused_address_cap").await;
    assert!(refused >= 1300, "refused by the address cap: {refused}");

    // The server closes what it accepted once the header timeout passes.
    let mut first = held.swap_remove(0);
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(6), first.read(&mut buf))
        .await
        .expect("a connection without headers was kept open past the timeout");
    // A reset is a close as well.
    if let Ok(n) = read {
        assert!(
            n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    drop(held);

    // Many addresses: the total cap keeps descriptors for the broker and the database, and
    // the connections that never sent a whole request make room for those that do: the
    // API answers while the attack holds its connections.
    let mut held = Vec::new();
    for i in 0..1400u32 {
        let from = [127, 0, 1, 1 + (i % 40) as u8];
        if let Some(s) = dawdler(from, ctl.http, plain).await {
            held.push(s);
        }
    }
    assert!(
        broker_answers(&ctl).await,
        "broker during the spread attack"
    );
    assert!(api_answers(&ctl, 3).await, "API during the spread attack");
    assert_eq!(
        counter(&ctl, "accept_error").await,
        0,
        "the process ran out of descriptors: {}",
        ctl.log()
    );
    assert!(counter(&ctl, "evicted_idle").await > 0);
    drop(held);
}
