//! Which agents a task targets: the selector ([`Selector`]) resolved against the fleet.

use std::collections::HashSet;

use storefleet_storage::{args, Sql, SqlExt as _};

use crate::db::DbError;

pub use storefleet_client::tasks::select::{Selector, VersionReq};

/// A task that cannot run as asked, as the storage's error.
pub fn invalid(e: storefleet_client::tasks::Invalid) -> DbError {
    DbError::Invalid(e.0)
}

/// One selected agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Agent id.
    pub agent: String,
    /// Its store.
    pub store: String,
    /// The store's region.
    pub region: String,
}

/// The agents (not revoked) that match, ordered by store code then agent id.
pub fn resolve(sel: &Selector, c: &dyn Sql) -> Result<Vec<Candidate>, DbError> {
    sel.validate().map_err(invalid)?;
    let version = (!sel.agent_version.is_empty())
        .then(|| VersionReq::parse(&sel.agent_version))
        .transpose()
        .map_err(invalid)?;
    let with_class: Option<HashSet<String>> = if sel.device_classes.is_empty() {
        None
    } else {
        let mut set = HashSet::new();
        for class in &sel.device_classes {
            set.extend(c.all(
                "SELECT store_code FROM devices WHERE class = ?1
                 UNION SELECT store_code FROM assets WHERE class = ?1 AND lifecycle = 'active' AND store_code IS NOT NULL",
                args![class],
                |r| r.text("store_code"),
            )?);
        }
        Some(set)
    };
    let rows = c.all(
        "SELECT a.id, a.store_code, s.region, s.tags, a.agent_version
         FROM agents a JOIN stores s ON s.code = a.store_code
         WHERE a.revoked_at IS NULL ORDER BY a.store_code, a.id",
        args![],
        |r| {
            Ok((
                r.text("id")?,
                r.text("store_code")?,
                r.text("region")?,
                r.text("tags")?,
                r.text("agent_version")?,
            ))
        },
    )?;
    // An empty criterion matches everything.
    let any = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
    let mut out = Vec::new();
    for (agent, store, region, tags, agent_version) in rows {
        let matches = sel.all
            || (any(&sel.regions, &region)
                && any(&sel.stores, &store)
                && any(&sel.agents, &agent)
                && (sel.tags.is_empty() || tags.split(',').any(|t| any(&sel.tags, t)))
                && with_class.as_ref().is_none_or(|s| s.contains(&store))
                && version.as_ref().is_none_or(|v| v.matches(&agent_version)));
        if matches {
            out.push(Candidate {
                agent,
                store,
                region,
            });
        }
    }
    Ok(out)
}
