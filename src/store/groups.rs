//! Groups of users (org-wide, shared by every authorization server, like users), their members,
//! and app assignments: which users and groups a client that requires assignment serves.
//!
//! Membership and assignments are read from the database on every decision that needs them
//! (one query), never cached: removing a user from a group takes effect on the next token
//! request, on every replica.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::{on_pool, or_already_exists, Store, StoreError};
use crate::clock::UnixTime;
use crate::security::random_id;

/// A group, parsed from its row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Group {
    /// The JSON shown by `group list|show|create|update`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// Who a client is assigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    Group { id: String, name: String },
    User { id: String, username: String },
}

impl Assignee {
    pub fn to_json(&self) -> Value {
        match self {
            Assignee::Group { id, name } => json!({ "group": name, "group_id": id }),
            Assignee::User { id, username } => json!({ "user": username, "user_id": id }),
        }
    }
}

const COLUMNS: &str = "id, name, description, created_at, updated_at";

impl Store {
    /// Store a new group; `AlreadyExists` when the name is taken.
    pub async fn insert_group(
        &self,
        name: &str,
        description: &str,
        now: UnixTime,
    ) -> Result<Group, StoreError> {
        let id = random_id(20);
        let result = on_pool!(self, pool => sqlx::query(
            "INSERT INTO user_groups (id, name, description, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(&id)
        .bind(name)
        .bind(description)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()));
        or_already_exists(result, || format!("group `{name}`"))?;
        self.group(&id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("group `{id}`")))
    }

    pub async fn group(&self, id: &str) -> Result<Option<Group>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM user_groups WHERE id = $1");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Group>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await?))
    }

    pub async fn group_by_name(&self, name: &str) -> Result<Option<Group>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM user_groups WHERE name = $1");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Group>(&sql)
            .bind(name)
            .fetch_optional(pool)
            .await?))
    }

    /// Every group, by name.
    pub async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM user_groups ORDER BY name");
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Group>(&sql)
            .fetch_all(pool)
            .await?))
    }

    /// A page of groups by name (`Page::after` is a group name).
    pub async fn list_groups(&self, page: super::Page<'_>) -> Result<Vec<Group>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM user_groups WHERE ($1 IS NULL OR name > $1) \
             ORDER BY name LIMIT $2"
        );
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Group>(&sql)
            .bind(page.after)
            .bind(page.sql_limit())
            .fetch_all(pool)
            .await?))
    }

    /// Rename a group or change its description; `AlreadyExists` when the new name is taken,
    /// `false` when there is no such group.
    pub async fn update_group(
        &self,
        id: &str,
        name: &str,
        description: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let result = on_pool!(self, pool => sqlx::query(
            "UPDATE user_groups SET name = $1, description = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(name)
        .bind(description)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()));
        Ok(or_already_exists(result, || format!("group `{name}`"))? == 1)
    }

    /// Delete a group with its memberships and assignments (callers first refuse a group a
    /// rule still names).
    pub async fn delete_group(&self, id: &str) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query("DELETE FROM user_groups WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(done == 1)
    }

    /// Add users to a group, in one transaction; those already members stay. The number of
    /// users added.
    pub async fn add_group_members(
        &self,
        group_id: &str,
        user_ids: &[String],
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let added = on_pool!(self, pool => {
            let mut lane = pool.acquire().await?;
            let mut tx = lane.begin().await?;
            let mut added = 0;
            for user_id in user_ids {
                added += sqlx::query(
                    "INSERT INTO group_members (group_id, user_id, added_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(group_id)
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
            lane.release();
            added
        });
        Ok(added)
    }

    /// Remove users from a group, in one transaction. The number of users removed.
    pub async fn remove_group_members(
        &self,
        group_id: &str,
        user_ids: &[String],
    ) -> Result<u64, StoreError> {
        let removed = on_pool!(self, pool => {
            let mut lane = pool.acquire().await?;
            let mut tx = lane.begin().await?;
            let mut removed = 0;
            for user_id in user_ids {
                removed += sqlx::query(
                    "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2",
                )
                .bind(group_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
            lane.release();
            removed
        });
        Ok(removed)
    }

    /// A group's members as (id, username), by username.
    pub async fn group_members(&self, group_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        Ok(on_pool!(self, pool => sqlx::query_as(
            "SELECT u.id, u.username FROM group_members m JOIN users u ON u.id = m.user_id \
             WHERE m.group_id = $1 ORDER BY u.username",
        )
        .bind(group_id)
        .fetch_all(pool)
        .await?))
    }

    /// The members (id, username) of several groups in one query, by group id, each by
    /// username; a group without members is absent.
    pub async fn members_of_groups(
        &self,
        group_ids: &[&str],
    ) -> Result<HashMap<String, Vec<(String, String)>>, StoreError> {
        if group_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT m.group_id, u.id, u.username FROM group_members m \
             JOIN users u ON u.id = m.user_id WHERE m.group_id IN ({}) \
             ORDER BY m.group_id, u.username",
            super::placeholders(1, group_ids.len())
        );
        let rows: Vec<(String, String, String)> = on_pool!(self, pool => {
            let mut query = sqlx::query_as(&sql);
            for id in group_ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        });
        let mut members: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for (group_id, user_id, username) in rows {
            members
                .entry(group_id)
                .or_default()
                .push((user_id, username));
        }
        Ok(members)
    }

    /// The names of the groups of several users in one query, by user id, each list by name;
    /// a user in no group is absent.
    pub async fn group_names_of_users(
        &self,
        user_ids: &[&str],
    ) -> Result<HashMap<String, Vec<String>>, StoreError> {
        if user_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT m.user_id, g.name FROM group_members m \
             JOIN user_groups g ON g.id = m.group_id WHERE m.user_id IN ({}) \
             ORDER BY m.user_id, g.name",
            super::placeholders(1, user_ids.len())
        );
        let rows: Vec<(String, String)> = on_pool!(self, pool => {
            let mut query = sqlx::query_as(&sql);
            for id in user_ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        });
        let mut groups: HashMap<String, Vec<String>> = HashMap::new();
        for (user_id, name) in rows {
            groups.entry(user_id).or_default().push(name);
        }
        Ok(groups)
    }

    /// The groups a user belongs to, by name.
    pub async fn groups_of_user(&self, user_id: &str) -> Result<Vec<Group>, StoreError> {
        let sql = "SELECT g.id, g.name, g.description, g.created_at, g.updated_at \
             FROM group_members m JOIN user_groups g ON g.id = m.group_id \
             WHERE m.user_id = $1 ORDER BY g.name";
        Ok(on_pool!(self, pool => sqlx::query_as::<_, Group>(sql)
            .bind(user_id)
            .fetch_all(pool)
            .await?))
    }

    /// Require assignment for a client, or stop requiring it; `false` when there is no client.
    pub async fn set_client_assignment_required(
        &self,
        client_id: &str,
        required: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE clients SET assignment_required = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(required)
        .bind(now)
        .bind(client_id)
        .execute(pool)
        .await?
        .rows_affected());
        self.cache.invalidate_client(client_id);
        Ok(done == 1)
    }

    /// Assign a client to groups and users (in one transaction); existing assignments stay.
    pub async fn assign_client(
        &self,
        client_id: &str,
        group_ids: &[String],
        user_ids: &[String],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut lane = pool.acquire().await?;
            let mut tx = lane.begin().await?;
            for (group_id, user_id) in group_ids
                .iter()
                .map(|g| (Some(g), None))
                .chain(user_ids.iter().map(|u| (None, Some(u))))
            {
                sqlx::query(
                    "INSERT INTO client_assignments (client_id, group_id, user_id, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(client_id)
                .bind(group_id)
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            lane.release();
        });
        Ok(())
    }

    /// Withdraw assignments of a client (in one transaction).
    pub async fn unassign_client(
        &self,
        client_id: &str,
        group_ids: &[String],
        user_ids: &[String],
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut lane = pool.acquire().await?;
            let mut tx = lane.begin().await?;
            for group_id in group_ids {
                sqlx::query("DELETE FROM client_assignments WHERE client_id = $1 AND group_id = $2")
                    .bind(client_id)
                    .bind(group_id)
                    .execute(&mut *tx)
                    .await?;
            }
            for user_id in user_ids {
                sqlx::query("DELETE FROM client_assignments WHERE client_id = $1 AND user_id = $2")
                    .bind(client_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            lane.release();
        });
        Ok(())
    }

    /// A client's assignments: groups by name, then users by username.
    pub async fn client_assignments(&self, client_id: &str) -> Result<Vec<Assignee>, StoreError> {
        let groups: Vec<(String, String)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT g.id, g.name FROM client_assignments a JOIN user_groups g ON g.id = a.group_id \
             WHERE a.client_id = $1 ORDER BY g.name",
        )
        .bind(client_id)
        .fetch_all(pool)
        .await?);
        let users: Vec<(String, String)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT u.id, u.username FROM client_assignments a JOIN users u ON u.id = a.user_id \
             WHERE a.client_id = $1 ORDER BY u.username",
        )
        .bind(client_id)
        .fetch_all(pool)
        .await?);
        Ok(groups
            .into_iter()
            .map(|(id, name)| Assignee::Group { id, name })
            .chain(
                users
                    .into_iter()
                    .map(|(id, username)| Assignee::User { id, username }),
            )
            .collect())
    }

    /// Is the user assigned to the client, directly or through one of their groups? One query.
    pub async fn is_assigned(&self, client_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT a.client_id FROM client_assignments a WHERE a.client_id = $1 AND \
             (a.user_id = $2 OR a.group_id IN \
              (SELECT m.group_id FROM group_members m WHERE m.user_id = $2)) LIMIT 1",
        )
        .bind(client_id)
        .bind(user_id)
        .fetch_optional(pool)
        .await?);
        Ok(row.is_some())
    }
}
