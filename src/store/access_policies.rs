//! Access policies of an authorization server and their rules (evaluated by
//! `crate::policy::access`). Cached per replica with the rest of the configuration: every write
//! bumps `config_version` (migration 0009's triggers).

use super::{on_pool, or_already_exists, split_list, Store, StoreError};
use crate::protocol::{GrantType, ScopeSet};

/// Which clients a policy applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyClients {
    All,
    Only(Vec<String>),
}

impl PolicyClients {
    pub fn includes(&self, client_id: &str) -> bool {
        match self {
            PolicyClients::All => true,
            PolicyClients::Only(ids) => ids.iter().any(|id| id == client_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessPolicy {
    pub id: String,
    pub server_id: String,
    pub name: String,
    pub description: String,
    /// Lower first.
    pub priority: i64,
    pub clients: PolicyClients,
    /// By priority, then name.
    pub rules: Vec<AccessRule>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Whom a rule is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum People {
    /// Everyone, and a client acting on its own behalf.
    Everyone,
    /// Members of any of these groups, or any of these users (ids); never a client alone.
    Some {
        groups: Vec<String>,
        users: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessRule {
    pub id: String,
    pub policy_id: String,
    pub name: String,
    /// Lower first.
    pub priority: i64,
    /// Empty: any grant type.
    pub grant_types: Vec<GrantType>,
    pub people: People,
    /// The scopes the rule allows; `None`: any.
    pub scopes: Option<ScopeSet>,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub refresh_idle_ttl: Option<i64>,
    pub deny: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct PolicyRow {
    id: String,
    server_id: String,
    name: String,
    description: String,
    priority: i64,
    all_clients: bool,
    client_ids: String,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: String,
    policy_id: String,
    name: String,
    priority: i64,
    grant_types: String,
    everyone: bool,
    group_ids: String,
    user_ids: String,
    any_scope: bool,
    scopes: String,
    access_token_ttl: Option<i64>,
    refresh_token_ttl: Option<i64>,
    refresh_idle_ttl: Option<i64>,
    deny: bool,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<RuleRow> for AccessRule {
    type Error = StoreError;
    fn try_from(row: RuleRow) -> Result<Self, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt(format!("access rule {}: {what}", row.id));
        let grant_types = split_list(&row.grant_types)
            .iter()
            .map(|g| g.parse())
            .collect::<Result<Vec<GrantType>, _>>()
            .map_err(corrupt)?;
        let scopes = if row.any_scope {
            None
        } else {
            Some(ScopeSet::parse(&row.scopes).map_err(|e| corrupt(e.to_string()))?)
        };
        Ok(AccessRule {
            people: if row.everyone {
                People::Everyone
            } else {
                People::Some {
                    groups: split_list(&row.group_ids),
                    users: split_list(&row.user_ids),
                }
            },
            grant_types,
            scopes,
            id: row.id,
            policy_id: row.policy_id,
            name: row.name,
            priority: row.priority,
            access_token_ttl: row.access_token_ttl,
            refresh_token_ttl: row.refresh_token_ttl,
            refresh_idle_ttl: row.refresh_idle_ttl,
            deny: row.deny,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const POLICY_COLUMNS: &str =
    "id, server_id, name, description, priority, all_clients, client_ids, created_at, updated_at";
const RULE_COLUMNS: &str = "r.id, r.policy_id, r.name, r.priority, r.grant_types, r.everyone, \
    r.group_ids, r.user_ids, r.any_scope, r.scopes, r.access_token_ttl, r.refresh_token_ttl, \
    r.refresh_idle_ttl, r.deny, r.created_at, r.updated_at";

/// The columns of a policy as bound: (all_clients, client_ids).
fn clients_columns(clients: &PolicyClients) -> (bool, String) {
    match clients {
        PolicyClients::All => (true, String::new()),
        PolicyClients::Only(ids) => (false, ids.join(" ")),
    }
}

/// The columns of a rule as bound: (grant_types, everyone, group_ids, user_ids, any_scope, scopes).
fn rule_columns(rule: &AccessRule) -> (String, bool, String, String, bool, String) {
    let grant_types = rule
        .grant_types
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let (everyone, groups, users) = match &rule.people {
        People::Everyone => (true, String::new(), String::new()),
        People::Some { groups, users } => (false, groups.join(" "), users.join(" ")),
    };
    let (any_scope, scopes) = match &rule.scopes {
        None => (true, String::new()),
        Some(s) => (false, s.to_string()),
    };
    (grant_types, everyone, groups, users, any_scope, scopes)
}

fn policy_of(row: PolicyRow, rules: Vec<AccessRule>) -> AccessPolicy {
    AccessPolicy {
        clients: if row.all_clients {
            PolicyClients::All
        } else {
            PolicyClients::Only(split_list(&row.client_ids))
        },
        rules,
        id: row.id,
        server_id: row.server_id,
        name: row.name,
        description: row.description,
        priority: row.priority,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

impl Store {
    /// A server's policies with their rules, in the order they are evaluated.
    pub async fn access_policies(&self, server_id: &str) -> Result<Vec<AccessPolicy>, StoreError> {
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM access_policies WHERE server_id = $1 \
             ORDER BY priority, name"
        );
        let rows = on_pool!(self, pool => sqlx::query_as::<_, PolicyRow>(&sql)
            .bind(server_id)
            .fetch_all(pool)
            .await?);
        let sql = format!(
            "SELECT {RULE_COLUMNS} FROM access_rules r JOIN access_policies p ON p.id = r.policy_id \
             WHERE p.server_id = $1 ORDER BY r.priority, r.name"
        );
        let rule_rows = on_pool!(self, pool => sqlx::query_as::<_, RuleRow>(&sql)
            .bind(server_id)
            .fetch_all(pool)
            .await?);
        let mut rules = rule_rows
            .into_iter()
            .map(AccessRule::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let (mine, rest): (Vec<_>, Vec<_>) =
                    rules.drain(..).partition(|r| r.policy_id == row.id);
                rules = rest;
                policy_of(row, mine)
            })
            .collect())
    }

    /// One policy of a server, by id, with its rules.
    pub async fn access_policy(
        &self,
        server_id: &str,
        id: &str,
    ) -> Result<Option<AccessPolicy>, StoreError> {
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM access_policies WHERE server_id = $1 AND id = $2"
        );
        let row = on_pool!(self, pool => sqlx::query_as::<_, PolicyRow>(&sql)
            .bind(server_id)
            .bind(id)
            .fetch_optional(pool)
            .await?);
        match row {
            Some(row) => {
                let rules = self.list_access_rules(&row.id, None, None).await?;
                Ok(Some(policy_of(row, rules)))
            }
            None => Ok(None),
        }
    }

    /// A page of a server's policies, with their rules, in the order they are evaluated
    /// (priority, then name: both unique together per server): keyset paging after the
    /// (priority, name) of the previous page's last policy.
    pub async fn list_access_policies(
        &self,
        server_id: &str,
        after: Option<(i64, &str)>,
        limit: Option<u32>,
    ) -> Result<Vec<AccessPolicy>, StoreError> {
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM access_policies WHERE server_id = $1 \
             AND ($2 IS NULL OR priority > $2 OR (priority = $2 AND name > $3)) \
             ORDER BY priority, name LIMIT $4"
        );
        let page = super::Page { after: None, limit };
        let rows = on_pool!(self, pool => sqlx::query_as::<_, PolicyRow>(&sql)
            .bind(server_id)
            .bind(after.map(|(priority, _)| priority))
            .bind(after.map(|(_, name)| name))
            .bind(page.sql_limit())
            .fetch_all(pool)
            .await?);
        let mut policies = Vec::with_capacity(rows.len());
        for row in rows {
            let rules = self.list_access_rules(&row.id, None, None).await?;
            policies.push(policy_of(row, rules));
        }
        Ok(policies)
    }

    /// A page of a policy's rules in the order they are evaluated (priority, then name):
    /// keyset paging after the (priority, name) of the previous page's last rule.
    pub async fn list_access_rules(
        &self,
        policy_id: &str,
        after: Option<(i64, &str)>,
        limit: Option<u32>,
    ) -> Result<Vec<AccessRule>, StoreError> {
        let sql = format!(
            "SELECT {RULE_COLUMNS} FROM access_rules r WHERE r.policy_id = $1 \
             AND ($2 IS NULL OR r.priority > $2 OR (r.priority = $2 AND r.name > $3)) \
             ORDER BY r.priority, r.name LIMIT $4"
        );
        let page = super::Page { after: None, limit };
        let rows = on_pool!(self, pool => sqlx::query_as::<_, RuleRow>(&sql)
            .bind(policy_id)
            .bind(after.map(|(priority, _)| priority))
            .bind(after.map(|(_, name)| name))
            .bind(page.sql_limit())
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(AccessRule::try_from).collect()
    }

    /// Store a new policy (without rules); `AlreadyExists` when the server has one so named.
    pub async fn insert_access_policy(&self, policy: &AccessPolicy) -> Result<(), StoreError> {
        let (all_clients, client_ids) = clients_columns(&policy.clients);
        let result = on_pool!(self, pool => sqlx::query(
            "INSERT INTO access_policies (id, server_id, name, description, priority, \
             all_clients, client_ids, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&policy.id)
        .bind(&policy.server_id)
        .bind(&policy.name)
        .bind(&policy.description)
        .bind(policy.priority)
        .bind(all_clients)
        .bind(&client_ids)
        .bind(policy.created_at)
        .bind(policy.updated_at)
        .execute(pool)
        .await
        .map(|_| ()));
        or_already_exists(result, || {
            format!("policy `{}` of server `{}`", policy.name, policy.server_id)
        })?;
        self.cache.invalidate_server(&policy.server_id);
        Ok(())
    }

    /// Write back a policy's name, description, priority and clients.
    pub async fn update_access_policy(&self, policy: &AccessPolicy) -> Result<bool, StoreError> {
        let (all_clients, client_ids) = clients_columns(&policy.clients);
        let result = on_pool!(self, pool => sqlx::query(
            "UPDATE access_policies SET name = $1, description = $2, priority = $3, \
             all_clients = $4, client_ids = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(&policy.name)
        .bind(&policy.description)
        .bind(policy.priority)
        .bind(all_clients)
        .bind(&client_ids)
        .bind(policy.updated_at)
        .bind(&policy.id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()));
        let done = or_already_exists(result, || {
            format!("policy `{}` of server `{}`", policy.name, policy.server_id)
        })?;
        self.cache.invalidate_server(&policy.server_id);
        Ok(done == 1)
    }

    /// Delete a policy with its rules.
    pub async fn delete_access_policy(&self, id: &str) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query("DELETE FROM access_policies WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        self.cache.invalidate();
        Ok(done == 1)
    }

    /// Store a new rule; `AlreadyExists` when its policy has one so named.
    pub async fn insert_access_rule(&self, rule: &AccessRule) -> Result<(), StoreError> {
        let (grant_types, everyone, groups, users, any_scope, scopes) = rule_columns(rule);
        let result = on_pool!(self, pool => sqlx::query(
            "INSERT INTO access_rules (id, policy_id, name, priority, grant_types, everyone, \
             group_ids, user_ids, any_scope, scopes, access_token_ttl, refresh_token_ttl, \
             refresh_idle_ttl, deny, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&rule.id)
        .bind(&rule.policy_id)
        .bind(&rule.name)
        .bind(rule.priority)
        .bind(&grant_types)
        .bind(everyone)
        .bind(&groups)
        .bind(&users)
        .bind(any_scope)
        .bind(&scopes)
        .bind(rule.access_token_ttl)
        .bind(rule.refresh_token_ttl)
        .bind(rule.refresh_idle_ttl)
        .bind(rule.deny)
        .bind(rule.created_at)
        .bind(rule.updated_at)
        .execute(pool)
        .await
        .map(|_| ()));
        or_already_exists(result, || format!("rule `{}`", rule.name))?;
        self.cache.invalidate();
        Ok(())
    }

    /// Write back everything of a rule but its id and policy.
    pub async fn update_access_rule(&self, rule: &AccessRule) -> Result<bool, StoreError> {
        let (grant_types, everyone, groups, users, any_scope, scopes) = rule_columns(rule);
        let result = on_pool!(self, pool => sqlx::query(
            "UPDATE access_rules SET name = $1, priority = $2, grant_types = $3, everyone = $4, \
             group_ids = $5, user_ids = $6, any_scope = $7, scopes = $8, access_token_ttl = $9, \
             refresh_token_ttl = $10, refresh_idle_ttl = $11, deny = $12, updated_at = $13 \
             WHERE id = $14",
        )
        .bind(&rule.name)
        .bind(rule.priority)
        .bind(&grant_types)
        .bind(everyone)
        .bind(&groups)
        .bind(&users)
        .bind(any_scope)
        .bind(&scopes)
        .bind(rule.access_token_ttl)
        .bind(rule.refresh_token_ttl)
        .bind(rule.refresh_idle_ttl)
        .bind(rule.deny)
        .bind(rule.updated_at)
        .bind(&rule.id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()));
        let done = or_already_exists(result, || format!("rule `{}`", rule.name))?;
        self.cache.invalidate();
        Ok(done == 1)
    }

    pub async fn delete_access_rule(&self, id: &str) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query("DELETE FROM access_rules WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected());
        self.cache.invalidate();
        Ok(done == 1)
    }

    /// The rules, on any server, that name a group: (server, policy, rule).
    pub async fn rules_naming_group(
        &self,
        group_id: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows: Vec<(String, String, String, String)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT p.server_id, p.name, r.name, r.group_ids FROM access_rules r \
             JOIN access_policies p ON p.id = r.policy_id WHERE r.group_ids <> '' \
             ORDER BY p.server_id, p.name, r.name",
        )
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .filter(|(_, _, _, ids)| split_list(ids).iter().any(|id| id == group_id))
            .map(|(server, policy, rule, _)| (server, policy, rule))
            .collect())
    }
}
