//! Users: a name, a role, a password, sessions; disabled users can neither sign in nor use
//! their tokens. The last enabled admin cannot be demoted, disabled or deleted.

use storefleet_storage::{args, Row, Sql, SqlExt as _};

use super::{hash_password, random_secret, sha256, Role};
use crate::db::DbError;

pub use storefleet_client::auth::{NewUser, PasswordChange, PasswordChanged, User, UserChange};

fn check_name(name: &str) -> Result<(), DbError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
    {
        return Err(DbError::Invalid(
            "user name: 1 to 64 letters, digits, '-', '_', '.' or '@'".into(),
        ));
    }
    Ok(())
}

fn check_password_rules(password: &str) -> Result<(), DbError> {
    if password.chars().count() < 8 {
        return Err(DbError::Invalid("password: at least 8 characters".into()));
    }
    if password.len() > 1024 {
        return Err(DbError::Invalid("password: at most 1024 bytes".into()));
    }
    Ok(())
}

fn role_of(r: &Row, column: &str) -> Result<Role, DbError> {
    // An unknown role in the database reads as the least one.
    Ok(Role::parse(&r.text(column)?).unwrap_or(Role::Viewer))
}

fn user_of(r: &Row) -> Result<User, DbError> {
    Ok(User {
        name: r.text("name")?,
        role: role_of(r, "role")?,
        created_at: r.i64("created_at")?,
        disabled_at: r.opt_i64("disabled_at")?,
    })
}

/// Creates a user, or sets an existing user's password (and role, when given). Ends the
/// user's sessions when the password changes.
pub fn set_user(
    c: &dyn Sql,
    name: &str,
    password: &str,
    role: Option<Role>,
    now: i64,
) -> Result<(), DbError> {
    check_name(name)?;
    check_password_rules(password)?;
    let exists = get(c, name)?;
    let hash = hash_password(password);
    match exists {
        None => {
            c.execute(
                "INSERT INTO users(name, pw_hash, created_at, role) VALUES (?1, ?2, ?3, ?4)",
                args![name, hash, now, role.unwrap_or(Role::Viewer).as_str()],
            )?;
        }
        Some(_) => {
            c.execute(
                "UPDATE users SET pw_hash = ?2 WHERE name = ?1",
                args![name, hash],
            )?;
            end_sessions_of(c, name, None)?;
            if let Some(r) = role {
                set_role(c, name, r)?;
            }
        }
    }
    Ok(())
}

/// A new user; refused when the name is taken.
pub fn create(
    c: &dyn Sql,
    name: &str,
    password: &str,
    role: Role,
    now: i64,
) -> Result<User, DbError> {
    if get(c, name)?.is_some() {
        return Err(DbError::Conflict(format!("user {name:?} exists")));
    }
    set_user(c, name, password, Some(role), now)?;
    get(c, name)?.ok_or_else(|| DbError::NotFound(name.to_owned()))
}

/// One user.
pub fn get(c: &dyn Sql, name: &str) -> Result<Option<User>, DbError> {
    c.one(
        "SELECT name, role, created_at, disabled_at FROM users WHERE name = ?1",
        args![name],
    )?
    .as_ref()
    .map(user_of)
    .transpose()
}

/// All users by name.
pub fn list(c: &dyn Sql) -> Result<Vec<User>, DbError> {
    c.all(
        "SELECT name, role, created_at, disabled_at FROM users ORDER BY name",
        args![],
        user_of,
    )
}

/// Refuses a change that would leave no enabled admin.
fn keep_an_admin(c: &dyn Sql, name: &str) -> Result<(), DbError> {
    // Two replicas demoting the last two admins at once: the second sees the first's.
    c.take_turn("admins")?;
    let others = c.int(
        "SELECT count(*) AS n FROM users WHERE role = 'admin' AND disabled_at IS NULL AND name != ?1",
        args![name],
        "n",
    )?;
    if others == 0 {
        return Err(DbError::Conflict(format!(
            "{name:?} is the last enabled admin; make another admin first"
        )));
    }
    Ok(())
}

/// Changes a user's role; their tokens keep at most the new role.
pub fn set_role(c: &dyn Sql, name: &str, role: Role) -> Result<User, DbError> {
    let u = get(c, name)?.ok_or_else(|| DbError::NotFound(format!("no user {name:?}")))?;
    if u.role == Role::Admin && role != Role::Admin {
        keep_an_admin(c, name)?;
    }
    c.execute(
        "UPDATE users SET role = ?2 WHERE name = ?1",
        args![name, role.as_str()],
    )?;
    // Tokens above the new role come down to it.
    for r in Role::ALL.into_iter().filter(|r| *r > role) {
        c.execute(
            "UPDATE api_tokens SET role = ?2 WHERE user_name = ?1 AND role = ?3",
            args![name, role.as_str(), r.as_str()],
        )?;
    }
    get(c, name)?.ok_or_else(|| DbError::NotFound(name.to_owned()))
}

/// Disables or enables a user; a disabled user's sessions end.
pub fn set_disabled(c: &dyn Sql, name: &str, disabled: bool, now: i64) -> Result<User, DbError> {
    let u = get(c, name)?.ok_or_else(|| DbError::NotFound(format!("no user {name:?}")))?;
    if disabled && u.role == Role::Admin {
        keep_an_admin(c, name)?;
    }
    c.execute(
        "UPDATE users SET disabled_at = CASE WHEN ?2 THEN coalesce(disabled_at, ?3) END WHERE name = ?1",
        args![name, disabled, now],
    )?;
    if disabled {
        end_sessions_of(c, name, None)?;
    }
    get(c, name)?.ok_or_else(|| DbError::NotFound(name.to_owned()))
}

/// Deletes a user with their sessions; their tokens are revoked.
pub fn delete(c: &dyn Sql, name: &str, now: i64) -> Result<(), DbError> {
    let u = get(c, name)?.ok_or_else(|| DbError::NotFound(format!("no user {name:?}")))?;
    if u.role == Role::Admin {
        keep_an_admin(c, name)?;
    }
    end_sessions_of(c, name, None)?;
    c.execute(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE user_name = ?1",
        args![name, now],
    )?;
    c.execute("DELETE FROM users WHERE name = ?1", args![name])?;
    Ok(())
}

/// Changes a password; every session of the user ends but `keep` (the caller's own).
pub fn change_password(
    c: &dyn Sql,
    name: &str,
    password: &str,
    keep: Option<&str>,
) -> Result<u64, DbError> {
    check_password_rules(password)?;
    if get(c, name)?.is_none() {
        return Err(DbError::NotFound(format!("no user {name:?}")));
    }
    c.execute(
        "UPDATE users SET pw_hash = ?2 WHERE name = ?1",
        args![name, hash_password(password)],
    )?;
    end_sessions_of(c, name, keep)
}

fn end_sessions_of(c: &dyn Sql, name: &str, keep: Option<&str>) -> Result<u64, DbError> {
    let keep = keep.map(sha256).unwrap_or_default();
    c.execute(
        "DELETE FROM sessions WHERE user_name = ?1 AND token_hash != ?2",
        args![name, keep],
    )
}

/// Replaces a user's stored hash (an older kind upgraded at sign-in).
pub fn replace_hash(c: &dyn Sql, name: &str, hash: &str) -> Result<(), DbError> {
    c.execute(
        "UPDATE users SET pw_hash = ?2 WHERE name = ?1",
        args![name, hash],
    )?;
    Ok(())
}

/// The stored password hash of an enabled user (checked off the writer thread).
pub fn password_hash(c: &dyn Sql, name: &str) -> Result<Option<String>, DbError> {
    c.one(
        "SELECT pw_hash FROM users WHERE name = ?1 AND disabled_at IS NULL",
        args![name],
    )?
    .map(|r| r.text("pw_hash"))
    .transpose()
}

/// Starts a session for `user`; returns the cookie value.
pub fn create_session(c: &dyn Sql, user: &str, now: i64, hours: u64) -> Result<String, DbError> {
    let secret = random_secret();
    c.execute("DELETE FROM sessions WHERE expires_at < ?1", args![now])?;
    c.execute(
        "INSERT INTO sessions(token_hash, user_name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        args![sha256(&secret), user, now, now + (hours as i64) * 3_600_000],
    )?;
    Ok(secret)
}

/// The enabled user of a live session, with their role and time zone.
pub fn session_user(
    c: &dyn Sql,
    cookie: &str,
    now: i64,
) -> Result<Option<(String, Role, String)>, DbError> {
    c.one(
        "SELECT u.name, u.role, u.timezone FROM sessions s JOIN users u ON u.name = s.user_name
         WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled_at IS NULL",
        args![sha256(cookie), now],
    )?
    .map(|r| Ok((r.text("name")?, role_of(&r, "role")?, r.text("timezone")?)))
    .transpose()
}

/// Sets a person's own time zone (an IANA name; empty: UTC).
pub fn set_timezone(c: &dyn Sql, name: &str, zone: &str) -> Result<(), DbError> {
    let zone = zone.trim();
    if !zone.is_empty() && jiff::tz::TimeZone::get(zone).is_err() {
        return Err(DbError::Invalid(format!(
            "time zone {zone:?}: an IANA name such as Europe/Berlin"
        )));
    }
    if c.execute(
        "UPDATE users SET timezone = ?2 WHERE name = ?1",
        args![name, zone],
    )? == 0
    {
        return Err(DbError::NotFound(format!("no user {name:?}")));
    }
    Ok(())
}

/// Ends a session.
pub fn end_session(c: &dyn Sql, cookie: &str) -> Result<(), DbError> {
    c.execute(
        "DELETE FROM sessions WHERE token_hash = ?1",
        args![sha256(cookie)],
    )?;
    Ok(())
}
