//! Users: org-wide, shared by every authorization server. Their standard claims (OIDC Core
//! §5.1: name, email, address, …) are one JSON object; their password is an argon2id PHC
//! string made by `crate::passwords`, or absent (such a user cannot sign in).
//!
//! Usernames are trimmed, 1 to 128 characters with no control characters, and compared
//! exactly as stored: case-sensitively and without Unicode normalization, so `Alice` and
//! `alice` are two users. Whoever wants e-mail addresses as usernames lowercases them first.

use serde_json::{json, Map, Value};

use super::logout::{end_sessions_in, Sessions};
use super::{on_pool, or_already_exists, Store, StoreError};
use crate::clock::UnixTime;
use crate::security::random_id;

pub const MAX_USERNAME_CHARS: usize = 128;

/// A valid username: see the module documentation for the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("a username must not be empty".into());
        }
        if name.chars().count() > MAX_USERNAME_CHARS {
            return Err(format!(
                "a username must be at most {MAX_USERNAME_CHARS} characters"
            ));
        }
        // They end up in logs, audit events and the `preferred_username` of tokens.
        if name.chars().any(char::is_control) {
            return Err("a username must not contain control characters".into());
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user, parsed from its row. The id is the `sub` of their tokens.
#[derive(Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    password_hash: Option<String>,
    pub disabled: bool,
    /// Standard claims (OIDC Core §5.1), `address` as an object (§5.1.1).
    pub claims: Map<String, Value>,
    /// Custom attributes (`user update --attribute`), read by attribute claims; never a
    /// standard claim's name.
    pub attributes: Map<String, Value>,
    pub failed_logins: i64,
    pub locked_until: Option<UnixTime>,
    pub password_changed_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("has_password", &self.has_password())
            .field("disabled", &self.disabled)
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

impl User {
    /// The stored argon2id PHC string, for `PasswordHasher::verify`; `None` when the user has
    /// no password (verify then still spends the time of a real check, and fails).
    pub fn password_hash(&self) -> Option<&str> {
        self.password_hash.as_deref()
    }

    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }

    /// Locked out by failed logins until `locked_until`.
    pub fn is_locked(&self, now: UnixTime) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }

    /// The JSON shown by `user show|list`: never the password hash.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "username": self.username,
            "disabled": self.disabled,
            "has_password": self.has_password(),
            "claims": self.claims,
            "attributes": self.attributes,
            "failed_logins": self.failed_logins,
            "locked_until": self.locked_until,
            "password_changed_at": self.password_changed_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// A user about to be stored; the password is already hashed.
#[derive(Clone)]
pub struct NewUser {
    pub username: Username,
    pub password_hash: Option<String>,
    pub claims: Map<String, Value>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("has_password", &self.password_hash.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    username: String,
    password_hash: Option<String>,
    disabled: bool,
    claims: String,
    attributes: String,
    failed_logins: i64,
    locked_until: Option<i64>,
    password_changed_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        let claims = match serde_json::from_str(&row.claims) {
            Ok(Value::Object(claims)) => claims,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "user {}: claims are not a JSON object",
                    row.id
                )))
            }
        };
        let attributes = match serde_json::from_str(&row.attributes) {
            Ok(Value::Object(attributes)) => attributes,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "user {}: attributes are not a JSON object",
                    row.id
                )))
            }
        };
        Ok(User {
            id: row.id,
            username: row.username,
            password_hash: row.password_hash,
            disabled: row.disabled,
            claims,
            attributes,
            failed_logins: row.failed_logins,
            locked_until: row.locked_until,
            password_changed_at: row.password_changed_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const COLUMNS: &str = "id, username, password_hash, disabled, claims, attributes, failed_logins, \
    locked_until, password_changed_at, created_at, updated_at";

/// A user read in the same query as the row that names them (a session, a refresh token): the
/// user's columns come back as `u_<column>` from `users u`, since `created_at` and others would
/// clash with the other table's.
#[derive(sqlx::FromRow)]
pub(super) struct JoinedUserRow {
    #[sqlx(rename = "u_id")]
    id: String,
    #[sqlx(rename = "u_username")]
    username: String,
    #[sqlx(rename = "u_password_hash")]
    password_hash: Option<String>,
    #[sqlx(rename = "u_disabled")]
    disabled: bool,
    #[sqlx(rename = "u_claims")]
    claims: String,
    #[sqlx(rename = "u_attributes")]
    attributes: String,
    #[sqlx(rename = "u_failed_logins")]
    failed_logins: i64,
    #[sqlx(rename = "u_locked_until")]
    locked_until: Option<i64>,
    #[sqlx(rename = "u_password_changed_at")]
    password_changed_at: Option<i64>,
    #[sqlx(rename = "u_created_at")]
    created_at: i64,
    #[sqlx(rename = "u_updated_at")]
    updated_at: i64,
}

impl TryFrom<JoinedUserRow> for User {
    type Error = StoreError;
    fn try_from(row: JoinedUserRow) -> Result<Self, StoreError> {
        User::try_from(UserRow {
            id: row.id,
            username: row.username,
            password_hash: row.password_hash,
            disabled: row.disabled,
            claims: row.claims,
            attributes: row.attributes,
            failed_logins: row.failed_logins,
            locked_until: row.locked_until,
            password_changed_at: row.password_changed_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// The select list of `JoinedUserRow`: `u.id AS u_id, …`.
pub(super) fn joined_user_columns() -> String {
    super::qualified(COLUMNS, "u", "u_")
}

/// Everything a user's access lives on, withdrawn when that access must end: each binds
/// `$1` = now, `$2` = the user id. Authorization codes and refresh tokens hang off a grant, so
/// redeeming either must check the grant's `revoked_at`; access tokens already issued stay
/// valid until they expire.
const REVOKE_USER_GRANTS: [&str; 3] = [
    "UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL",
];

impl Store {
    /// Store a new user with a fresh random id; `AlreadyExists` if the username is taken.
    pub async fn insert_user(&self, new: &NewUser, now: UnixTime) -> Result<User, StoreError> {
        // 120 bits: unguessable, and short enough to read in a `sub` claim.
        let id = random_id(20);
        let claims = Value::Object(new.claims.clone()).to_string();
        let result = on_pool!(self, pool => sqlx::query(
            "INSERT INTO users (id, username, password_hash, claims, password_changed_at, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&id)
        .bind(new.username.as_str())
        .bind(&new.password_hash)
        .bind(&claims)
        .bind(new.password_hash.as_ref().map(|_| now))
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()));
        or_already_exists(result, || format!("user `{}`", new.username))?;
        self.user(&id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user `{id}`")))
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        let row = on_pool!(self, pool => sqlx::query_as::<_, UserRow>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await?);
        row.map(User::try_from).transpose()
    }

    /// The user an access token names, and whether the token is withdrawn (as
    /// `access_token_withdrawn`), in one query; `None` when there is no such user.
    pub async fn user_for_access_token(
        &self,
        user_id: &str,
        jti: &str,
        grant_id: Option<&str>,
        now: UnixTime,
    ) -> Result<Option<(User, bool)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct WithToken {
            #[sqlx(flatten)]
            user: UserRow,
            withdrawn: Option<String>,
        }
        let withdrawn = super::revocations::withdrawn_query("$2", "$3", "$4");
        let sql = format!("SELECT {COLUMNS}, ({withdrawn}) AS withdrawn FROM users WHERE id = $1");
        let row = on_pool!(self, pool => sqlx::query_as::<_, WithToken>(&sql)
            .bind(user_id)
            .bind(jti)
            .bind(grant_id)
            .bind(now)
            .fetch_optional(pool)
            .await?);
        row.map(|r| Ok((User::try_from(r.user)?, r.withdrawn.is_some())))
            .transpose()
    }

    /// The user with exactly this username, once surrounding whitespace is trimmed (as it was
    /// when the user was created); case matters.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE username = $1");
        let row = on_pool!(self, pool => sqlx::query_as::<_, UserRow>(&sql)
            .bind(username.trim())
            .fetch_optional(pool)
            .await?);
        row.map(User::try_from).transpose()
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users ORDER BY username, id");
        let rows = on_pool!(self, pool => sqlx::query_as::<_, UserRow>(&sql)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(User::try_from).collect()
    }

    /// A page of users by username (`Page::after` is a username).
    pub async fn list_users(&self, page: super::Page<'_>) -> Result<Vec<User>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM users WHERE ($1 IS NULL OR username > $1) \
             ORDER BY username, id LIMIT $2"
        );
        let rows = on_pool!(self, pool => sqlx::query_as::<_, UserRow>(&sql)
            .bind(page.after)
            .bind(page.sql_limit())
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(User::try_from).collect()
    }

    /// Disable or enable a user; `false` if there is no such user. Disabling also withdraws
    /// their grants, refresh tokens and sessions, in the same transaction; enabling does not
    /// bring them back.
    pub async fn set_user_disabled(
        &self,
        id: &str,
        disabled: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let changed = on_pool!(self, pool => {
            let mut lane = pool.acquire().await?;
            let mut tx = lane.begin().await?;
            let changed = sqlx::query(
                "UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3",
            )
            .bind(disabled)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 && disabled {
                end_sessions_in!(tx, Sessions::OfUser(id), now);
                for sql in REVOKE_USER_GRANTS {
                    sqlx::query(sql).bind(now).bind(id).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            lane.release();
            changed
        });
        Ok(changed == 1)
    }

    /// Delete a user; their grants (with codes and refresh tokens), sessions and consents go
    /// with them (ON DELETE CASCADE), after their sessions' back-channel logouts are queued, in
    /// the same transaction.
    pub async fn delete_user(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => {
            let mut lane = pool.acquire().await?;
            let mut tx = lane.begin().await?;
            end_sessions_in!(tx, Sessions::OfUser(id), now);
            let done = sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            lane.release();
            done
        });
        Ok(done == 1)
    }

    /// Replace a user's password hash; `false` if there is no such user. A new password
    /// clears the lockout and withdraws every grant, refresh token and session made with the
    /// old one, in the same transaction: whoever knew the old password loses what it gave them.
    pub async fn set_password_hash(
        &self,
        id: &str,
        hash: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let changed = on_pool!(self, pool => {
            let mut lane = pool.acquire().await?;
            let mut tx = lane.begin().await?;
            let changed = sqlx::query(
                "UPDATE users SET password_hash = $1, password_changed_at = $2, \
                 failed_logins = 0, locked_until = NULL, updated_at = $2 WHERE id = $3",
            )
            .bind(hash)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                end_sessions_in!(tx, Sessions::OfUser(id), now);
                for sql in REVOKE_USER_GRANTS {
                    sqlx::query(sql).bind(now).bind(id).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            lane.release();
            changed
        });
        Ok(changed == 1)
    }

    /// Replace a user's claims; `false` if there is no such user. Tokens already issued keep
    /// the claims they carry; `/userinfo` answers with these from now on.
    pub async fn set_user_claims(
        &self,
        id: &str,
        claims: &Map<String, Value>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let claims = Value::Object(claims.clone()).to_string();
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE users SET claims = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(&claims)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Replace a user's custom attributes; `false` if there is no such user.
    pub async fn set_user_attributes(
        &self,
        id: &str,
        attributes: &Map<String, Value>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let attributes = Value::Object(attributes.clone()).to_string();
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE users SET attributes = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(&attributes)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Clear a lockout and the failed-login count; `false` if there is no such user.
    pub async fn unlock_user(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE users SET failed_logins = 0, locked_until = NULL, updated_at = $1 \
             WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Withdraw everything that gives a user access without their password: revoke their
    /// grants and refresh tokens, end their live sessions. Idempotent.
    pub async fn revoke_user_grants(&self, user_id: &str, now: UnixTime) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut lane = pool.acquire().await?;
            let mut tx = lane.begin().await?;
            end_sessions_in!(tx, Sessions::OfUser(user_id), now);
            for sql in REVOKE_USER_GRANTS {
                sqlx::query(sql).bind(now).bind(user_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            lane.release();
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_bounded() {
        assert_eq!(Username::parse("  alice \n").unwrap().as_str(), "alice");
        assert_eq!(Username::parse("Alice").unwrap().as_str(), "Alice");
        assert!(Username::parse("").is_err());
        assert!(Username::parse("   ").is_err());
        assert!(Username::parse("a\u{0}b").is_err());
        assert!(Username::parse("a\tb").is_err());
        let longest = "é".repeat(MAX_USERNAME_CHARS);
        assert!(Username::parse(&longest).is_ok(), "characters, not bytes");
        assert!(Username::parse(&format!("{longest}e")).is_err());
    }

    #[test]
    fn debug_and_json_never_show_the_hash() {
        let user = User {
            id: "u1".into(),
            username: "alice".into(),
            password_hash: Some("$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA".into()),
            disabled: false,
            claims: Map::new(),
            attributes: Map::new(),
            failed_logins: 0,
            locked_until: None,
            password_changed_at: Some(1),
            created_at: 1,
            updated_at: 1,
        };
        assert!(!format!("{user:?}").contains("argon2"));
        assert!(!user.to_json().to_string().contains("argon2"));
        assert_eq!(user.to_json()["has_password"], true);
        let new = NewUser {
            username: Username::parse("alice").unwrap(),
            password_hash: user.password_hash.clone(),
            claims: Map::new(),
        };
        assert!(!format!("{new:?}").contains("argon2"));
    }
}
