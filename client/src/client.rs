//! The typed client of the controller's HTTP API: requests and answers are the types of
//! this crate, which the controller serves.
//! [`Client::call`] stays for what has no type yet (and for `--json`, which prints the
//! API's answer as it is).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use storefleet_support::http::{self, Request};

use storefleet_core::lifecycle::Action;
use storefleet_protocol::release::Release;

use crate::agents::{Agent, Reopened};
use crate::assets::{Asset, AssetPage, Change, NewAsset};
use crate::auth::{
    ApiToken, CreatedApiToken, NewToken as ApiTokenRequest, NewUser, PasswordChange,
    PasswordChanged, User, UserChange,
};
use crate::broker::MosquittoFiles;
use crate::engineers::{Engineer, EngineerLoad};
use crate::enroll::{CreatedToken, NewToken, TokenInfo};
use crate::events::StoredEvent;
use crate::imports::ImportReport;
use crate::ingest::{HeldList, Retried};
use crate::openings::{Opening, Readiness, StoreFormat};
use crate::releases::Published;
use crate::stores::Store;
use crate::tasks::{TargetRow, TaskPreview, TaskSummary};
use crate::tickets::{NewTicket, Ticket, TicketView};
use crate::{enc, Error, SIGNATURE_HEADER};

/// A client of the API.
#[derive(Debug, Clone)]
pub struct Client {
    /// Base URL, e.g. `https://127.0.0.1:8080`.
    pub base: String,
    /// Bearer token.
    pub token: String,
    /// What `https://` trusts: the controller's pinned key, a CA file, or the system's CAs.
    pub trust: http::Trust,
}

impl Client {
    /// A client of `base` with `token`, trusting the system's CAs.
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Client {
        Client {
            base: base.into(),
            token: token.into(),
            trust: http::Trust::default(),
        }
    }

    /// Sends a request with a JSON body; returns the body (JSON, or text as a JSON string).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.call_with(method, path, Vec::new(), body).await
    }

    /// Sends a request with extra headers and any body; answers as [`Client::call`].
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        mut headers: Vec<(&str, String)>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Value, Error> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        headers.push(("authorization", format!("Bearer {}", self.token)));
        // A release upload may take minutes on a slow line; everything else, one.
        let big = body.as_ref().is_some_and(|b| b.1.len() > 1 << 20);
        let resp = http::Client::new(&self.trust)?
            .send(
                Request {
                    method,
                    url: &url,
                    headers,
                    body,
                },
                Duration::from_secs(if big { 300 } else { 60 }),
            )
            .await?;
        let is_json = resp
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json"));
        if !(200..300).contains(&resp.status) {
            let message = if is_json {
                serde_json::from_slice::<Value>(&resp.body)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| resp.text())
            } else {
                resp.text()
            };
            return Err(Error::Api {
                status: resp.status,
                message,
            });
        }
        if resp.body.is_empty() {
            return Ok(Value::Null);
        }
        if is_json {
            serde_json::from_slice(&resp.body).map_err(|e| Error::Api {
                status: resp.status,
                message: format!("unreadable JSON: {e}"),
            })
        } else {
            Ok(Value::String(resp.text()))
        }
    }
}

impl Client {
    /// `GET path`, read as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        typed(self.call("GET", path, None).await?)
    }

    /// `method path` with `body` as JSON, the answer read as `T`.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        let body = serde_json::to_value(body).map_err(|e| Error::Failed(e.to_string()))?;
        typed(self.call(method, path, Some(&body)).await?)
    }

    /// Store formats.
    pub async fn formats(&self) -> Result<Vec<StoreFormat>, Error> {
        self.get("/api/v1/formats").await
    }

    /// Creates or replaces a store format.
    pub async fn save_format(&self, f: &StoreFormat) -> Result<StoreFormat, Error> {
        let path = format!("/api/v1/formats/{}", enc(&f.name));
        self.send("PUT", &path, f).await
    }

    /// Deletes a store format no opening uses.
    pub async fn delete_format(&self, name: &str) -> Result<(), Error> {
        let path = format!("/api/v1/formats/{}", enc(name));
        self.call("DELETE", &path, None).await.map(drop)
    }

    /// Opens `store` from a format on a day; answers its readiness.
    pub async fn set_opening(&self, store: &str, o: &Opening) -> Result<Readiness, Error> {
        let path = format!("/api/v1/stores/{}/opening", enc(store));
        self.send("PUT", &path, o).await
    }

    /// Takes `store` off the readiness board.
    pub async fn clear_opening(&self, store: &str) -> Result<(), Error> {
        let path = format!("/api/v1/stores/{}/opening", enc(store));
        self.call("DELETE", &path, None).await.map(drop)
    }

    /// A new store's readiness.
    pub async fn readiness(&self, store: &str) -> Result<Readiness, Error> {
        self.get(&format!("/api/v1/stores/{}/readiness", enc(store)))
            .await
    }

    /// Ticks (or, `done` false, unticks) a go-live check of `store`.
    pub async fn tick(&self, store: &str, item: &str, done: bool) -> Result<Readiness, Error> {
        let path = format!("/api/v1/stores/{}/checks", enc(store));
        self.send("POST", &path, &json!({"item": item, "done": done}))
            .await
    }

    /// The readiness board: every opening, by day.
    pub async fn openings(&self) -> Result<Vec<Readiness>, Error> {
        self.get("/api/v1/openings").await
    }

    /// Tickets; `query` is the list's query string (`?status=open&store=S1`) or empty.
    pub async fn tickets(&self, query: &str) -> Result<Vec<Ticket>, Error> {
        self.get(&format!("/api/v1/tickets{query}")).await
    }

    /// One ticket with its timeline.
    pub async fn ticket(&self, id: i64) -> Result<TicketView, Error> {
        self.get(&format!("/api/v1/tickets/{id}")).await
    }

    /// Opens a ticket by hand.
    pub async fn open_ticket(&self, n: &NewTicket) -> Result<Ticket, Error> {
        self.send("POST", "/api/v1/tickets", n).await
    }

    /// Applies an action to a ticket; the ticket as it is after it.
    pub async fn act(&self, id: i64, a: &Action) -> Result<Ticket, Error> {
        self.send("POST", &format!("/api/v1/tickets/{id}/actions"), a)
            .await
    }

    /// Every engineer with their load.
    pub async fn engineers(&self) -> Result<Vec<EngineerLoad>, Error> {
        self.get("/api/v1/engineers").await
    }

    /// Adds or changes an engineer.
    pub async fn save_engineer(&self, e: &Engineer) -> Result<Engineer, Error> {
        self.send("PUT", &format!("/api/v1/engineers/{}", enc(&e.id)), e)
            .await
    }

    /// Sets an engineer's status (available, off, sick...).
    pub async fn engineer_status(&self, id: &str, status: &str) -> Result<(), Error> {
        self.call(
            "POST",
            &format!("/api/v1/engineers/{}/status", enc(id)),
            Some(&json!({ "status": status })),
        )
        .await
        .map(drop)
    }
}

/// Stores, gateways, assets, events and enrollment tokens. A `query` is the list's query
/// string (`?store=S1`) or empty.
impl Client {
    /// Every store.
    pub async fn stores(&self) -> Result<Vec<Store>, Error> {
        self.get("/api/v1/stores").await
    }

    /// One store; `None` when there is no such store.
    pub async fn store(&self, code: &str) -> Result<Option<Store>, Error> {
        match self.get(&format!("/api/v1/stores/{}", enc(code))).await {
            Ok(s) => Ok(Some(s)),
            Err(Error::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds a store (refused if it exists), or with `update` adds or changes it.
    pub async fn save_store(&self, store: &Store, update: bool) -> Result<Store, Error> {
        if update {
            let path = format!("/api/v1/stores/{}", enc(&store.code));
            self.send("PUT", &path, store).await
        } else {
            self.send("POST", "/api/v1/stores", store).await
        }
    }

    /// Gateways (agents).
    pub async fn agents(&self, query: &str) -> Result<Vec<Agent>, Error> {
        self.get(&format!("/api/v1/agents{query}")).await
    }

    /// Revokes a gateway's key.
    pub async fn revoke_agent(&self, id: &str) -> Result<(), Error> {
        let path = format!("/api/v1/agents/{}/revoke", enc(id));
        self.call("POST", &path, None).await.map(drop)
    }

    /// Revokes a gateway's key and lets it enroll again; until when, ms.
    pub async fn reopen_agent(&self, id: &str) -> Result<Reopened, Error> {
        let path = format!("/api/v1/agents/{}/reenroll", enc(id));
        typed(self.call("POST", &path, None).await?)
    }

    /// Messages ingest held apart (their data refused by the database), oldest first.
    pub async fn held(&self, limit: u32) -> Result<HeldList, Error> {
        self.get(&format!("/api/v1/ingest/held?limit={limit}"))
            .await
    }

    /// Stores a held message again.
    pub async fn retry_held(&self, agent: &str, seq: u64) -> Result<Retried, Error> {
        let path = format!("/api/v1/ingest/held/{}/{seq}/retry", enc(agent));
        typed(self.call("POST", &path, None).await?)
    }

    /// Drops a held message for good.
    pub async fn drop_held(&self, agent: &str, seq: u64) -> Result<(), Error> {
        let path = format!("/api/v1/ingest/held/{}/{seq}", enc(agent));
        self.call("DELETE", &path, None).await.map(drop)
    }

    /// One asset.
    pub async fn asset(&self, id: i64) -> Result<Asset, Error> {
        self.get(&format!("/api/v1/assets/{id}")).await
    }

    /// Makes a device record by hand.
    pub async fn create_asset(&self, n: &NewAsset) -> Result<Asset, Error> {
        self.send("POST", "/api/v1/assets", n).await
    }

    /// One asset's history, newest first.
    pub async fn asset_history(&self, id: i64) -> Result<Vec<Change>, Error> {
        self.get(&format!("/api/v1/assets/{id}/history")).await
    }

    /// A page of the asset search.
    pub async fn assets(&self, query: &str) -> Result<AssetPage, Error> {
        self.get(&format!("/api/v1/assets{query}")).await
    }

    /// Every asset the search finds, as CSV.
    pub async fn assets_csv(&self, query: &str) -> Result<String, Error> {
        match self
            .call("GET", &format!("/api/v1/assets.csv{query}"), None)
            .await?
        {
            Value::String(text) => Ok(text),
            other => typed(other),
        }
    }

    /// Events, newest first.
    pub async fn events(&self, query: &str) -> Result<Vec<StoredEvent>, Error> {
        self.get(&format!("/api/v1/events{query}")).await
    }

    /// Creates an enrollment token (its text is shown once).
    pub async fn create_enroll_token(&self, t: &NewToken) -> Result<CreatedToken, Error> {
        self.send("POST", "/api/v1/enroll-tokens", t).await
    }

    /// Enrollment tokens.
    pub async fn enroll_tokens(&self) -> Result<Vec<TokenInfo>, Error> {
        self.get("/api/v1/enroll-tokens").await
    }

    /// Revokes an enrollment token.
    pub async fn revoke_enroll_token(&self, id: &str) -> Result<TokenInfo, Error> {
        let path = format!("/api/v1/enroll-tokens/{}/revoke", enc(id));
        typed(self.call("POST", &path, None).await?)
    }
}

/// Fleet tasks.
impl Client {
    /// Every task, newest first.
    pub async fn tasks(&self) -> Result<Vec<TaskSummary>, Error> {
        self.get("/api/v1/tasks").await
    }

    /// One task.
    pub async fn task(&self, id: &str) -> Result<TaskSummary, Error> {
        self.get(&format!("/api/v1/tasks/{}", enc(id))).await
    }

    /// A task's targets.
    pub async fn task_targets(&self, id: &str) -> Result<Vec<TargetRow>, Error> {
        self.get(&format!("/api/v1/tasks/{}/targets", enc(id)))
            .await
    }

    /// Pushes a task (`spec` as the API documents it).
    pub async fn push_task(&self, spec: &Value) -> Result<TaskSummary, Error> {
        self.send("POST", "/api/v1/tasks", spec).await
    }

    /// The targets and waves a task would have, without pushing it.
    pub async fn preview_task(&self, spec: &Value) -> Result<TaskPreview, Error> {
        self.send("POST", "/api/v1/tasks/preview", spec).await
    }

    /// Pauses, resumes or cancels a task (`what`); the task as it stands.
    pub async fn task_request(&self, id: &str, what: &str) -> Result<TaskSummary, Error> {
        let path = format!("/api/v1/tasks/{}/{what}", enc(id));
        typed(self.call("POST", &path, None).await?)
    }

    /// Pushes the one-target task that pings or reloads (`what`) an agent.
    pub async fn agent_task(&self, id: &str, what: &str) -> Result<TaskSummary, Error> {
        let path = format!("/api/v1/agents/{}/{what}", enc(id));
        typed(self.call("POST", &path, None).await?)
    }
}

/// People and their API tokens.
impl Client {
    /// Every user.
    pub async fn users(&self) -> Result<Vec<User>, Error> {
        self.get("/api/v1/users").await
    }

    /// Adds a user.
    pub async fn add_user(&self, u: &NewUser) -> Result<User, Error> {
        self.send("POST", "/api/v1/users", u).await
    }

    /// Changes a user's role or whether they are disabled.
    pub async fn change_user(&self, name: &str, ch: &UserChange) -> Result<User, Error> {
        self.send("PATCH", &format!("/api/v1/users/{}", enc(name)), ch)
            .await
    }

    /// Deletes a user (their sessions end, their tokens are revoked).
    pub async fn delete_user(&self, name: &str) -> Result<(), Error> {
        let path = format!("/api/v1/users/{}", enc(name));
        self.call("DELETE", &path, None).await.map(drop)
    }

    /// Sets a user's password.
    pub async fn set_password(
        &self,
        name: &str,
        ch: &PasswordChange,
    ) -> Result<PasswordChanged, Error> {
        let path = format!("/api/v1/users/{}/password", enc(name));
        self.send("POST", &path, ch).await
    }

    /// The caller's API tokens (an admin's: everyone's).
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, Error> {
        self.get("/api/v1/tokens").await
    }

    /// A new API token of the caller's (its text is shown once).
    pub async fn create_api_token(&self, t: &ApiTokenRequest) -> Result<CreatedApiToken, Error> {
        self.send("POST", "/api/v1/tokens", t).await
    }

    /// Revokes an API token.
    pub async fn revoke_api_token(&self, id: &str) -> Result<ApiToken, Error> {
        let path = format!("/api/v1/tokens/{}/revoke", enc(id));
        typed(self.call("POST", &path, None).await?)
    }
}

/// Agent releases and the broker's files.
impl Client {
    /// Published releases, newest first.
    pub async fn releases(&self) -> Result<Vec<Published>, Error> {
        self.get("/api/v1/releases").await
    }

    /// Publishes a signed release: the manifest's signature goes in its header, the
    /// binary is the body.
    pub async fn publish_release(&self, r: &Release, binary: Vec<u8>) -> Result<Release, Error> {
        let path = format!("/api/v1/releases/{}/{}", enc(&r.version), enc(&r.arch));
        let headers = vec![(SIGNATURE_HEADER, r.signature.clone())];
        let body = Some(("application/octet-stream", binary));
        typed(self.call_with("PUT", &path, headers, body).await?)
    }

    /// Imports `csv` into `what` (`stores` or `assets`); with `dry_run` only checks and
    /// counts. A refused file is an error whose message names each bad row.
    pub async fn import(
        &self,
        what: &str,
        csv: Vec<u8>,
        dry_run: bool,
    ) -> Result<ImportReport, Error> {
        let path = format!("/api/v1/{}/import?dry_run={dry_run}", enc(what));
        typed(
            self.call_with("POST", &path, Vec::new(), Some(("text/csv", csv)))
                .await?,
        )
    }

    /// Mosquitto's password, ACL and include files for the gateways enrolled now, with
    /// paths under `dir` (on Mosquitto's machine).
    pub async fn mosquitto_files(&self, dir: &str) -> Result<MosquittoFiles, Error> {
        self.get(&format!("/api/v1/broker/mosquitto?dir={}", enc(dir)))
            .await
    }
}

/// Reads an answer as `T`; the error names what did not fit.
fn typed<T: DeserializeOwned>(v: Value) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|e| Error::Api {
        status: 200,
        message: format!("an answer this client cannot read: {e}"),
    })
}
