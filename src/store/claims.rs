//! Custom claims of a server: a user attribute or a static value, released into the tokens
//! named by `token_types` when one of `scopes` is granted.

use serde_json::{json, Value};

use super::{on_pool, or_already_exists, split_list, Store, StoreError};
use crate::protocol::ScopeSet;

/// Where a custom claim may be released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClaimTarget {
    AccessToken,
    IdToken,
    Userinfo,
}

impl ClaimTarget {
    pub const ALL: [ClaimTarget; 3] = [Self::AccessToken, Self::IdToken, Self::Userinfo];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::IdToken => "id_token",
            Self::Userinfo => "userinfo",
        }
    }
}

impl std::str::FromStr for ClaimTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("unknown token type `{s}` (use access_token, id_token or userinfo)")
            })
    }
}

/// Where a custom claim's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimSource {
    /// A key of the user's claims, or `username`; omitted when the user has no such value.
    Attribute(String),
    /// The same JSON value for everyone, released even without a user.
    Static(Value),
    /// The names of the user's groups, filtered; left out beyond `max`.
    Groups(GroupsClaim),
}

/// A groups claim: which of the user's group names it releases, and at most how many.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupsClaim {
    pub filter: GroupFilter,
    /// More groups than this (after filtering) and the claim is left out, with a warning in
    /// the log: a token that lists only some groups would mislead whoever reads it.
    pub max: usize,
}

/// Which group names a groups claim releases.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupFilter {
    All,
    Prefix(String),
    /// The whole name matches.
    Regex(GroupPattern),
    Equals(Vec<String>),
}

impl GroupFilter {
    pub fn keeps(&self, name: &str) -> bool {
        match self {
            GroupFilter::All => true,
            GroupFilter::Prefix(p) => name.starts_with(p.as_str()),
            GroupFilter::Regex(r) => r.0.is_match(name),
            GroupFilter::Equals(names) => names.iter().any(|n| n == name),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            GroupFilter::All => json!({ "filter": "all" }),
            GroupFilter::Prefix(p) => json!({ "filter": "prefix", "value": p }),
            GroupFilter::Regex(r) => json!({ "filter": "regex", "value": r.source() }),
            GroupFilter::Equals(names) => json!({ "filter": "equals", "value": names }),
        }
    }
}

/// A `--filter-regex`, compiled once, anchored so it must match the whole group name.
#[derive(Debug, Clone)]
pub struct GroupPattern(regex::Regex, String);

impl GroupPattern {
    pub fn new(source: &str) -> Result<Self, String> {
        regex::Regex::new(&format!("^(?:{source})$"))
            .map(|r| Self(r, source.to_string()))
            .map_err(|e| {
                format!("--filter-regex `{source}` is not a valid regular expression: {e}")
            })
    }

    pub fn source(&self) -> &str {
        &self.1
    }
}

impl PartialEq for GroupPattern {
    fn eq(&self, other: &Self) -> bool {
        self.1 == other.1
    }
}

impl GroupsClaim {
    fn to_json(&self) -> Value {
        let mut out = self.filter.to_json();
        if let Some(map) = out.as_object_mut() {
            map.insert("max".into(), json!(self.max));
        }
        out
    }

    fn parse(stored: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(stored).map_err(|e| e.to_string())?;
        let max = v["max"].as_u64().ok_or("no max")? as usize;
        let text = || v["value"].as_str().map(str::to_string).ok_or("no value");
        let filter = match v["filter"].as_str() {
            Some("all") => GroupFilter::All,
            Some("prefix") => GroupFilter::Prefix(text()?),
            Some("regex") => GroupFilter::Regex(GroupPattern::new(&text()?)?),
            Some("equals") => GroupFilter::Equals(
                v["value"]
                    .as_array()
                    .ok_or("no names")?
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect(),
            ),
            _ => return Err("unknown filter".into()),
        };
        Ok(Self { filter, max })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomClaim {
    pub server_id: String,
    pub name: String,
    pub source: ClaimSource,
    /// Granting any one of these releases the claim.
    pub scopes: ScopeSet,
    pub token_types: Vec<ClaimTarget>,
    pub created_at: i64,
}

impl CustomClaim {
    /// The JSON shown by `claim create|list`.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "server": self.server_id,
            "name": self.name,
            "scopes": self.scopes.iter().collect::<Vec<_>>(),
            "token_types": self.token_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            "created_at": self.created_at,
        });
        if let Some(map) = out.as_object_mut() {
            match &self.source {
                ClaimSource::Attribute(attribute) => {
                    map.insert("attribute".into(), json!(attribute));
                }
                ClaimSource::Static(value) => {
                    map.insert("value".into(), value.clone());
                }
                ClaimSource::Groups(groups) => {
                    map.insert("groups".into(), groups.to_json());
                }
            }
        }
        out
    }
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    server_id: String,
    name: String,
    source: String,
    value: String,
    scopes: String,
    token_types: String,
    created_at: i64,
}

impl TryFrom<ClaimRow> for CustomClaim {
    type Error = StoreError;
    fn try_from(row: ClaimRow) -> Result<Self, StoreError> {
        let corrupt = |what: String| {
            StoreError::Corrupt(format!(
                "claim {} of server {}: {what}",
                row.name, row.server_id
            ))
        };
        let source = match row.source.as_str() {
            "attribute" => ClaimSource::Attribute(row.value.clone()),
            "static" => ClaimSource::Static(
                serde_json::from_str(&row.value).map_err(|e| corrupt(e.to_string()))?,
            ),
            "groups" => ClaimSource::Groups(GroupsClaim::parse(&row.value).map_err(corrupt)?),
            other => return Err(corrupt(format!("unknown source `{other}`"))),
        };
        let token_types = split_list(&row.token_types)
            .iter()
            .map(|t| t.parse())
            .collect::<Result<Vec<ClaimTarget>, _>>()
            .map_err(corrupt)?;
        Ok(CustomClaim {
            scopes: ScopeSet::parse(&row.scopes).map_err(|e| corrupt(e.to_string()))?,
            source,
            token_types,
            server_id: row.server_id,
            name: row.name,
            created_at: row.created_at,
        })
    }
}

const COLUMNS: &str = "server_id, name, source, value, scopes, token_types, created_at";

/// The columns of a claim as bound: (source, value, token_types).
fn claim_columns(claim: &CustomClaim) -> (&'static str, String, String) {
    let (source, value) = match &claim.source {
        ClaimSource::Attribute(attribute) => ("attribute", attribute.clone()),
        ClaimSource::Static(value) => ("static", value.to_string()),
        ClaimSource::Groups(groups) => ("groups", groups.to_json().to_string()),
    };
    let token_types = claim
        .token_types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    (source, value, token_types)
}

impl Store {
    pub async fn insert_claim(&self, claim: &CustomClaim) -> Result<CustomClaim, StoreError> {
        let (source, value, token_types) = claim_columns(claim);
        let result = on_pool!(self, pool => sqlx::query(
            "INSERT INTO claims (server_id, name, source, value, scopes, token_types, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&claim.server_id)
        .bind(&claim.name)
        .bind(source)
        .bind(&value)
        .bind(claim.scopes.to_string())
        .bind(&token_types)
        .bind(claim.created_at)
        .execute(pool)
        .await
        .map(|_| ()));
        or_already_exists(result, || {
            format!("claim `{}` of server `{}`", claim.name, claim.server_id)
        })?;
        self.cache.invalidate_server(&claim.server_id);
        Ok(claim.clone())
    }

    /// Write back a claim's source, scopes and token types (its name and server stay); false
    /// when there is no such claim.
    pub async fn update_claim(&self, claim: &CustomClaim) -> Result<bool, StoreError> {
        let (source, value, token_types) = claim_columns(claim);
        let done = on_pool!(self, pool => sqlx::query(
            "UPDATE claims SET source = $1, value = $2, scopes = $3, token_types = $4 \
             WHERE server_id = $5 AND name = $6",
        )
        .bind(source)
        .bind(&value)
        .bind(claim.scopes.to_string())
        .bind(&token_types)
        .bind(&claim.server_id)
        .bind(&claim.name)
        .execute(pool)
        .await?
        .rows_affected());
        self.cache.invalidate_server(&claim.server_id);
        Ok(done == 1)
    }

    pub async fn claim(
        &self,
        server_id: &str,
        name: &str,
    ) -> Result<Option<CustomClaim>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM claims WHERE server_id = $1 AND name = $2");
        let row = on_pool!(self, pool => sqlx::query_as::<_, ClaimRow>(&sql)
            .bind(server_id)
            .bind(name)
            .fetch_optional(pool)
            .await?);
        row.map(CustomClaim::try_from).transpose()
    }

    /// A page of a server's custom claims by name (`Page::after` is a claim name): keyset
    /// paging on the primary key (server_id, name).
    pub async fn list_claims(
        &self,
        server_id: &str,
        page: super::Page<'_>,
    ) -> Result<Vec<CustomClaim>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM claims WHERE server_id = $1 AND ($2 IS NULL OR name > $2) \
             ORDER BY name LIMIT $3"
        );
        let rows = on_pool!(self, pool => sqlx::query_as::<_, ClaimRow>(&sql)
            .bind(server_id)
            .bind(page.after)
            .bind(page.sql_limit())
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(CustomClaim::try_from).collect()
    }

    /// A server's custom claims, by name.
    pub async fn claims(&self, server_id: &str) -> Result<Vec<CustomClaim>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM claims WHERE server_id = $1 ORDER BY name");
        let rows = on_pool!(self, pool => sqlx::query_as::<_, ClaimRow>(&sql)
            .bind(server_id)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(CustomClaim::try_from).collect()
    }

    pub async fn delete_claim(&self, server_id: &str, name: &str) -> Result<bool, StoreError> {
        let done = on_pool!(self, pool => sqlx::query(
            "DELETE FROM claims WHERE server_id = $1 AND name = $2",
        )
        .bind(server_id)
        .bind(name)
        .execute(pool)
        .await?
        .rows_affected());
        self.cache.invalidate_server(server_id);
        Ok(done == 1)
    }
}
