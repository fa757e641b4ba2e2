//! Ordered schema migrations, numbered by `PRAGMA user_version`. Append only: a released
//! migration is never edited; a change is a new entry.

use rusqlite::Connection;

use super::DbError;

/// The migrations, in order; entry `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: stores, agents, enrollment, ingest bookkeeping, telemetry, events, devices,
    //    assets with history, people and tokens.
    r"
CREATE TABLE stores (
    code          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    region        TEXT NOT NULL DEFAULT '',
    address       TEXT NOT NULL DEFAULT '',
    timezone      TEXT NOT NULL DEFAULT 'UTC',
    trading_hours TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
);

CREATE TABLE enroll_tokens (
    id          TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL,
    store_code  TEXT NOT NULL REFERENCES stores(code),
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    max_uses    INTEGER,
    uses        INTEGER NOT NULL DEFAULT 0,
    revoked_at  INTEGER,
    note        TEXT NOT NULL DEFAULT ''
);

CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    public_key    TEXT NOT NULL,
    store_code    TEXT NOT NULL REFERENCES stores(code),
    enrolled_at   INTEGER NOT NULL,
    token_id      TEXT,
    hostname      TEXT NOT NULL DEFAULT '',
    agent_version TEXT NOT NULL DEFAULT '',
    presence      TEXT NOT NULL DEFAULT 'unknown',
    presence_at   INTEGER,
    started_at    INTEGER,
    last_seen     INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX agents_store ON agents(store_code);

-- Every (agent, seq) stored once; rows older than the raw retention are pruned.
CREATE TABLE received (
    agent_id TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;
CREATE INDEX received_at ON received(at);

-- A series is one metric of one device (device '' is the gateway) in one store, so that
-- a reinstalled gateway continues its charts.
CREATE TABLE series (
    id         INTEGER PRIMARY KEY,
    store_code TEXT NOT NULL,
    device     TEXT NOT NULL,
    metric     TEXT NOT NULL,
    last_t     INTEGER,
    last_v     REAL,
    UNIQUE (store_code, device, metric)
);

CREATE TABLE points (
    series_id INTEGER NOT NULL,
    t         INTEGER NOT NULL,
    v         REAL NOT NULL,
    PRIMARY KEY (series_id, t)
) WITHOUT ROWID;

-- res 60 (per minute) and 3600 (per hour); bucket is the start, ms.
CREATE TABLE rollups (
    series_id INTEGER NOT NULL,
    res       INTEGER NOT NULL,
    bucket    INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    sum       REAL NOT NULL,
    min       REAL NOT NULL,
    max       REAL NOT NULL,
    PRIMARY KEY (series_id, res, bucket)
) WITHOUT ROWID;

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    agent_id    TEXT NOT NULL,
    store_code  TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    device      TEXT NOT NULL DEFAULT '',
    code        TEXT NOT NULL,
    severity    TEXT NOT NULL,
    message     TEXT NOT NULL DEFAULT '',
    data        TEXT NOT NULL DEFAULT '{}',
    received_at INTEGER NOT NULL,
    UNIQUE (agent_id, event_id)
);
CREATE INDEX events_store_ts ON events(store_code, ts);
CREATE INDEX events_ts ON events(ts);

-- Live state of each device in each store.
CREATE TABLE devices (
    store_code  TEXT NOT NULL,
    device      TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    class       TEXT NOT NULL DEFAULT '',
    interval_ms INTEGER,
    last_seen   INTEGER,
    state       TEXT NOT NULL DEFAULT 'unknown',
    state_at    INTEGER,
    state_note  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (store_code, device)
);

CREATE TABLE assets (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,
    store_code    TEXT,
    slot          TEXT,
    agent_id      TEXT,
    class         TEXT NOT NULL DEFAULT '',
    vendor        TEXT NOT NULL DEFAULT '',
    model         TEXT NOT NULL DEFAULT '',
    serial        TEXT NOT NULL DEFAULT '',
    firmware      TEXT NOT NULL DEFAULT '',
    hostname      TEXT NOT NULL DEFAULT '',
    macs          TEXT NOT NULL DEFAULT '',
    lifecycle     TEXT NOT NULL DEFAULT 'active',
    purchase_date TEXT NOT NULL DEFAULT '',
    warranty_end  TEXT NOT NULL DEFAULT '',
    parent_id     INTEGER REFERENCES assets(id),
    attrs         TEXT NOT NULL DEFAULT '{}',
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX assets_store ON assets(store_code, slot);
CREATE INDEX assets_serial ON assets(serial);
CREATE INDEX assets_agent ON assets(agent_id);

CREATE TABLE asset_history (
    id       INTEGER PRIMARY KEY,
    asset_id INTEGER NOT NULL REFERENCES assets(id),
    ts       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    field    TEXT NOT NULL,
    before   TEXT,
    after    TEXT
);
CREATE INDEX asset_history_asset ON asset_history(asset_id, id);

CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    pw_hash    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,
    user_name  TEXT NOT NULL REFERENCES users(name),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used  INTEGER,
    revoked_at INTEGER
);
",
    // v2: routine runs reported by agents.
    "
CREATE TABLE routine_runs (
    agent_id       TEXT NOT NULL,
    id             TEXT NOT NULL,
    store_code     TEXT NOT NULL,
    routine        TEXT NOT NULL,
    version        INTEGER NOT NULL,
    trigger_type   TEXT NOT NULL,
    trigger_detail TEXT NOT NULL,
    device         TEXT,
    started_at     INTEGER NOT NULL,
    finished_at    INTEGER NOT NULL,
    outcome        TEXT NOT NULL,
    reason         TEXT NOT NULL,
    steps          TEXT NOT NULL,
    received_at    INTEGER NOT NULL,
    PRIMARY KEY (agent_id, id)
);
CREATE INDEX routine_runs_store ON routine_runs(store_code, finished_at);
CREATE INDEX routine_runs_finished ON routine_runs(finished_at);
",
    // v3: fleet tasks and their targets, store tags, the controller's downlink sequence.
    "
ALTER TABLE stores ADD COLUMN tags TEXT NOT NULL DEFAULT '';

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

CREATE TABLE tasks (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    action       TEXT NOT NULL,
    selector     TEXT NOT NULL,
    plan         TEXT NOT NULL,
    run_window   TEXT NOT NULL,
    phase        TEXT NOT NULL,
    phase_note   TEXT NOT NULL DEFAULT '',
    waves_opened TEXT NOT NULL DEFAULT '[]',
    request      TEXT,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX tasks_created ON tasks(created_at);

-- One row per target agent. `state` is written by the task engine only; what an agent
-- reported is kept beside it (`reported`, `pending` until the engine has taken it).
CREATE TABLE task_targets (
    task_id     TEXT NOT NULL REFERENCES tasks(id),
    agent_id    TEXT NOT NULL,
    pos         INTEGER NOT NULL,
    store_code  TEXT NOT NULL,
    region      TEXT NOT NULL,
    wave        INTEGER NOT NULL,
    state       TEXT NOT NULL,
    sent_at     INTEGER,
    started_at  INTEGER,
    finished_at INTEGER,
    command_id  TEXT NOT NULL,
    reported    TEXT,
    message     TEXT NOT NULL DEFAULT '',
    outcome     TEXT NOT NULL DEFAULT '',
    pending     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (task_id, agent_id)
);
CREATE UNIQUE INDEX task_targets_command ON task_targets(command_id);
CREATE INDEX task_targets_pending ON task_targets(task_id) WHERE pending = 1;
",
    // v4: alerts, tickets with their timeline, engineers, silences, the webhook outbox;
    //     presence ordered by the agent's seq.
    "
ALTER TABLE agents ADD COLUMN presence_seq INTEGER;

CREATE TABLE engineers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    skills     TEXT NOT NULL DEFAULT '',
    regions    TEXT NOT NULL DEFAULT '',
    timezone   TEXT NOT NULL DEFAULT 'UTC',
    shift      TEXT NOT NULL DEFAULT '',
    capacity   INTEGER NOT NULL DEFAULT 5,
    status     TEXT NOT NULL DEFAULT 'available',
    phone      TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);

-- One row per alert episode: a rule on a subject from firing to clearing.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    rule        TEXT NOT NULL,
    store_code  TEXT NOT NULL,
    subject     TEXT NOT NULL,
    since       INTEGER NOT NULL,
    fired_at    INTEGER NOT NULL,
    cleared_at  INTEGER,
    detail      TEXT NOT NULL DEFAULT '',
    -- open (no ticket yet), waiting (for a self-heal outcome), ticket, healed, muted
    disposition TEXT NOT NULL DEFAULT 'open',
    note        TEXT NOT NULL DEFAULT '',
    ticket_id   INTEGER
);
CREATE INDEX alerts_open ON alerts(rule, store_code, subject) WHERE cleared_at IS NULL;
CREATE INDEX alerts_fired ON alerts(fired_at);
CREATE INDEX alerts_ticket ON alerts(ticket_id);

CREATE TABLE tickets (
    id             INTEGER PRIMARY KEY,
    dedupe_key     TEXT NOT NULL,
    title          TEXT NOT NULL,
    store_code     TEXT NOT NULL,
    source         TEXT NOT NULL,
    rule           TEXT NOT NULL DEFAULT '',
    skill          TEXT NOT NULL DEFAULT '',
    severity       TEXT NOT NULL,
    impact         TEXT NOT NULL,
    priority       INTEGER NOT NULL,
    status         TEXT NOT NULL,
    held_from      TEXT,
    hold_since     INTEGER,
    held_ms        INTEGER NOT NULL DEFAULT 0,
    engineer_id    TEXT,
    escalation     INTEGER NOT NULL DEFAULT 0,
    vendor_repair  INTEGER NOT NULL DEFAULT 0,
    opened_at      INTEGER NOT NULL,
    detected_at    INTEGER,
    fault_since    INTEGER,
    accepted_at    INTEGER,
    on_site_at     INTEGER,
    resolved_at    INTEGER,
    closed_at      INTEGER,
    response_due   INTEGER NOT NULL,
    resolution_due INTEGER NOT NULL,
    report         TEXT NOT NULL DEFAULT '',
    rating         INTEGER,
    reopened       INTEGER NOT NULL DEFAULT 0,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX tickets_dedupe ON tickets(dedupe_key, opened_at);
CREATE INDEX tickets_status ON tickets(status);
CREATE INDEX tickets_store ON tickets(store_code, opened_at);
CREATE INDEX tickets_engineer ON tickets(engineer_id, status);

CREATE TABLE ticket_assets (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    asset_id  INTEGER NOT NULL REFERENCES assets(id),
    PRIMARY KEY (ticket_id, asset_id)
) WITHOUT ROWID;

CREATE TABLE ticket_timeline (
    id        INTEGER PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    ts        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    text      TEXT NOT NULL,
    data      TEXT NOT NULL DEFAULT '{}',
    -- What the entry is about (a routine run's id), so that it is added once.
    ref       TEXT
);
CREATE INDEX ticket_timeline_ticket ON ticket_timeline(ticket_id, id);
CREATE UNIQUE INDEX ticket_timeline_ref ON ticket_timeline(ticket_id, ref) WHERE ref IS NOT NULL;

-- Silences and maintenance windows: no ticket for a store (or one device, or one rule)
-- between starts_at and ends_at.
CREATE TABLE silences (
    id         INTEGER PRIMARY KEY,
    store_code TEXT NOT NULL,
    device     TEXT,
    rule       TEXT,
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX silences_end ON silences(ends_at);

-- Webhook deliveries, written in the same transaction as the change they tell of.
CREATE TABLE webhook_outbox (
    id           INTEGER PRIMARY KEY,
    hook         TEXT NOT NULL,
    event        TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    delivered_at INTEGER,
    failed_at    INTEGER,
    last_error   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_outbox_due ON webhook_outbox(next_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
",
    // v5: agent releases, one binary per version and architecture, signed with the release
    // key (the binary itself is a file in the state directory's releases/).
    "
CREATE TABLE releases (
    version      TEXT NOT NULL,
    arch         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    signature    TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    published_by TEXT NOT NULL,
    PRIMARY KEY (version, arch)
);
",
    // v6: an agent id is bound to its first key; an admin's re-enrollment opens a window
    //     for one new key.
    "
ALTER TABLE agents ADD COLUMN reenroll_until INTEGER;
",
    // v7: roles. Users have a role and can be disabled; API tokens belong to a user and
    //     carry a role no higher than the user's. Users named like an engineer become
    //     engineers, everyone else stays admin (what they could do before).
    "
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'viewer';
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
UPDATE users SET role = CASE WHEN name IN (SELECT id FROM engineers) THEN 'engineer' ELSE 'admin' END;
ALTER TABLE api_tokens ADD COLUMN user_name TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
CREATE INDEX sessions_user ON sessions(user_name);
",
    // v8: the hash (Mosquitto's $7$ format) of an agent's password at an external broker.
    "
ALTER TABLE agents ADD COLUMN broker_pw_hash TEXT;
",
    // v9: indexes for the rule engine's exception reads (the readings of a metric, recent
    //     events of a code). Not on last_v: every reading updates it, and an index on it
    //     would make each of those updates write the index too.
    "
CREATE INDEX series_metric ON series(metric);
CREATE INDEX events_code_ts ON events(code, ts);
",
    // v10: messages whose data the database refused, held with the refusal so that the
    //      rest of their batch is stored and ingest goes on; an admin retries or drops
    //      them. The envelope is kept as the agent signed it (JSON, bytes). And the seq of
    //      each agent's newest inventory applied: an older one arriving later is skipped.
    "
ALTER TABLE agents ADD COLUMN inventory_seq INTEGER;
CREATE TABLE ingest_held (
    agent_id TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    store_id TEXT NOT NULL,
    kind     TEXT NOT NULL,
    envelope BLOB NOT NULL,
    error    TEXT NOT NULL,
    held_at  INTEGER NOT NULL,
    PRIMARY KEY (agent_id, seq)
);
",
    // v11: what each batch adds to a series' per-minute bucket (a count, sum, min and max),
    //      folded into the per-minute and per-hour rollups in the background
    //      ([telemetry] rollup_every_secs) instead of two upserts per reading at ingest.
    //      A delta is deleted in the transaction that folds it: counted once.
    "
CREATE TABLE rollup_deltas (
    id        INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL,
    bucket    INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    sum       REAL NOT NULL,
    min       REAL NOT NULL,
    max       REAL NOT NULL
);
",
    // v12: how far each replica's ingest is behind the agents, so that the ticket engine
    //      does not take late data for missing data (a stale fleet).
    "
CREATE TABLE ingest_behind (
    replica   TEXT PRIMARY KEY,
    behind_ms INTEGER NOT NULL,
    at        INTEGER NOT NULL
);
",
    // v13: the fleet's tally (store healths, device counts, newest problems), judged by the
    //      engines' replica every few seconds so that the overview of a large fleet does
    //      not read every device on each request.
    "
CREATE TABLE fleet_tally (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    at   INTEGER NOT NULL,
    body TEXT NOT NULL
);
",
    // v14: devices the gateways' sweeps found on the stores' networks, not configured yet.
    "
CREATE TABLE discovered (
    store_code  TEXT NOT NULL,
    address     TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    protocols   TEXT NOT NULL,
    class       TEXT NOT NULL,
    vendor      TEXT NOT NULL,
    model       TEXT NOT NULL,
    serial      TEXT NOT NULL,
    firmware    TEXT NOT NULL,
    ipp_url     TEXT NOT NULL,
    description TEXT NOT NULL,
    swept_at    INTEGER NOT NULL,
    PRIMARY KEY (store_code, address)
);
CREATE INDEX discovered_agent ON discovered(agent_id);
",
    // v15: where stores and engineers are: a store's coordinates, an engineer's home base
    //      and where (and when) they last checked in.
    "
ALTER TABLE stores ADD COLUMN lat REAL;
ALTER TABLE stores ADD COLUMN lon REAL;
ALTER TABLE engineers ADD COLUMN home_lat REAL;
ALTER TABLE engineers ADD COLUMN home_lon REAL;
ALTER TABLE engineers ADD COLUMN seen_lat REAL;
ALTER TABLE engineers ADD COLUMN seen_lon REAL;
ALTER TABLE engineers ADD COLUMN seen_at INTEGER;
ALTER TABLE engineers ADD COLUMN seen_store TEXT;
",
    // v16: skill levels: an engineer's, and the lowest a ticket needs.
    "
ALTER TABLE engineers ADD COLUMN level TEXT NOT NULL DEFAULT 'senior';
ALTER TABLE tickets ADD COLUMN level TEXT NOT NULL DEFAULT 'junior';
",
    // v17: opening new stores: store formats, each new store's format and opening day, the
    //      checks people ticked, and the format's tasks pushed to its gateway.
    "
CREATE TABLE formats (
    name       TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE TABLE openings (
    store_code TEXT PRIMARY KEY REFERENCES stores(code),
    format     TEXT NOT NULL REFERENCES formats(name),
    opens_on   TEXT NOT NULL,
    set_at     INTEGER NOT NULL,
    set_by     TEXT NOT NULL,
    warned_at  INTEGER
);
CREATE TABLE opening_checks (
    store_code TEXT NOT NULL,
    item       TEXT NOT NULL,
    done_by    TEXT NOT NULL,
    done_at    INTEGER NOT NULL,
    PRIMARY KEY (store_code, item)
);
CREATE TABLE opening_tasks (
    store_code TEXT NOT NULL,
    step       INTEGER NOT NULL,
    task_id    TEXT NOT NULL,
    PRIMARY KEY (store_code, step)
);
",
    // v18: spare parts on tickets, and the visits a fix took (first-time fix).
    "
ALTER TABLE tickets ADD COLUMN visits INTEGER NOT NULL DEFAULT 0;
UPDATE tickets SET visits = 1 WHERE on_site_at IS NOT NULL;
CREATE TABLE ticket_parts (
    id         INTEGER PRIMARY KEY,
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    part       TEXT NOT NULL,
    quantity   INTEGER NOT NULL,
    state      TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT '',
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX ticket_parts_ticket ON ticket_parts(ticket_id, id);
",
    // v19: each person's own time zone for the pages (empty: UTC).
    "
ALTER TABLE users ADD COLUMN timezone TEXT NOT NULL DEFAULT '';
",
];

/// Brings the schema up to the newest version.
pub fn apply(conn: &mut Connection) -> Result<(), DbError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let newest = MIGRATIONS.len() as i64;
    if current > newest {
        return Err(DbError::Backend(format!(
            "the database has schema version {current}, newer than this controller knows ({newest}); run a newer controller"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "Database migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_refuse_a_newer_schema() {
        let mut c = Connection::open_in_memory().unwrap();
        apply(&mut c).unwrap();
        apply(&mut c).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        c.pragma_update(None, "user_version", 999).unwrap();
        assert!(apply(&mut c).unwrap_err().to_string().contains("newer"));
    }
}
