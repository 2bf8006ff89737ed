//! The one place tokens are issued, for every grant of the token endpoint and for the implicit
//! flow: a grant decides (whom for, which scope, under which grant) and hands the decision
//! here; this mints the access token (RFC 9068) and the ID token (OIDC Core §2), stores a new
//! refresh token, commits the audit event and counts the metric. A new grant adds a decision,
//! never another way to mint.

use crate::audit::Event;
use crate::auth_server::AuthServer;
use crate::clock::UnixTime;
use crate::error::Error;
use crate::metrics::TokenKind;
use crate::policy::{self, ClaimTarget, LifetimeOverride, Lifetimes};
use crate::protocol::scope::OFFLINE_ACCESS;
use crate::protocol::{GrantType, ScopeSet};
use crate::security::{hash_secret, random_secret, Secret};
use crate::state::AppState;
use crate::store::{Client, RefreshToken, SuccessorKey, User};
use crate::tokens::access_token::{self, AccessTokenRequest};
use crate::tokens::id_token::{self, IdTokenRequest};

/// What a grant decided.
pub struct Decision {
    /// The grant the tokens are issued under, as audited and counted.
    pub grant_type: GrantType,
    pub subject: Subject,
    pub scope: ScopeSet,
    /// Which tokens leave: every grant of the token endpoint wants an access token (and an ID
    /// token with `openid`); the implicit flow's `response_type` chooses.
    pub tokens: Wanted,
    pub refresh: Refresh,
    /// The lifetimes the access rule that allowed the grant sets (`policy::access`); they win
    /// over the server's and client's.
    pub lifetimes: LifetimeOverride,
}

/// Whom the tokens are about.
pub enum Subject {
    /// The client on its own behalf (client credentials): no user, no grant, no ID token.
    Client,
    /// A user, under a grant (withdrawn with it).
    User(Box<UserGrant>),
    /// A user's token exchanged for another audience (RFC 8693), under the subject token's
    /// grant: revoking that grant withdraws this token too.
    Exchanged(Box<Exchanged>),
}

pub struct Exchanged {
    pub grant: UserGrant,
    /// The new token's `aud`.
    pub audience: String,
    /// RFC 8693 §4.1: the party acting for the user, earlier actors nested inside.
    pub act: Option<serde_json::Value>,
}

pub struct UserGrant {
    pub user: User,
    pub grant_id: String,
    /// When the user signed in (OIDC Core §2 `auth_time`).
    pub auth_time: UnixTime,
    pub nonce: Option<String>,
    /// The session the tokens were issued in (`sid`).
    pub sid: Option<String>,
    /// The factors the user signed in with (RFC 8176 `amr`), when known.
    pub amr: Option<crate::mfa::Amr>,
    /// The `acr` of the ID token, when requested or when an MFA policy applied.
    pub acr: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub access_token: bool,
    /// An ID token, when the scope also has `openid`.
    pub id_token: bool,
}

impl Wanted {
    /// The token endpoint's answer: an access token, and an ID token with `openid`.
    pub const TOKEN_ENDPOINT: Wanted = Wanted {
        access_token: true,
        id_token: true,
    };
}

/// The refresh token that goes with the response.
pub enum Refresh {
    None,
    /// A new family, when the client and the server's policy allow one (stored here).
    NewFamily,
    /// The successor the refresh grant already stored, atomically with retiring its
    /// predecessor (`store::refresh_tokens`).
    Rotated(Secret),
}

/// The tokens, ready for the response (RFC 6749 §5.1, §4.2.2).
pub struct Issued {
    pub access_token: Option<String>,
    pub token_type: &'static str,
    /// The access token's lifetime.
    pub expires_in: i64,
    pub scope: ScopeSet,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
}

/// One request's issuer: the server and client the tokens are for, read once.
pub struct Issuer<'a> {
    pub state: &'a AppState,
    pub server: &'a AuthServer,
    pub client: &'a Client,
    pub now: UnixTime,
    /// RFC 9449: the DPoP key (thumbprint) the access token, and a public client's new refresh
    /// token, are bound to.
    pub dpop_jkt: Option<&'a str>,
}

impl Issuer<'_> {
    pub async fn issue(&self, decision: Decision) -> Result<Issued, Error> {
        let Decision {
            grant_type,
            subject,
            scope,
            tokens,
            refresh,
            lifetimes,
        } = decision;
        let lifetimes = self.lifetimes().with(lifetimes);
        let (user_grant, exchanged) = match &subject {
            Subject::User(grant) => (Some(grant.as_ref()), None),
            Subject::Exchanged(x) => (Some(&x.grant), Some(x.as_ref())),
            Subject::Client => (None, None),
        };
        let (access_token, id_token) = self
            .mint(user_grant, exchanged, &scope, tokens, &lifetimes)
            .await?;
        let refresh_token = match (refresh, user_grant) {
            (Refresh::Rotated(value), _) => Some(value.expose().to_string()),
            (Refresh::NewFamily, Some(grant)) => {
                self.new_refresh_token(grant, &scope, &lifetimes).await?
            }
            (Refresh::NewFamily, None) | (Refresh::None, _) => None,
        };
        let jti = access_token.as_ref().map(|(_, jti)| jti.as_str());
        let user_id = user_grant.map(|g| g.user.id.as_str());
        // One line per token at debug only: the audit log records every issuance (with its jti).
        tracing::debug!(client_id = %self.client.id, server = %self.server.id(), user = user_id, jti, grant = %grant_type, "tokens issued");
        // Committed before the tokens leave: a token a client holds is always in the audit log.
        self.state
            .audit
            .commit(Event::token_issued(
                self.now,
                self.server.id(),
                &self.client.id,
                grant_type.as_str(),
                user_id,
                jti,
                &scope.to_string(),
                refresh_token.is_some(),
            ))
            .await?;
        let metrics = &self.state.metrics;
        for (present, kind) in [
            (access_token.is_some(), TokenKind::Access),
            (id_token.is_some(), TokenKind::Id),
            (refresh_token.is_some(), TokenKind::Refresh),
        ] {
            if present {
                metrics.token_issued(grant_type.as_str(), kind);
            }
        }
        Ok(Issued {
            access_token: access_token.map(|(token, _)| token),
            // RFC 9449 §5: a bound token is of type DPoP.
            token_type: if self.dpop_jkt.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            expires_in: lifetimes.access_token,
            scope,
            refresh_token,
            id_token,
        })
    }

    /// Token lifetimes under this server's and client's policy.
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes::of(&self.state.config.tokens, &self.server.server, self.client)
    }

    /// The access token (with its `jti`) and the ID token the decision wants, signed with the
    /// server's current key.
    async fn mint(
        &self,
        user_grant: Option<&UserGrant>,
        exchanged: Option<&Exchanged>,
        scope: &ScopeSet,
        wanted: Wanted,
        lifetimes: &Lifetimes,
    ) -> Result<(Option<(String, String)>, Option<String>), Error> {
        let keys = self
            .state
            .keys
            .key_set(&self.server.server, self.now)
            .await?;
        let key = keys
            .signing_key(self.now)
            .ok_or_else(|| Error::internal("no signing key"))?;
        // One read of the server's claim definitions serves both tokens.
        let defined = self.state.store.cached_claims(self.server.id()).await?;
        let user = user_grant.map(|g| &g.user);
        let groups = policy::group_names(&self.state.store, &defined, user).await?;
        let custom = |target| policy::release(&defined, user, &groups, scope, target);
        let access_token = if wanted.access_token {
            let issued = access_token::mint(
                key,
                AccessTokenRequest {
                    issuer: &self.server.issuer,
                    audience: exchanged.map_or(&self.server.server.audience, |x| &x.audience),
                    // RFC 9068 §2.2: the resource owner, or the client acting for itself.
                    subject: user.map_or(&self.client.id, |u| &u.id),
                    client_id: &self.client.id,
                    scope,
                    ttl: lifetimes.access_token,
                    auth_time: user_grant.map(|g| g.auth_time),
                    grant_id: user_grant.map(|g| g.grant_id.as_str()),
                    extra_claims: custom(ClaimTarget::AccessToken),
                    act: exchanged.and_then(|x| x.act.clone()),
                    dpop_jkt: self.dpop_jkt,
                },
                self.now,
            )
            .map_err(Error::internal)?;
            Some((issued.token, issued.claims.jti))
        } else {
            None
        };
        let id_token = match user_grant {
            Some(grant) if wanted.id_token && scope.contains("openid") => Some(
                id_token::mint(
                    key,
                    IdTokenRequest {
                        issuer: &self.server.issuer,
                        client_id: &self.client.id,
                        user: &grant.user,
                        auth_time: grant.auth_time,
                        nonce: grant.nonce.as_deref(),
                        sid: grant.sid.as_deref(),
                        amr: grant.amr.as_ref().map(|a| a.claim()),
                        acr: grant.acr.as_deref(),
                        access_token: access_token.as_ref().map(|(t, _)| t.as_str()),
                        code: None,
                        scope,
                        // OIDC Core §5.4: scope claims go in the ID token only without an
                        // access token.
                        include_scope_claims: access_token.is_none(),
                        ttl: lifetimes.id_token,
                        extra_claims: custom(ClaimTarget::IdToken),
                    },
                    self.now,
                )
                .map_err(Error::internal)?,
            ),
            _ => None,
        };
        Ok((access_token, id_token))
    }

    /// A refresh token for a new family, when the client and the server's policy allow one.
    async fn new_refresh_token(
        &self,
        grant: &UserGrant,
        scope: &ScopeSet,
        lifetimes: &Lifetimes,
    ) -> Result<Option<String>, Error> {
        if !self.client.allows(GrantType::RefreshToken) {
            return Ok(None);
        }
        let needs_offline = self.server.server.refresh_requires_offline_access
            || self.state.config.tokens.refresh_requires_offline_access;
        if needs_offline && !scope.contains(OFFLINE_ACCESS) {
            return Ok(None);
        }
        let value = random_secret();
        let record = RefreshToken {
            grant_id: grant.grant_id.clone(),
            server_id: self.server.id().to_string(),
            client_id: self.client.id.clone(),
            user_id: grant.user.id.clone(),
            scope: scope.to_string(),
            auth_time: grant.auth_time,
            session_sid: grant.sid.clone(),
            created_at: self.now,
            expires_at: self.now + lifetimes.refresh_token,
            idle_expires_at: self.now + lifetimes.refresh_idle,
            rotated_at: None,
            revoked_at: None,
            successor_key: Some(SuccessorKey::generate()),
            // RFC 9449 §5: a public client's refresh tokens are bound to its DPoP key (a
            // confidential client's are bound to it by its authentication).
            dpop_jkt: self
                .dpop_jkt
                .filter(|_| self.client.is_public())
                .map(str::to_string),
        };
        self.state
            .store
            .insert_refresh_token(&hash_secret(value.expose()), &record)
            .await?;
        Ok(Some(value.expose().to_string()))
    }
}
