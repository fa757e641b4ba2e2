//! The people-and-access repository on both backends: names and passwords are checked,
//! sessions live until they expire, end or their user is disabled, the last enabled admin
//! stays, a token never holds more than its user and dies with them.

use storefleet_storage::SqlExt as _;

use crate::auth::tokens::{self, NewToken};
use crate::auth::{has_principals, users, Role};
use crate::db::testing::{on_each_backend, Job};
use crate::db::DbError;

fn token(name: &str, role: Option<Role>) -> NewToken {
    NewToken {
        name: name.into(),
        role,
    }
}

#[test]
fn users_sessions_and_tokens_keep_their_rules_on_both_backends() {
    on_each_backend("auth repository", |backend, db| {
        let fails = |job: Job<'_>| -> DbError { db(job).expect_err(backend) };
        db(&mut |c| {
            assert!(!has_principals(c)?, "{backend}: empty");
            let ana = users::create(c, "ana", "first-password", Role::Admin, 1_000)?;
            assert_eq!(
                (ana.name.as_str(), ana.role, ana.created_at),
                ("ana", Role::Admin, 1_000)
            );
            assert!(has_principals(c)?);
            Ok(())
        })
        .unwrap();
        // A taken name, a bad name and a short password, each with its reason.
        let e =
            fails(&mut |c| users::create(c, "ana", "other-password", Role::Viewer, 2).map(drop));
        assert!(
            matches!(&e, DbError::Conflict(m) if m.contains("exists")),
            "{backend}: {e:?}"
        );
        let e =
            fails(&mut |c| users::create(c, "a b", "other-password", Role::Viewer, 2).map(drop));
        assert!(
            matches!(&e, DbError::Invalid(m) if m.contains("user name")),
            "{backend}: {e:?}"
        );
        let e = fails(&mut |c| users::create(c, "bo", "short", Role::Viewer, 2).map(drop));
        assert!(
            matches!(&e, DbError::Invalid(m) if m.contains("8 characters")),
            "{backend}: {e:?}"
        );

        // Sessions: live until expiry, end, or the user's disabling.
        let mut cookies = Vec::new();
        db(&mut |c| {
            cookies = vec![
                users::create_session(c, "ana", 10_000, 1)?,
                users::create_session(c, "ana", 10_000, 1)?,
            ];
            assert_eq!(
                users::session_user(c, &cookies[0], 10_001)?,
                Some(("ana".into(), Role::Admin, String::new()))
            );
            assert_eq!(
                users::session_user(c, &cookies[0], 10_000 + 3_600_000)?,
                None,
                "{backend}: expired"
            );
            assert_eq!(users::session_user(c, "forged", 10_001)?, None);
            users::end_session(c, &cookies[1])?;
            assert_eq!(users::session_user(c, &cookies[1], 10_001)?, None);
            Ok(())
        })
        .unwrap();

        // The last enabled admin can be neither demoted, disabled nor deleted.
        for e in [
            fails(&mut |c| users::set_role(c, "ana", Role::Viewer).map(drop)),
            fails(&mut |c| users::set_disabled(c, "ana", true, 20_000).map(drop)),
            fails(&mut |c| users::delete(c, "ana", 20_000)),
        ] {
            assert!(
                matches!(&e, DbError::Conflict(m) if m.contains("last enabled admin")),
                "{backend}: {e:?}"
            );
        }

        // A token never above its user; a demotion brings the user's tokens down with it.
        db(&mut |c| {
            users::create(c, "cy", "cy-password", Role::Dispatcher, 30_000)?;
            let e = tokens::create_api_token(
                c,
                "cy",
                Role::Dispatcher,
                &token("x", Some(Role::Admin)),
                30_001,
            )
            .unwrap_err();
            assert!(
                matches!(&e, DbError::Invalid(m) if m.contains("above")),
                "{backend}: {e:?}"
            );
            let (t, text) =
                tokens::create_api_token(c, "cy", Role::Dispatcher, &token("ci", None), 30_001)?;
            assert_eq!(
                (t.role, t.user.as_str(), t.last_used),
                (Role::Dispatcher, "cy", None)
            );
            let (caller, due) = tokens::api_token(c, &text, 30_002)?.unwrap();
            assert_eq!(
                (caller.user.as_str(), caller.role, due),
                ("cy", Role::Dispatcher, true)
            );
            assert_eq!(caller.token, Some((t.id.clone(), "ci".to_owned())));
            tokens::touch(c, &t.id, 30_002)?;
            let (_, due) = tokens::api_token(c, &text, 30_003)?.unwrap();
            assert!(!due, "{backend}: last use written a moment ago");
            let (_, due) =
                tokens::api_token(c, &text, 30_002 + tokens::LAST_USED_EVERY_MS)?.unwrap();
            assert!(due);
            users::set_role(c, "cy", Role::Viewer)?;
            assert_eq!(tokens::get(c, &t.id)?.unwrap().role, Role::Viewer);
            assert_eq!(
                tokens::api_token(c, &text, 30_004)?.unwrap().0.role,
                Role::Viewer
            );
            // Disabled: no session, no token; enabled again: the token works.
            let cookie = users::create_session(c, "cy", 30_005, 1)?;
            users::set_disabled(c, "cy", true, 30_006)?;
            assert_eq!(users::session_user(c, &cookie, 30_007)?, None);
            assert!(tokens::api_token(c, &text, 30_007)?.is_none());
            assert_eq!(users::get(c, "cy")?.unwrap().disabled_at, Some(30_006));
            users::set_disabled(c, "cy", false, 30_008)?;
            assert!(tokens::api_token(c, &text, 30_009)?.is_some());
            assert_eq!(
                users::session_user(c, &cookie, 30_009)?,
                None,
                "{backend}: a disabled user's sessions ended"
            );
            // Listing: one user's, everyone's, newest first.
            tokens::create_api_token(c, "ana", Role::Admin, &token("backup", None), 30_010)?;
            let all: Vec<_> = tokens::list(c, None)?.into_iter().map(|t| t.name).collect();
            assert_eq!(all, ["backup", "ci"]);
            assert_eq!(tokens::list(c, Some("cy"))?.len(), 1);
            // Revoked: listed with its time, does not work, revoking again keeps the time.
            assert_eq!(tokens::revoke(c, &t.id, 30_011)?.revoked_at, Some(30_011));
            assert_eq!(tokens::revoke(c, &t.id, 30_012)?.revoked_at, Some(30_011));
            assert!(tokens::api_token(c, &text, 30_013)?.is_none());
            Ok(())
        })
        .unwrap();

        // A password change ends every session but the caller's; a deleted user is gone
        // with their sessions and tokens.
        db(&mut |c| {
            let (a, b) = (
                users::create_session(c, "cy", 40_000, 1)?,
                users::create_session(c, "cy", 40_000, 1)?,
            );
            assert_eq!(
                users::change_password(c, "cy", "new-password", Some(&a))?,
                1
            );
            assert!(users::session_user(c, &a, 40_001)?.is_some());
            assert!(users::session_user(c, &b, 40_001)?.is_none());
            let (_, text) =
                tokens::create_api_token(c, "cy", Role::Viewer, &token("t2", None), 40_002)?;
            users::delete(c, "cy", 40_003)?;
            assert!(users::get(c, "cy")?.is_none());
            assert!(users::session_user(c, &a, 40_004)?.is_none());
            assert!(tokens::api_token(c, &text, 40_004)?.is_none());
            let left = c.int(
                "SELECT count(*) AS n FROM sessions WHERE user_name = ?1",
                storefleet_storage::args!["cy"],
                "n",
            )?;
            assert_eq!(left, 0, "{backend}: sessions of a deleted user");
            let names: Vec<_> = users::list(c)?.into_iter().map(|u| u.name).collect();
            assert_eq!(names, ["ana"]);
            Ok(())
        })
        .unwrap();
        let e = fails(&mut |c| users::set_role(c, "nobody", Role::Viewer).map(drop));
        assert!(
            matches!(&e, DbError::NotFound(m) if m.contains("nobody")),
            "{backend}: {e:?}"
        );
    });
}
