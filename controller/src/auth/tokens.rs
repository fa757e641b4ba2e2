//! API tokens: each belongs to a user, has a name and a role no higher than the user's,
//! and is listed with its last use (recorded at most once a minute). A token of a disabled
//! or deleted user does not work.

use storefleet_storage::{args, Row, Sql, SqlExt as _};

use super::{random_secret, sha256, Caller, Role, API_TOKEN_PREFIX};
use crate::db::DbError;

pub use storefleet_client::auth::{ApiToken, CreatedApiToken, NewToken};

/// How often a token's last use is written, at most, ms.
pub const LAST_USED_EVERY_MS: i64 = 60_000;

const COLUMNS: &str = "id, name, user_name, role, created_at, last_used, revoked_at";

fn from_row(r: &Row) -> Result<ApiToken, DbError> {
    Ok(ApiToken {
        id: r.text("id")?,
        name: r.text("name")?,
        user: r.text("user_name")?,
        role: Role::parse(&r.text("role")?).unwrap_or(Role::Viewer),
        created_at: r.i64("created_at")?,
        last_used: r.opt_i64("last_used")?,
        revoked_at: r.opt_i64("revoked_at")?,
    })
}

/// Makes an API token for `user` (with at most `user_role`); returns its listing and its
/// text (shown once).
pub fn create_api_token(
    c: &dyn Sql,
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
        args![&id, name, sha256(&text), now, user, role.as_str()],
    )?;
    let token = get(c, &id)?.ok_or_else(|| DbError::NotFound(id.clone()))?;
    Ok((token, text))
}

/// One token.
pub fn get(c: &dyn Sql, id: &str) -> Result<Option<ApiToken>, DbError> {
    c.one(
        &format!("SELECT {COLUMNS} FROM api_tokens WHERE id = ?1"),
        args![id],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Tokens, of one user or of everyone, newest first.
pub fn list(c: &dyn Sql, user: Option<&str>) -> Result<Vec<ApiToken>, DbError> {
    c.all(
        &format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE (CAST(?1 AS TEXT) IS NULL OR user_name = ?1) ORDER BY created_at DESC"
        ),
        args![user],
        from_row,
    )
}

/// Revokes a token; revoking twice is not an error.
pub fn revoke(c: &dyn Sql, id: &str, now: i64) -> Result<ApiToken, DbError> {
    c.execute(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
        args![id, now],
    )?;
    get(c, id)?.ok_or_else(|| DbError::NotFound(format!("no API token {id:?}")))
}

/// The caller behind a live token `text` of an enabled user, and whether its last use is
/// due to be written (see [`touch`]).
pub fn api_token(c: &dyn Sql, text: &str, now: i64) -> Result<Option<(Caller, bool)>, DbError> {
    let Some(r) = c.one(
        "SELECT t.id, t.name, t.user_name, t.role AS token_role, u.role AS user_role, t.last_used,
                u.timezone
         FROM api_tokens t JOIN users u ON u.name = t.user_name
         WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
        args![sha256(text)],
    )?
    else {
        return Ok(None);
    };
    let role_of = |column: &str| -> Result<Role, DbError> {
        Ok(Role::parse(&r.text(column)?).unwrap_or(Role::Viewer))
    };
    let role = role_of("token_role")?.min(role_of("user_role")?);
    let last = r.opt_i64("last_used")?;
    Ok(Some((
        Caller {
            user: r.text("user_name")?,
            role,
            token: Some((r.text("id")?, r.text("name")?)),
            zone: r.text("timezone")?,
        },
        last.is_none_or(|l| now - l >= LAST_USED_EVERY_MS),
    )))
}

/// Records a token's use.
pub fn touch(c: &dyn Sql, id: &str, now: i64) -> Result<(), DbError> {
    c.execute(
        "UPDATE api_tokens SET last_used = ?2 WHERE id = ?1",
        args![id, now],
    )?;
    Ok(())
}
