//! The demo's store openings: a store format, and the last two stores of the fleet opening
//! from it, one in ten days and one in two (inside the warning's days, so that it has its
//! event and its ticket). Their gateways report what the format expects only in part (a
//! store with two tills where the format wants three), and nobody has ticked the go-live
//! checks yet, so the readiness board has something to say.

use serde_json::json;

use crate::{Options, SimError};

/// The demo's format.
fn format() -> serde_json::Value {
    json!({
        "name": "standard",
        "description": "Neighbourhood supermarket",
        "devices": [
            {"class": "pos", "count": 3},
            {"class": "receipt-printer", "profile": "Epson TM-T88"},
            {"class": "scale"},
            {"class": "scanner", "count": 2},
            {"class": "ups", "profile": "APC"},
            {"class": "fridge-sensor"}
        ],
        "checklist": ["Network cabled and tested", "Staff trained on the tills", "Opening stock delivered"]
    })
}

/// Puts the format and the two openings.
pub async fn start(opts: &Options) -> Result<(), SimError> {
    if opts.stores < 4 {
        return Ok(());
    }
    let api = |what: String| {
        move |source| SimError::Api {
            store: what,
            source,
        }
    };
    opts.client
        .call("PUT", "/api/v1/formats/standard", Some(&format()))
        .await
        .map_err(api("format standard".into()))?;
    let now = storefleet_protocol::now_ms();
    for (n, days) in [(opts.stores, 10), (opts.stores - 1, 2)] {
        let store = crate::profile::store(n);
        let on = storefleet_controller::openings::day_after(now, &store.timezone, days);
        opts.client
            .call(
                "PUT",
                &format!("/api/v1/stores/{}/opening", store.code),
                Some(&json!({"format": "standard", "opens_on": on})),
            )
            .await
            .map_err(api(store.code.clone()))?;
    }
    Ok(())
}
