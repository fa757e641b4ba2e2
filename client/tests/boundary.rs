//! The client needs no database and no server: an outside client that depends on it gets the
//! API's types and an HTTP client, not the controller. Checked on the workspace's lock file,
//! which lists every package each package may use (with any of its features), so what is
//! not reachable there cannot be linked.

use std::collections::{BTreeMap, BTreeSet};

/// Packages the client must never reach.
const SERVER_SIDE: [&str; 8] = [
    "storefleet-controller",
    "storefleet-storage",
    "storefleet-agent",
    "rusqlite",
    "libsqlite3-sys",
    "postgres",
    "tokio-postgres",
    "maud",
];

/// Every package `root` may reach, by name, from the lock file's text.
fn reachable(lock: &str, root: &str) -> BTreeSet<String> {
    let lock: toml::Table = toml::from_str(lock).expect("Cargo.lock is TOML");
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in lock["package"].as_array().expect("[[package]] entries") {
        let name = p["name"].as_str().expect("a package name").to_owned();
        let of = deps.entry(name).or_default();
        for d in p
            .get("dependencies")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
        {
            let d = d.as_str().expect("a dependency name");
            of.insert(d.split(' ').next().unwrap_or(d).to_owned());
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(n) = todo.pop() {
        if seen.insert(n.clone()) {
            todo.extend(deps.get(&n).into_iter().flatten().cloned());
        }
    }
    seen
}

#[test]
fn the_client_reaches_no_database_and_no_server() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .expect("the workspace's Cargo.lock");
    let client = reachable(&lock, "storefleet-client");
    assert!(client.contains("storefleet-protocol"), "{client:?}");
    let bad: Vec<&str> = SERVER_SIDE
        .into_iter()
        .filter(|p| client.contains(*p))
        .collect();
    assert!(bad.is_empty(), "storefleet-client reaches {bad:?}");
    // The check can see a server: the controller reaches all of its own.
    let controller = reachable(&lock, "storefleet-controller");
    assert!(controller.contains("rusqlite") && controller.contains("storefleet-storage"));
}
