//! The OpenAPI 3.1 document of the API, served at `/api/v1/openapi.json`.

use axum::Json;
use serde_json::{json, Value};

fn op(summary: &str, params: &[(&str, &str, &str)], body: Option<&str>, ok: &str) -> Value {
    // A name starting with '#' is an integer parameter.
    let parameters: Vec<Value> = params
        .iter()
        .map(|(name, place, desc)| {
            let (name, ty) = match name.strip_prefix('#') {
                Some(n) => (n, "integer"),
                None => (*name, "string"),
            };
            json!({
                "name": name, "in": place, "required": *place == "path",
                "description": desc, "schema": {"type": ty}
            })
        })
        .collect();
    let mut o = json!({
        "summary": summary,
        "parameters": parameters,
        "responses": {
            "200": {"description": ok, "content": {"application/json": {}}},
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"}
        }
    });
    if let Some(schema) = body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    }
    o
}

/// A CSV import: all rows checked before any is written; one bad row imports nothing.
fn csv_import(summary: &str) -> Value {
    let mut o = op(
        summary,
        &[(
            "dry_run",
            "query",
            "true: check and count only, write nothing",
        )],
        None,
        "{dry_run, rows, created, updated, unchanged}",
    );
    o["requestBody"] =
        json!({"required": true, "content": {"text/csv": {"schema": {"type": "string"}}}});
    o["responses"]["422"] = json!({"description": "rows refused, nothing imported: {error, errors: [{row (line in the file, the header is 1), column, error}]}"});
    o
}

/// The document.
pub fn spec() -> Value {
    let store = [("code", "path", "store code")];
    let id = [("id", "path", "id")];
    let asset_filters = [
        (
            "q",
            "query",
            "free text over serial, model, vendor, host name, slot, class",
        ),
        ("kind", "query", "gateway or device"),
        ("store", "query", "store code"),
        ("region", "query", "region"),
        ("class", "query", "device class"),
        ("model", "query", "model"),
        ("firmware", "query", "firmware version"),
        (
            "lifecycle",
            "query",
            "planned, active, in_repair, spare, retired, disposed",
        ),
        (
            "#warranty_days",
            "query",
            "warranty ending within this many days",
        ),
        ("#offset", "query", "rows to skip"),
        ("#limit", "query", "rows at most (200 by default)"),
    ];
    let mut enroll = op(
        "Enroll an agent with a token (no bearer token: the enrollment token authenticates)",
        &[],
        Some("EnrollRequest"),
        "the agent is registered",
    );
    enroll["security"] = json!([]);
    let mut health = op("Liveness and ingest connection", &[], None, "status");
    health["security"] = json!([]);
    let mut openapi = op("This document", &[], None, "the OpenAPI document");
    openapi["security"] = json!([]);
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Storefleet controller API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Stores, agents, asset records with history, telemetry and events. Authenticate with `Authorization: Bearer <API token>` (the first one is written to `admin-token` in the controller's state directory at first start; more with `POST /api/v1/tokens`). Each operation's `x-role` is the least role it needs: viewer < engineer < dispatcher < admin; a token has at most its user's role. Errors are `{\"error\": \"...\"}`."
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/health": {"get": health},
            "/api/v1/openapi.json": {"get": openapi},
            "/api/v1/enroll": {"post": enroll},
            "/api/v1/enroll-tokens": {
                "get": op("List enrollment tokens (never their secrets)", &[], None, "tokens"),
                "post": op("Create an enrollment token; the answer holds its text, shown once", &[], Some("NewToken"), "token and info")
            },
            "/api/v1/enroll-tokens/{id}/revoke": {"post": op("Revoke an enrollment token", &id, None, "the token")},
            "/api/v1/stores": {
                "get": op("List stores", &[], None, "stores"),
                "post": op("Create a store", &[], Some("Store"), "the store")
            },
            "/api/v1/stores/import": {"post": csv_import("Import stores from CSV (text/csv): code (required), name, region, address, timezone, trading_hours, tags (separated by ; or ,), lat, lon, format and opens_on (the store opens from that format on that day). A new code needs a name; a known one changes in the fields given")},
            "/api/v1/stores/{code}": {
                "get": op("One store", &store, None, "the store"),
                "put": op("Create or update a store", &store, Some("Store"), "the store")
            },
            "/api/v1/stores/{code}/series": {"get": op("Telemetry series of a store", &[("code", "path", "store code"), ("device", "query", "device id; empty string for the gateway")], None, "series")},
            "/api/v1/stores/{code}/discovered": {"get": op("Devices the store's gateways found on its network that are not configured yet, by address", &store, None, "discovered devices")},
            "/api/v1/series/{id}/points": {"get": op("Points of a series", &[("#id", "path", "series id"), ("#from", "query", "start, ms"), ("#to", "query", "end, ms"), ("#res", "query", "0 raw, 60, 3600"), ("#limit", "query", "points at most")], None, "points")},
            "/api/v1/fleet": {"get": op("Every store's status and the open problems", &[], None, "overview")},
            "/api/v1/agents": {"get": op("Agents with presence", &[("store", "query", "store code")], None, "agents")},
            "/api/v1/agents/{id}": {"get": op("One agent", &id, None, "the agent")},
            "/api/v1/agents/{id}/revoke": {"post": op("Revoke an agent's key: its messages are refused", &id, None, "revoked")},
            "/api/v1/agents/{id}/ping": {"post": op("Ask the agent for its version and uptime: a one-target task (60 s timeout); its target carries the answer", &id, None, "the task")},
            "/api/v1/agents/{id}/reload": {"post": op("Have the agent read its configuration again: a one-target task (60 s timeout); its target carries the agent's summary", &id, None, "the task")},
            "/api/v1/agents/{id}/reenroll": {"post": op("Re-enroll an agent id: its key is revoked now and one new key may enroll it within 72 h", &id, None, "{agent_id, reenroll_until}")},
            "/api/v1/ingest/held": {"get": op("Messages ingest held apart because the database refused their data (the rest of their batch was stored), oldest first, with the refusal", &[("#limit", "query", "rows at most (200)")], None, "{count, messages}")},
            "/api/v1/ingest/held/{agent}/{seq}/retry": {"post": op("Store a held message again, once what made the database refuse it is fixed; refused again: 422 with the reason, and it stays held", &[("agent", "path", "agent id"), ("#seq", "path", "the message's sequence number")], None, "{agent_id, seq, stored}")},
            "/api/v1/ingest/held/{agent}/{seq}": {"delete": op("Drop a held message for good", &[("agent", "path", "agent id"), ("#seq", "path", "the message's sequence number")], None, "nothing (204)")},
            "/api/v1/devices": {"get": op("Devices with live state (up, down, stale)", &[("store", "query", "store code")], None, "devices")},
            "/api/v1/events": {"get": op("Events, newest first", &[("store", "query", "store code"), ("device", "query", "device id"), ("agent", "query", "agent id"), ("#since", "query", "ms"), ("#limit", "query", "rows at most")], None, "events")},
            "/api/v1/runs": {"get": op("Routine runs reported by agents, newest first, with each step's result", &[("store", "query", "store code"), ("agent", "query", "agent id"), ("routine", "query", "routine name"), ("outcome", "query", "already_fine, healed, failed, escalated or skipped"), ("#since", "query", "ms"), ("#limit", "query", "rows at most")], None, "runs")},
            "/api/v1/tasks": {
                "get": op("Fleet tasks, newest first, with progress per state and per wave", &[("#limit", "query", "tasks at most (50)")], None, "tasks"),
                "post": op("Push a fleet task: its targets are resolved now and rolled out in waves", &[], Some("TaskSpec"), "the task (201)")
            },
            "/api/v1/tasks/preview": {"post": op("The targets and wave sizes a task would have; nothing is stored", &[], Some("TaskSpec"), "{total, waves, targets}")},
            "/api/v1/tasks/{id}": {"get": op("One task with its progress", &id, None, "the task")},
            "/api/v1/tasks/{id}/targets": {"get": op("A task's targets in rollout order", &[("id", "path", "task id"), ("state", "query", "queued, sent, running, succeeded, failed, timed_out, skipped, cancelled or rejected")], None, "targets")},
            "/api/v1/tasks/{id}/pause": {"post": op("Stop sending; what is in flight still reports", &id, None, "the task")},
            "/api/v1/tasks/{id}/resume": {"post": op("Continue a paused task", &id, None, "the task")},
            "/api/v1/tasks/{id}/cancel": {"post": op("Cancel every target not yet sent", &id, None, "the task")},
            "/api/v1/assets": {
                "get": op("Search asset records", &asset_filters, None, "{total, items}"),
                "post": op("Make a device record by hand (its gateway's later report of the slot continues it); 409 when the slot has one", &[], Some("NewAsset"), "the asset (201)")
            },
            "/api/v1/assets.csv": {"get": op("Asset records as CSV (all matching rows)", &asset_filters[..9], None, "text/csv")},
            "/api/v1/assets/{id}": {
                "get": op("One asset record", &[("#id", "path", "asset id")], None, "the asset"),
                "patch": op("Edit the fields people own; every change is recorded", &[("#id", "path", "asset id")], Some("AssetEdit"), "the asset after")
            },
            "/api/v1/assets/import": {"post": csv_import("Import asset records from CSV (text/csv), the export's columns: a row with an id changes that asset; without, store and slot name a device, changed if known, else created (it needs a class)")},
            "/api/v1/assets/{id}/history": {"get": op("An asset's history, oldest first", &[("#id", "path", "asset id")], None, "changes")}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "what was wrong", "content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}}}},
            "schemas": {
                "Store": {"type": "object", "required": ["code", "name"], "properties": {
                    "code": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"}, "name": {"type": "string"},
                    "region": {"type": "string"}, "address": {"type": "string"},
                    "timezone": {"type": "string", "description": "IANA zone"}, "trading_hours": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "place": {"$ref": "#/components/schemas/Place"}}},
                "NewAsset": {"type": "object", "required": ["store", "slot", "class"], "additionalProperties": false, "properties": {
                    "store": {"type": "string"}, "slot": {"type": "string", "description": "the device's id at the store"},
                    "class": {"type": "string"}, "vendor": {"type": "string"}, "model": {"type": "string"}, "serial": {"type": "string"},
                    "firmware": {"type": "string"}, "lifecycle": {"type": "string", "description": "empty: active"},
                    "purchase_date": {"type": "string", "description": "YYYY-MM-DD"}, "warranty_end": {"type": "string", "description": "YYYY-MM-DD"}}},
                "Place": {"type": ["object", "null"], "required": ["lat", "lon"], "additionalProperties": false,
                    "description": "WGS 84 degrees; dispatch weighs drives from and to it",
                    "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90},
                                   "lon": {"type": "number", "minimum": -180, "maximum": 180}}},
                "TaskSpec": {"type": "object", "required": ["action", "select"], "additionalProperties": false, "properties": {
                    "name": {"type": "string"},
                    "action": {"type": "object", "required": ["type"], "properties": {
                        "type": {"enum": ["routine", "config", "update", "ping", "reload"]}, "name": {"type": "string", "description": "routine: one the agents have; config: the change's name (agent.d/70-task-NAME.toml)"},
                        "version": {"type": "string", "description": "update: a published release"},
                        "confirm_secs": {"type": "integer", "description": "update: how long the new version has to be connected and reporting (10 to 3600, default 120)"},
                        "toml": {"type": "string", "description": "config: the drop-in, sections the agents' controller.remote_config allow"},
                        "document": {"type": "string", "description": "a routine document (TOML), instead of name"},
                        "ignore_window": {"type": "boolean", "description": "run outside the routine's own window"}}},
                    "select": {"type": "object", "additionalProperties": false, "description": "`all`, or criteria that must all match (any value of each)", "properties": {
                        "all": {"type": "boolean"}, "regions": {"type": "array", "items": {"type": "string"}},
                        "stores": {"type": "array", "items": {"type": "string"}}, "tags": {"type": "array", "items": {"type": "string"}},
                        "device_classes": {"type": "array", "items": {"type": "string"}},
                        "agent_version": {"type": "string", "description": "e.g. 0.1.0, <0.2.0, >=0.1.3"},
                        "agents": {"type": "array", "items": {"type": "string"}, "description": "agent ids"}}},
                    "plan": {"type": "object", "additionalProperties": false, "properties": {
                        "canary": {"type": "integer", "description": "targets in the first wave, alone"},
                        "waves": {"type": "array", "items": {"type": "integer"}, "description": "cumulative percentages of the rest, ending at 100"},
                        "region_concurrency": {"type": "integer", "description": "in flight per region at most; 0 no cap"},
                        "target_timeout_ms": {"type": "integer"}, "abort_failure_rate": {"type": "number"},
                        "abort_min_finished": {"type": "integer"}, "expiry_ms": {"type": "integer", "description": "offline this long after its wave opened: skipped"}}},
                    "window": {"type": "object", "additionalProperties": false, "properties": {
                        "when": {"enum": ["any", "closed", "open"]}, "margin_minutes": {"type": "integer"},
                        "avoid": {"type": "string", "description": "hours never to run in, e.g. Sa 10:00-14:00"}}}}},
                "NewToken": {"type": "object", "required": ["store"], "properties": {
                    "store": {"type": "string"}, "ttl_hours": {"type": "integer"}, "ttl_secs": {"type": "integer", "description": "overrides ttl_hours"},
                    "max_uses": {"type": "integer", "description": "default 1; 0 for any number until expiry"}, "note": {"type": "string"}}},
                "EnrollRequest": {"type": "object", "required": ["token", "agent_id", "public_key", "hostname", "agent_version", "ts", "signature"], "properties": {
                    "token": {"type": "string"}, "agent_id": {"type": "string"}, "public_key": {"type": "string"},
                    "hostname": {"type": "string"}, "agent_version": {"type": "string"}, "ts": {"type": "integer"},
                    "signature": {"type": "string", "description": "Ed25519 over the request's signed bytes (protocol::enroll)"}}},
                "AssetEdit": {"type": "object", "additionalProperties": false, "properties": {
                    "lifecycle": {"enum": crate::assets::LIFECYCLES}, "purchase_date": {"type": "string", "format": "date"},
                    "warranty_end": {"type": "string", "format": "date"}, "parent_id": {"type": "integer"},
                    "class": {"type": "string"}, "vendor": {"type": "string"}, "model": {"type": "string"}, "serial": {"type": "string"},
                    "attrs": {"type": "object"}}}
            }
        }
    });
    tickets(&mut doc);
    people(&mut doc);
    openings(&mut doc);
    roles(&mut doc);
    doc
}

/// Store formats, openings, readiness.
fn openings(doc: &mut Value) {
    let store = [("code", "path", "store code")];
    let name = [("name", "path", "format name")];
    let paths = json!({
        "/api/v1/formats": {"get": op("Store formats: the devices a store of the kind must have, the tasks its gateway gets, its go-live checklist", &[], None, "formats")},
        "/api/v1/formats/{name}": {
            "get": op("One store format", &name, None, "the format"),
            "put": op("Create or replace a store format", &name, Some("StoreFormat"), "the format"),
            "delete": op("Delete a format no opening uses (409 naming the stores otherwise)", &name, None, "nothing (204)")
        },
        "/api/v1/openings": {"get": op("The readiness board: every store with an opening, by opening day, with its readiness", &[], None, "readiness of each")},
        "/api/v1/stores/{code}/opening": {
            "put": op("Open a store from a format on a day: it joins the readiness board; the format's tasks go to its gateway once enrolled and online, one after another; a store not ready tickets.opening_warn_days before gets an event store.not_ready and a ticket, escalated with an event store.opening_late when the day passes. Setting it again pushes failed tasks again", &store, Some("Opening"), "its readiness"),
            "delete": op("Take the store off the readiness board (opened, or will not)", &store, None, "nothing (204)")
        },
        "/api/v1/stores/{code}/readiness": {"get": op("A new store's readiness: each expected device missing, misconfigured, down or ready; the format's tasks; the go-live checklist", &store, None, "readiness")},
        "/api/v1/stores/{code}/checks": {"post": op("Tick (or untick, done false) one of the format's go-live checks", &store, Some("Tick"), "its readiness")}
    });
    let task = json!({"$ref": "#/components/schemas/TaskSpec/properties/action"});
    let schemas = json!({
        "StoreFormat": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": {"type": "string", "description": "1 to 32 letters, digits, - or _"},
            "description": {"type": "string"},
            "devices": {"type": "array", "items": {"type": "object", "required": ["class"], "additionalProperties": false, "properties": {
                "class": {"type": "string"}, "count": {"type": "integer", "minimum": 1, "maximum": 100, "description": "default 1"},
                "profile": {"type": "string", "description": "the model they must be: every word appears in the reported vendor and model, any case; empty: any"}}}},
            "tasks": {"type": "array", "items": task, "description": "routines or config changes, run in order on the gateway once it is enrolled and online"},
            "checklist": {"type": "array", "items": {"type": "string"}, "description": "go-live checks people tick"}}},
        "Opening": {"type": "object", "required": ["format", "opens_on"], "additionalProperties": false, "properties": {
            "format": {"type": "string"}, "opens_on": {"type": "string", "format": "date", "description": "the day, in the store's zone"}}},
        "Tick": {"type": "object", "required": ["item"], "additionalProperties": false, "properties": {
            "item": {"type": "string", "description": "a check of the store's format, as written there"},
            "done": {"type": "boolean", "description": "default true; false unticks"}}}
    });
    merge(doc, paths, schemas);
}

fn merge(doc: &mut Value, paths: Value, schemas: Value) {
    if let (Some(t), Value::Object(e)) = (doc["paths"].as_object_mut(), paths) {
        t.extend(e);
    }
    if let (Some(t), Value::Object(e)) = (doc["components"]["schemas"].as_object_mut(), schemas) {
        t.extend(e);
    }
}

/// Users, tokens, and who am I.
fn people(doc: &mut Value) {
    let name = [("name", "path", "user name")];
    let paths = json!({
        "/api/v1/broker/mosquitto": {"get": op("Password and ACL files for an external Mosquitto: the controller's user and every enrolled agent, each agent held to its own topics", &[("dir", "query", "where the files will live (default /etc/mosquitto/conf.d)")], None, "{passwd, acl, conf, agents}")},
        "/api/v1/me": {"get": op("Who is calling: user, role, and the token if any", &[], None, "{user, role, actor, token}")},
        "/api/v1/users": {
            "get": op("Users with their roles", &[], None, "users"),
            "post": op("Create a user", &[], Some("NewUser"), "the user (201)")
        },
        "/api/v1/users/{name}": {
            "patch": op("Change a user's role or disable/enable them (never the last enabled admin)", &name, Some("UserChange"), "the user"),
            "delete": op("Delete a user: their sessions end, their tokens are revoked", &name, None, "nothing (204)")
        },
        "/api/v1/users/{name}/password": {"post": op("Set a password: an admin for anyone, a user for themselves with old_password; the user's other sessions end", &name, Some("PasswordChange"), "{user, sessions_ended}")},
        "/api/v1/tokens": {
            "get": op("Your API tokens (an admin: everyone's), with last use", &[], None, "tokens"),
            "post": op("A new API token of yours, role at most yours; its text is in the answer, once", &[], Some("NewApiToken"), "{token, info} (201)")
        },
        "/api/v1/tokens/{id}/revoke": {"post": op("Revoke one of your tokens (an admin: anyone's)", &[("id", "path", "token id")], None, "the token")}
    });
    let role = json!({"enum": ["viewer", "engineer", "dispatcher", "admin"]});
    let schemas = json!({
        "NewUser": {"type": "object", "required": ["name", "role", "password"], "additionalProperties": false, "properties": {
            "name": {"type": "string", "description": "1 to 64 of letters, digits, - _ . @; an engineer's is their engineer id"},
            "role": role, "password": {"type": "string", "minLength": 8}}},
        "UserChange": {"type": "object", "additionalProperties": false, "properties": {"role": role, "disabled": {"type": "boolean"}}},
        "PasswordChange": {"type": "object", "required": ["password"], "additionalProperties": false, "properties": {
            "password": {"type": "string", "minLength": 8}, "old_password": {"type": "string", "description": "when changing one's own"}}},
        "NewApiToken": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": {"type": "string"}, "role": role}}
    });
    merge(doc, paths, schemas);
}

/// Marks every operation with the role it needs (`x-role`), from the routes themselves;
/// public ones need no credentials.
fn roles(doc: &mut Value) {
    use crate::auth::{Access, Role};
    for rule in super::routes().rules() {
        let op = &mut doc["paths"][rule.path][rule.method.as_str().to_ascii_lowercase()];
        if !op.is_object() {
            continue;
        }
        let role = match rule.access {
            Access::Public => {
                op["security"] = json!([]);
                "public"
            }
            Access::Metrics => Role::Viewer.as_str(),
            Access::AtLeast(r) => r.as_str(),
        };
        op["x-role"] = json!(role);
    }
}

/// Tickets, engineers, alerts, silences, KPIs.
fn tickets(doc: &mut Value) {
    let tid = [("#id", "path", "ticket id")];
    let filters = [
        ("status", "query", "a status, or `open` for every open one"),
        ("store", "query", "store code"),
        ("region", "query", "region"),
        ("engineer", "query", "assigned engineer"),
        ("#limit", "query", "rows at most (default 200)"),
    ];
    let period = [
        ("#from", "query", "from, ms"),
        ("#to", "query", "to, ms"),
        ("#days", "query", "the last N days (default 7)"),
        ("store", "query", "one store's figures only"),
    ];
    let eid = [("id", "path", "engineer id")];
    let paths = json!({
        "/api/v1/tickets": {
            "get": op("Tickets: open ones by priority and deadline, then the newest", &filters, None, "tickets"),
            "post": op("Open a ticket by hand (a store called)", &[], Some("NewTicket"), "the ticket")
        },
        "/api/v1/tickets/{id}": {"get": op("A ticket with its timeline", &tid, None, "{ticket, timeline}")},
        "/api/v1/tickets/{id}/actions": {"post": op("Assign, accept, en_route, check_in, hold, resume, resolve, close, cancel, reopen or note", &tid, Some("TicketAction"), "the ticket after")},
        "/api/v1/tickets/{id}/parts": {"post": op("Add a spare part to a ticket (needed, ordered, used or returned); an engineer: to their own", &tid, Some("NewPart"), "the part (201)")},
        "/api/v1/tickets/{id}/parts/{part}": {"patch": op("Move a ticket's spare part to a new state", &[("#id", "path", "ticket id"), ("#part", "path", "part id")], Some("PartChange"), "the part")},
        "/api/v1/engineers": {"get": op("Field engineers with their open load", &[], None, "engineers")},
        "/api/v1/engineers/{id}": {"put": op("Create or replace an engineer", &eid, Some("Engineer"), "the engineer")},
        "/api/v1/engineers/{id}/status": {"post": op("Set an engineer's status (available, off, sick...)", &eid, Some("EngineerStatus"), "the status")},
        "/api/v1/alerts": {"get": op("Alert episodes, newest first", &[("open", "query", "true: only those not cleared"), ("store", "query", "store code")], None, "alerts")},
        "/api/v1/silences": {
            "get": op("Silences and maintenance windows not yet over", &[], None, "silences"),
            "post": op("Silence a store, a device or a rule for a while", &[], Some("NewSilence"), "the silence")
        },
        "/api/v1/silences/{id}": {"delete": op("End a silence now", &[("#id", "path", "silence id")], None, "nothing (204)")},
        "/api/v1/kpis": {"get": op("Service KPIs fleet-wide, per region and per engineer (first-time fix, rating, parts used, SLA...), with daily counts; one store's with store", &period, None, "KPIs")},
        "/api/v1/webhooks": {"get": op("Configured webhooks and delivery counts", &[], None, "{hooks, deliveries}")},
        "/api/v1/releases": {"get": op("Published agent releases, newest first", &[], None, "releases")},
        "/api/v1/releases/{version}/{arch}": {"put": op(
            "Publish an agent binary (the body, application/octet-stream); its manifest's signature with the release key in the storefleet-release-signature header",
            &[("version", "path", "release version"), ("arch", "path", "x86_64 or aarch64")], None, "the manifest (201)")},
        "/releases/{version}/{arch}": {"get": op(
            "Download a release binary, whole or from a Range (no credentials: agents check it against their signed manifest)",
            &[("version", "path", "release version"), ("arch", "path", "x86_64 or aarch64")], None, "the binary (200 or 206)")}
    });
    let schemas = json!({
        "NewTicket": {"type": "object", "required": ["store", "title", "skill", "severity"], "additionalProperties": false, "properties": {
            "store": {"type": "string"}, "title": {"type": "string"}, "skill": {"type": "string"},
            "level": {"enum": ["junior", "senior", "specialist"], "description": "the lowest skill level that may take it (default junior: anyone)"},
            "severity": {"enum": ["critical", "major", "minor"]}, "impact": {"enum": ["store", "device", "peripheral"]},
            "device": {"type": "string", "description": "the device concerned; its assets go on the ticket"},
            "description": {"type": "string"}}},
        "TicketAction": {"type": "object", "required": ["action"], "properties": {
            "action": {"enum": ["assign", "unassign", "accept", "en_route", "check_in", "hold", "resume", "resolve", "close", "cancel", "reopen", "note"]},
            "engineer": {"type": "string", "description": "assign"}, "reason": {"type": "string", "description": "hold, cancel"},
            "report": {"type": "string", "description": "resolve: the service report"}, "rating": {"type": "integer", "minimum": 1, "maximum": 5, "description": "close"},
            "text": {"type": "string", "description": "note"}}},
        "Engineer": {"type": "object", "required": ["id", "name"], "additionalProperties": false, "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "skills": {"type": "array", "items": {"type": "string"}},
            "regions": {"type": "array", "items": {"type": "string"}, "description": "`*` for all"}, "timezone": {"type": "string"},
            "shift": {"type": "string", "description": "as trading hours: Mo-Fr 07:00-16:00, 24/7"}, "capacity": {"type": "integer"},
            "status": {"type": "string"}, "phone": {"type": "string"},
            "home": {"$ref": "#/components/schemas/Place"},
            "level": {"enum": ["junior", "senior", "specialist"], "description": "default senior"}}},
        "NewPart": {"type": "object", "required": ["part"], "additionalProperties": false, "properties": {
            "part": {"type": "string", "description": "part number or name, 1 to 120 characters"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "default 1"},
            "state": {"enum": ["needed", "ordered", "used", "returned"], "description": "default needed"},
            "note": {"type": "string", "description": "supplier, order number; at most 500 characters"}}},
        "PartChange": {"type": "object", "required": ["state"], "additionalProperties": false, "properties": {
            "state": {"enum": ["needed", "ordered", "used", "returned"]}, "note": {"type": "string", "description": "absent: kept"}}},
        "EngineerStatus": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
        "NewSilence": {"type": "object", "required": ["store", "reason"], "additionalProperties": false, "properties": {
            "store": {"type": "string"}, "device": {"type": "string"}, "rule": {"type": "string"},
            "minutes": {"type": "integer", "description": "from now"}, "starts_at": {"type": "integer"}, "ends_at": {"type": "integer"},
            "reason": {"type": "string"}}}
    });
    merge(doc, paths, schemas);
}

pub(super) async fn document() -> Json<Value> {
    Json(spec())
}
