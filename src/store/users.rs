//! TEMPORARY minimal users store; replaced by the `users` branch at merge.

use super::{on_pool, Store, StoreError};

#[derive(Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    password_hash: Option<String>,
    pub disabled: bool,
    pub claims: serde_json::Map<String, serde_json::Value>,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub updated_at: i64,
}

impl User {
    pub fn password_hash(&self) -> Option<&str> {
        self.password_hash.as_deref()
    }
}

pub struct NewUser {
    pub username: String,
    pub password_hash: Option<String>,
    pub claims: serde_json::Map<String, serde_json::Value>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    username: String,
    password_hash: Option<String>,
    disabled: bool,
    claims: String,
    failed_logins: i64,
    locked_until: Option<i64>,
    updated_at: i64,
}

impl From<Row> for User {
    fn from(r: Row) -> Self {
        User {
            id: r.id,
            username: r.username,
            password_hash: r.password_hash,
            disabled: r.disabled,
            claims: serde_json::from_str(&r.claims).unwrap_or_default(),
            failed_logins: r.failed_logins,
            locked_until: r.locked_until,
            updated_at: r.updated_at,
        }
    }
}

impl Store {
    pub async fn insert_user(&self, new: &NewUser, now: i64) -> Result<User, StoreError> {
        let id = crate::security::random_token(15);
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO users (id, username, password_hash, claims, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
            .bind(&id).bind(&new.username).bind(&new.password_hash)
            .bind(serde_json::Value::Object(new.claims.clone()).to_string()).bind(now)
            .execute(pool).await?.rows_affected());
        self.user(&id)
            .await?
            .ok_or_else(|| StoreError::NotFound(id))
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, StoreError> {
        let row = on_pool!(self, pool => sqlx::query_as::<_, Row>(
            "SELECT id, username, password_hash, disabled, claims, failed_logins, locked_until, updated_at FROM users WHERE id = $1")
            .bind(id).fetch_optional(pool).await?);
        Ok(row.map(User::from))
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        let row = on_pool!(self, pool => sqlx::query_as::<_, Row>(
            "SELECT id, username, password_hash, disabled, claims, failed_logins, locked_until, updated_at FROM users WHERE username = $1")
            .bind(username).fetch_optional(pool).await?);
        Ok(row.map(User::from))
    }
}
