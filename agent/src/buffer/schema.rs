//! The buffer's SQL: schema migrations (ordered, tracked by `PRAGMA user_version`) and the
//! statements the store runs, as named constants.

/// Ordered migrations; `user_version` is the number applied.
pub const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    "
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        device TEXT NOT NULL,
        metric TEXT NOT NULL,
        UNIQUE (device, metric)
    );
    CREATE TABLE points (
        id INTEGER PRIMARY KEY,
        series INTEGER NOT NULL,
        t INTEGER NOT NULL,
        v REAL NOT NULL,
        res INTEGER NOT NULL DEFAULT 0,
        n INTEGER,
        vmin REAL,
        vmax REAL
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        eid TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        ts INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE TABLE inventory (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        body TEXT NOT NULL,
        pending INTEGER NOT NULL
    );
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        class INTEGER NOT NULL,
        weight INTEGER NOT NULL,
        points INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        payload BLOB NOT NULL
    );
    CREATE TABLE commands_seen (id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
    ",
];

pub const GET_META: &str = "SELECT value FROM meta WHERE key = ?1";
pub const SET_META: &str =
    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

pub const FIND_SERIES: &str = "SELECT id FROM series WHERE device = ?1 AND metric = ?2";
pub const ADD_SERIES: &str = "INSERT INTO series (device, metric) VALUES (?1, ?2)";
pub const ALL_SERIES: &str = "SELECT id, device, metric FROM series";

pub const ADD_POINT: &str = "INSERT INTO points (series, t, v) VALUES (?1, ?2, ?3)";
pub const ADD_POINT_WITH_ID: &str =
    "INSERT INTO points (id, series, t, v, res, n, vmin, vmax) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
pub const OLDEST_POINTS: &str =
    "SELECT id, series, t, v, res, n, vmin, vmax FROM points ORDER BY id LIMIT ?1";
pub const LIVE_POINTS: &str =
    "SELECT id, series, t, v, res, n, vmin, vmax FROM points WHERE id > ?1 ORDER BY id LIMIT ?2";
pub const BACKLOG_POINTS: &str =
    "SELECT id, series, t, v, res, n, vmin, vmax FROM points WHERE id <= ?1 ORDER BY id LIMIT ?2";
pub const DELETE_POINTS_RANGE: &str = "DELETE FROM points WHERE id >= ?1 AND id <= ?2";
pub const COUNT_POINTS: &str = "SELECT COUNT(*) FROM points";
pub const MAX_POINT_ID: &str = "SELECT COALESCE(MAX(id), 0) FROM points";
pub const OLDEST_POINT_TS: &str = "SELECT t FROM points ORDER BY id LIMIT 1";

pub const ADD_EVENT: &str =
    "INSERT INTO events (eid, kind, ts, body) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (eid) DO NOTHING";
pub const NEXT_EVENTS: &str = "SELECT id, kind, body FROM events ORDER BY id LIMIT ?1";
pub const DELETE_EVENT: &str = "DELETE FROM events WHERE id = ?1";
pub const EVENT_STATS: &str =
    "SELECT COUNT(*), COALESCE(SUM(length(body)), 0), MIN(ts) FROM events";

pub const SET_INVENTORY: &str = "INSERT INTO inventory (id, body, pending) VALUES (1, ?1, 1)
     ON CONFLICT (id) DO UPDATE SET body = excluded.body, pending = 1";
pub const GET_INVENTORY: &str = "SELECT body, pending FROM inventory WHERE id = 1";
pub const INVENTORY_SENT: &str = "UPDATE inventory SET pending = 0 WHERE id = 1";

pub const ADD_OUTBOX: &str =
    "INSERT INTO outbox (seq, kind, class, weight, points, ts, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
pub const OUTBOX_AFTER: &str =
    "SELECT seq, kind, payload FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2";
pub const DELETE_OUTBOX: &str = "DELETE FROM outbox WHERE seq = ?1 RETURNING class, weight, points";
pub const OLDEST_EVENT_TS: &str = "SELECT ts FROM events ORDER BY id LIMIT 1";
pub const OLDEST_OUTBOX_TS: &str = "SELECT ts FROM outbox ORDER BY seq LIMIT 1";
pub const OUTBOX_STATS: &str =
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN class = 1 THEN weight ELSE 0 END), 0), MIN(ts) FROM outbox";

pub const SEEN_COMMAND: &str =
    "INSERT INTO commands_seen (id, at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING";
pub const FORGET_OLD_COMMANDS: &str = "DELETE FROM commands_seen WHERE at < ?1";
