//! API tokens: each belongs to a user, has a name and a role no higher than the user's,
//! and is listed with its last use (recorded at most once a minute). A token of a disabled
//! or deleted user does not work.

use rusqlite::{params, Connection, OptionalExtension as _};
use serde::{Deserialize, Serialize};

use super::{random_secret, sha256, Caller, Role, API_TOKEN_PREFIX};
use crate::db::DbError;

/// How often a token's last use is written, at most, ms.
pub const LAST_USED_EVERY_MS: i64 = 60_000;

/// An API token as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Token id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The user it belongs to.
    pub user: String,
    /// Its role.
    pub role: Role,
    /// When made, ms.
    pub created_at: i64,
    /// Last used, ms (to the minute).
    pub last_used: Option<i64>,
    /// When revoked, ms.
    pub revoked_at: Option<i64>,
}

/// What a new token needs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A name saying what uses it.
    pub name: String,
    /// Its role; the owner's when absent. Never above the owner's.
    #[serde(default)]
    pub role: Option<Role>,
}

const COLUMNS: &str = "id, name, user_name, role, created_at, last_used, revoked_at";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiToken> {
    let role: String = r.get(3)?;
    Ok(ApiToken {
        id: r.get(0)?,
        name: r.get(1)?,
        user: r.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        created_at: r.get(4)?,
        last_used: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

/// Makes an API token for `user` (with at most `user_role`); returns its listing and its
/// text (shown once).
pub fn create_api_token(
    c: &Connection,
    user: &str,
    user_role: Role,
    req: &NewToken,
    now: i64,
) -> Result<(ApiToken, String), DbError> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(DbError::Invalid("token name: 1 to 100 characters".into()));
    }
    let role = req.role.unwrap_or(user_role);
    if role > user_role {
        return Err(DbError::Invalid(format!(
            "token role {role} is above the user's role {user_role}"
        )));
    }
    let text = format!("{API_TOKEN_PREFIX}{}", random_secret());
    let id = format!("k-{}", &random_secret()[..12]);
    c.execute(
        "INSERT INTO api_tokens(id, name, token_hash, created_at, user_name, role)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, name, sha256(&text), now, user, role.as_str()],
    )?;
    let token = get(c, &id)?.ok_or_else(|| DbError::NotFound(id.clone()))?;
    Ok((token, text))
}

/// One token.
pub fn get(c: &Connection, id: &str) -> Result<Option<ApiToken>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?)
}

/// Tokens, of one user or of everyone, newest first.
pub fn list(c: &Connection, user: Option<&str>) -> Result<Vec<ApiToken>, DbError> {
    let mut st = c.prepare(&format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE (?1 IS NULL OR user_name = ?1) ORDER BY created_at DESC"
    ))?;
    let rows = st.query_map([user], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes a token; revoking twice is not an error.
pub fn revoke(c: &Connection, id: &str, now: i64) -> Result<ApiToken, DbError> {
    c.execute(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
        params![id, now],
    )?;
    get(c, id)?.ok_or_else(|| DbError::NotFound(format!("no API token {id:?}")))
}

/// The caller behind a live token `text` of an enabled user, and whether its last use is
/// due to be written (see [`touch`]).
pub fn api_token(c: &Connection, text: &str, now: i64) -> Result<Option<(Caller, bool)>, DbError> {
    Ok(c.query_row(
        "SELECT t.id, t.name, t.user_name, t.role, u.role, t.last_used
         FROM api_tokens t JOIN users u ON u.name = t.user_name
         WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
        [sha256(text)],
        |r| {
            let token_role: String = r.get(3)?;
            let user_role: String = r.get(4)?;
            let last: Option<i64> = r.get(5)?;
            let role = Role::parse(&token_role)
                .unwrap_or(Role::Viewer)
                .min(Role::parse(&user_role).unwrap_or(Role::Viewer));
            Ok((
                Caller {
                    user: r.get(2)?,
                    role,
                    token: Some((r.get(0)?, r.get(1)?)),
                },
                last.is_none_or(|l| now - l >= LAST_USED_EVERY_MS),
            ))
        },
    )
    .optional()?)
}

/// Records a token's use.
pub fn touch(c: &Connection, id: &str, now: i64) -> Result<(), DbError> {
    c.execute(
        "UPDATE api_tokens SET last_used = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}
