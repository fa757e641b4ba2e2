//! Filters of the list routes are read strictly: a query key a route does not know is an
//! error naming the keys it does (every query struct denies unknown fields), and a filter
//! naming a store, region, engineer or agent the controller does not know is an error
//! naming it. A typo must never look like a quiet fleet.

use axum::http::StatusCode;
use storefleet_storage::{args, SqlExt as _};

use super::{ApiError, ApiResult};
use crate::state::AppState;

/// The names a list request filters by; those given must exist.
#[derive(Debug, Default, Clone)]
pub(super) struct Names {
    pub store: Option<String>,
    pub region: Option<String>,
    pub engineer: Option<String>,
    pub agent: Option<String>,
}

fn given(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Checks that every name in `n` exists: 404 naming the first that does not.
pub(super) async fn known(s: &AppState, n: Names) -> ApiResult<()> {
    let n = Names {
        store: given(n.store.as_deref()),
        region: given(n.region.as_deref()),
        engineer: given(n.engineer.as_deref()),
        agent: given(n.agent.as_deref()),
    };
    if n.store.is_none() && n.region.is_none() && n.engineer.is_none() && n.agent.is_none() {
        return Ok(());
    }
    let missing =
        s.db.read(move |c| {
            let checks = [
                (
                    "store",
                    "SELECT 1 AS x FROM stores WHERE code = ?1",
                    &n.store,
                ),
                (
                    "region",
                    "SELECT 1 AS x FROM stores WHERE region = ?1 LIMIT 1",
                    &n.region,
                ),
                (
                    "engineer",
                    "SELECT 1 AS x FROM engineers WHERE id = ?1",
                    &n.engineer,
                ),
                ("agent", "SELECT 1 AS x FROM agents WHERE id = ?1", &n.agent),
            ];
            for (what, sql, name) in checks {
                if let Some(name) = name {
                    if c.one(sql, args![name.as_str()])?.is_none() {
                        return Ok(Some(format!("no {what} {name:?}")));
                    }
                }
            }
            Ok(None)
        })
        .await?;
    match missing {
        Some(m) => Err(ApiError(StatusCode::NOT_FOUND, m)),
        None => Ok(()),
    }
}

/// A store and an agent.
pub(super) fn store_and_agent(store: Option<&str>, agent: Option<&str>) -> Names {
    Names {
        store: store.map(str::to_owned),
        agent: agent.map(str::to_owned),
        ..Names::default()
    }
}

/// Only a store.
pub(super) fn store(store: Option<&str>) -> Names {
    Names {
        store: store.map(str::to_owned),
        ..Names::default()
    }
}
