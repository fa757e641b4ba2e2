//! People and tokens: the users page (`/people`, admins: add, change role, disable, set a
//! password, delete) and the API tokens page (`/tokens`: one's own; admins see everyone's),
//! what `storefleet users` and `storefleet tokens` do.

use axum::extract::{Form, Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use storefleet_protocol::now_ms;

use super::{fmt, page, PageError, PageResult, User};
use crate::api::Principal;
use crate::auth::{self, tokens, users, NewToken, Role};
use crate::state::AppState;

fn role_select(name: &str, current: Role, up_to: Role) -> maud::Markup {
    html! {
        select name=(name) {
            @for r in Role::ALL.into_iter().filter(|r| *r <= up_to) {
                option value=(r.as_str()) selected[r == current] { (r.as_str()) }
            }
        }
    }
}

pub(super) async fn users_page(State(s): State<AppState>, user: User) -> PageResult {
    let list = s.db.read(users::list).await?;
    let now = now_ms();
    let body = html! {
        h1 { "People" }
        table #users {
            tr { th { "User" } th { "Role" } th { "Since" } th { "State" } th { "Change" } }
            @for u in &list {
                tr {
                    td { (u.name) }
                    td { (u.role.as_str()) }
                    td.muted { (fmt::ago(now, Some(u.created_at))) }
                    td { @if u.disabled_at.is_some() { span.badge.down { "disabled" } } @else { span.badge.ok { "active" } } }
                    td {
                        form.inline method="post" action={"/people/" (super::url_encode(&u.name))} {
                            input type="hidden" name="do" value="role";
                            (role_select("role", u.role, Role::Admin))
                            button type="submit" { "Set role" }
                        }
                        form.inline method="post" action={"/people/" (super::url_encode(&u.name))} {
                            input type="hidden" name="do" value=(if u.disabled_at.is_some() { "enable" } else { "disable" });
                            button type="submit" { (if u.disabled_at.is_some() { "Enable" } else { "Disable" }) }
                        }
                        form.inline method="post" action={"/people/" (super::url_encode(&u.name))} {
                            input type="hidden" name="do" value="password";
                            input type="password" name="password" minlength="8" placeholder="new password" autocomplete="new-password";
                            button type="submit" { "Set password" }
                        }
                        @if u.name != user.0 {
                            form.inline method="post" action={"/people/" (super::url_encode(&u.name))} {
                                input type="hidden" name="do" value="delete";
                                button type="submit" { "Delete" }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add a person" }
        p.muted { "An engineer's user name is their engineer id, so that the field view shows their tickets." }
        form.filters #add-user method="post" action="/people" {
            label { "Name" input name="name" required maxlength="64"; }
            label { "Role" (role_select("role", Role::Viewer, Role::Admin)) }
            label { "Password" input type="password" name="password" required minlength="8" autocomplete="new-password"; }
            button type="submit" { "Add" }
        }
    };
    Ok(Html(page("People", Some(&user), body).into_string()))
}

/// The add form.
#[derive(Debug, Deserialize)]
pub(super) struct AddUser {
    name: String,
    role: Role,
    password: String,
}

pub(super) async fn add_user(
    State(s): State<AppState>,
    p: Principal,
    Form(f): Form<AddUser>,
) -> Response {
    let made =
        s.db.write(move |c| users::create(c, &f.name, &f.password, f.role, now_ms()))
            .await;
    match made {
        Ok(u) => {
            tracing::info!(user = ?u.name, role = %u.role, by = %p.actor, "User created");
            Redirect::to("/people").into_response()
        }
        Err(e) => PageError::from(e).into_response(),
    }
}

/// One of the row's forms.
#[derive(Debug, Deserialize)]
pub(super) struct ChangeUser {
    #[serde(rename = "do")]
    what: String,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    password: String,
}

pub(super) async fn change_user(
    State(s): State<AppState>,
    p: Principal,
    Path(name): Path<String>,
    Form(f): Form<ChangeUser>,
) -> Response {
    let n = name.clone();
    let what = f.what.clone();
    let done =
        s.db.write(move |c| {
            let now = now_ms();
            match (f.what.as_str(), f.role) {
                ("role", Some(r)) => users::set_role(c, &n, r).map(drop),
                ("disable", _) => users::set_disabled(c, &n, true, now).map(drop),
                ("enable", _) => users::set_disabled(c, &n, false, now).map(drop),
                ("password", _) => users::change_password(c, &n, &f.password, None).map(drop),
                ("delete", _) => users::delete(c, &n, now),
                (other, _) => Err(crate::db::DbError::Invalid(format!(
                    "unknown change {other:?}"
                ))),
            }
        })
        .await;
    match done {
        Ok(()) => {
            tracing::info!(user = ?name, change = %what, by = %p.actor, "User changed");
            Redirect::to("/people").into_response()
        }
        Err(e) => PageError::from(e).into_response(),
    }
}

/// The tokens page; `made` shows a token just created, once.
fn tokens_body(
    list: &[auth::ApiToken],
    user: &User,
    made: Option<(&str, &auth::ApiToken)>,
) -> maud::Markup {
    let now = now_ms();
    html! {
        h1 { "Your account" }
        form.filters #zone-form method="post" action="/account/zone" {
            label { "Your time zone (pages show times in it; a ticket's in its store's)" input name="zone" value=(user.2) placeholder="Europe/Berlin"; }
            button type="submit" { "Save" }
        }
        h2 { "API tokens" }
        @if let Some((text, info)) = made {
            div.notice #new-token {
                p { "Token " b { (info.name) } " (" (info.role.as_str()) "): copy it now, it is not shown again." }
                pre { code { (text) } }
            }
        }
        table #tokens {
            tr { th { "Name" } th { "Id" } @if user.1 == Role::Admin { th { "User" } } th { "Role" } th { "Created" } th { "Last used" } th { "" } }
            @for t in list {
                tr {
                    td { (t.name) } td.muted { (t.id) }
                    @if user.1 == Role::Admin { td { (t.user) } }
                    td { (t.role.as_str()) }
                    td.muted { (fmt::ago(now, Some(t.created_at))) }
                    td.muted { (fmt::ago(now, t.last_used)) }
                    td {
                        @if t.revoked_at.is_some() { span.badge.offline { "revoked" } } @else {
                            form.inline method="post" action={"/tokens/" (super::url_encode(&t.id)) "/revoke"} { button type="submit" { "Revoke" } }
                        }
                    }
                }
            }
        }
        h2 { "New token" }
        form.filters #add-token method="post" action="/tokens" {
            label { "Name" input name="name" required maxlength="64" placeholder="monitoring script"; }
            label { "Role (at most yours)" (role_select("role", user.1, user.1)) }
            button type="submit" { "Create" }
        }
    }
}

pub(super) async fn tokens_page(State(s): State<AppState>, user: User) -> PageResult {
    let only = (user.1 < Role::Admin).then(|| user.0.clone());
    let list = s.db.read(move |c| tokens::list(c, only.as_deref())).await?;
    Ok(Html(
        page("API tokens", Some(&user), tokens_body(&list, &user, None)).into_string(),
    ))
}

pub(super) async fn add_token(
    State(s): State<AppState>,
    user: User,
    Form(req): Form<NewToken>,
) -> PageResult {
    let (name, role) = (user.0.clone(), user.1);
    let only = (user.1 < Role::Admin).then(|| user.0.clone());
    let (made, list) =
        s.db.write(move |c| {
            let made = auth::create_api_token(c, &name, role, &req, now_ms())?;
            Ok((made, tokens::list(c, only.as_deref())?))
        })
        .await?;
    let (info, text) = made;
    tracing::info!(token = %info.id, name = ?info.name, role = %info.role, by = %user.0, "API token created");
    let body = tokens_body(&list, &user, Some((&text, &info)));
    Ok(Html(page("API tokens", Some(&user), body).into_string()))
}

pub(super) async fn revoke_token(
    State(s): State<AppState>,
    user: User,
    Path(id): Path<String>,
) -> Response {
    let (me, admin) = (user.0.clone(), user.1 == Role::Admin);
    let done =
        s.db.write(move |c| match tokens::get(c, &id)? {
            Some(t) if t.user == me || admin => tokens::revoke(c, &t.id, now_ms()).map(drop),
            _ => Err(crate::db::DbError::NotFound(format!(
                "no API token {id:?} of yours"
            ))),
        })
        .await;
    match done {
        Ok(()) => Redirect::to("/tokens").into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// The account page's time zone form.
#[derive(Debug, Deserialize)]
pub(super) struct ZoneForm {
    zone: String,
}

pub(super) async fn set_zone(
    State(s): State<AppState>,
    user: User,
    Form(f): Form<ZoneForm>,
) -> Response {
    let name = user.0.clone();
    match s
        .db
        .write(move |c| users::set_timezone(c, &name, &f.zone))
        .await
    {
        Ok(()) => Redirect::to("/tokens").into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}
