//! The simulated field team: two engineers per region (ids `sim-…`), created through the
//! API each with their own user (role engineer) and API token, and a loop that works their
//! tickets the way people would, one step a minute: accept, on the way, check in
//! (repairing a broken simulated printer), resolve with a report, each as that engineer;
//! then the dispatcher (the demo's admin) closes it with a rating. It only touches tickets
//! assigned to its own engineers.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use rand::SeedableRng as _;
use serde_json::{json, Value};
use storefleet_protocol::now_ms;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{printer, Options, SimError};
use storefleet_controller::client::Client;

const TEAM: &[(&str, &str, &str)] = &[
    ("sim-nora", "Nora Jensen", "north"),
    ("sim-nils", "Nils Petersen", "north"),
    ("sim-sepp", "Sepp Huber", "south"),
    ("sim-sara", "Sara Bauer", "south"),
    ("sim-elke", "Elke Richter", "east"),
    ("sim-emil", "Emil Kraus", "east"),
    ("sim-wim", "Wim Schmitz", "west"),
    ("sim-wanda", "Wanda Koch", "west"),
    ("sim-aldo", "Aldo Gruber", "alps"),
    ("sim-anja", "Anja Steiner", "alps"),
];

/// How long the team takes for each step of a ticket.
const STEP_MS: i64 = 60_000;

fn skills(i: usize) -> Vec<&'static str> {
    if i % 2 == 0 {
        vec![
            "printers", "pos", "network", "gateway", "general", "install",
        ]
    } else {
        vec!["printers", "power", "refrigeration", "general"]
    }
}

/// Creates the team and starts working its tickets on `tracker`.
pub async fn start(
    opts: &Options,
    token: CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), SimError> {
    for (i, (id, name, region)) in TEAM.iter().enumerate() {
        // Each lives in one of their region's cities.
        let home = crate::profile::CITIES
            .iter()
            .filter(|c| c.1 == *region)
            .nth(i % 2)
            .map(|c| json!({"lat": c.3, "lon": c.4}));
        let body = json!({
            "id": id, "name": name, "skills": skills(i), "regions": [region],
            "timezone": "Europe/Berlin", "shift": "24/7", "capacity": 6,
            "phone": format!("+49 40 5550{i:03}"), "home": home,
        });
        opts.client
            .call("PUT", &format!("/api/v1/engineers/{id}"), Some(&body))
            .await
            .map_err(|source| SimError::Api {
                store: format!("engineer {id}"),
                source,
            })?;
    }
    let mut own = HashMap::new();
    for (id, _, _) in TEAM {
        let c = engineer_client(&opts.client, id)
            .await
            .map_err(|source| SimError::Api {
                store: format!("engineer {id}"),
                source,
            })?;
        own.insert((*id).to_owned(), c);
    }
    tracker.spawn(work(opts.client.clone(), own, opts.dir.clone(), token));
    Ok(())
}

/// A client acting as engineer `id`: their user (made, or given a new password, by the
/// admin), signed in once to make their own API token.
async fn engineer_client(
    admin: &Client,
    id: &str,
) -> Result<Client, storefleet_controller::cli::CliError> {
    let password = storefleet_controller::auth::random_secret();
    let made = admin
        .call(
            "POST",
            "/api/v1/users",
            Some(&json!({"name": id, "role": "engineer", "password": password})),
        )
        .await;
    if let Err(storefleet_controller::cli::CliError::Api { status: 409, .. }) = made {
        admin
            .call(
                "POST",
                &format!("/api/v1/users/{id}/password"),
                Some(&json!({ "password": password })),
            )
            .await?;
    } else {
        made?;
    }
    let origin = admin.base.trim_end_matches('/').to_owned();
    let web = storefleet_support::http::Client::new(&admin.trust)?;
    let signed_in = web
        .send(
            storefleet_support::http::Request {
                method: "POST",
                url: &format!("{origin}/login"),
                headers: vec![("origin", origin.clone())],
                body: Some((
                    "application/x-www-form-urlencoded",
                    format!("user={id}&password={password}&next=/").into_bytes(),
                )),
            },
            Duration::from_secs(30),
        )
        .await?;
    let cookie = signed_in
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let made = web
        .send(
            storefleet_support::http::Request {
                method: "POST",
                url: &format!("{origin}/api/v1/tokens"),
                headers: vec![("origin", origin.clone()), ("cookie", cookie)],
                body: Some((
                    "application/json",
                    json!({"name": "simulated field app"})
                        .to_string()
                        .into_bytes(),
                )),
            },
            Duration::from_secs(30),
        )
        .await?;
    let v: Value = serde_json::from_slice(&made.body).unwrap_or_default();
    match v["token"].as_str() {
        Some(t) => Ok(Client {
            token: t.to_owned(),
            ..admin.clone()
        }),
        None => Err(storefleet_controller::cli::CliError::Api {
            status: made.status,
            message: made.text(),
        }),
    }
}

/// The next action for a ticket in `status`, and its body.
fn next(status: &str, rule: &str, rng: &mut impl rand::Rng) -> Option<Value> {
    Some(match status {
        "assigned" => json!({"action": "accept"}),
        "accepted" => json!({"action": "en_route"}),
        "en_route" => json!({"action": "check_in"}),
        "on_site" => json!({"action": "resolve", "report": report(rule)}),
        "resolved" => json!({"action": "close", "rating": rng.random_range(3..=5)}),
        _ => return None,
    })
}

fn report(rule: &str) -> &'static str {
    match rule {
        "printer-down" => "Print head failed; replaced it and printed a test receipt.",
        "ups-on-battery" => "Mains breaker had tripped; reset it, UPS back on mains.",
        "fridge-too-warm" => "Condenser clogged; cleaned it, temperature back to 4 °C.",
        "pos-service-down" | "device-stale" => {
            "Device had hung; power-cycled it and checked it reports."
        }
        _ => "Checked on site and fixed.",
    }
}

async fn work(
    client: Client,
    own: HashMap<String, Client>,
    dir: PathBuf,
    token: CancellationToken,
) {
    let ours: HashSet<&str> = TEAM.iter().map(|t| t.0).collect();
    let mut last: HashMap<i64, i64> = HashMap::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xf1e1d);
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    loop {
        tokio::select! { () = token.cancelled() => return, _ = tick.tick() => {} }
        let now = now_ms();
        let mut tickets = Vec::new();
        for status in ["open", "resolved"] {
            match client
                .call(
                    "GET",
                    &format!("/api/v1/tickets?status={status}&limit=5000"),
                    None,
                )
                .await
            {
                Ok(Value::Array(v)) => tickets.extend(v),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "Simulated field team cannot list tickets"),
            }
        }
        for t in tickets {
            let (Some(id), Some(engineer)) = (t["id"].as_i64(), t["engineer"].as_str()) else {
                continue;
            };
            if !ours.contains(engineer) || t["closed_at"].is_i64() {
                continue;
            }
            let since = last.entry(id).or_insert(now);
            if now - *since < STEP_MS {
                continue;
            }
            let status = t["status"].as_str().unwrap_or_default();
            let rule = t["rule"].as_str().unwrap_or_default();
            let Some(action) = next(status, rule, &mut rng) else {
                continue;
            };
            if status == "en_route" && rule == "printer-down" {
                // On site the engineer repairs the printer.
                printer::Markers::new(&dir.join(t["store"].as_str().unwrap_or_default())).repair();
            }
            *since = now;
            // Each engineer acts as themselves; closing is the dispatcher's.
            let actor = match own.get(engineer) {
                Some(c) if status != "resolved" => c,
                _ => &client,
            };
            if let Err(e) = actor
                .call(
                    "POST",
                    &format!("/api/v1/tickets/{id}/actions"),
                    Some(&action),
                )
                .await
            {
                tracing::debug!(ticket = id, error = %e, "Simulated engineer's step refused");
            }
        }
        last.retain(|_, t| now - *t < 86_400_000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_open_step_leads_to_the_next_and_the_team_covers_every_region() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for s in ["assigned", "accepted", "en_route", "on_site", "resolved"] {
            assert!(next(s, "printer-down", &mut rng).is_some(), "{s}");
        }
        assert!(next("new", "printer-down", &mut rng).is_none());
        assert!(next("on_hold", "printer-down", &mut rng).is_none());
        let regions: HashSet<&str> = TEAM.iter().map(|t| t.2).collect();
        for n in 1..=13 {
            let r = super::super::profile::store(n).region;
            assert!(regions.contains(r.as_str()), "{r}");
        }
    }
}
