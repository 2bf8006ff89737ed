//! A high-assurance client's keys and requirements (README "private_key_jwt", "DPoP", "Pushed
//! authorization requests"), and moving a confidential client between secret and key
//! authentication. Shared by the CLI, the management API and the tests.

use jsonwebtoken::jwk::JwkSet;

use super::clients::RegistrationError;
use super::Actor;
use crate::audit::{self, Event, Kind};
use crate::clock::UnixTime;
use crate::mfa::ClientMfa;
use crate::protocol::jose::{public_jwk, ClientAlg};
use crate::protocol::ClientAuthMethod;
use crate::security::{hash_secret, random_secret, Secret};
use crate::store::{Client, ClientSecurity, Store};

/// What an operator changes; `None` leaves a setting as it is. Registering `jwks` drops a
/// `jwks_uri` and the other way round; an empty value removes it.
#[derive(Debug, Clone, Default)]
pub struct SecurityChanges {
    /// A JWK Set, JSON (from `--jwks` or `--jwks-file`).
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub require_dpop: Option<bool>,
    pub require_par: Option<bool>,
    pub require_signed_request_object: Option<bool>,
}

fn invalid(message: impl Into<String>) -> RegistrationError {
    RegistrationError::Invalid(message.into())
}

/// The most keys a registered set may hold.
const MAX_KEYS: usize = 20;

/// The rules a change must follow on its own, checked before anything is stored.
pub fn check_security_changes(changes: &SecurityChanges) -> Result<(), RegistrationError> {
    let given = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
    if given(&changes.jwks) && given(&changes.jwks_uri) {
        return Err(invalid(
            "register --jwks (or --jwks-file) or --jwks-uri, not both",
        ));
    }
    if let Some(jwks) = changes.jwks.as_deref().filter(|j| !j.trim().is_empty()) {
        check_jwks(jwks)?;
    }
    if let Some(uri) = changes.jwks_uri.as_deref().filter(|u| !u.trim().is_empty()) {
        check_jwks_uri(uri)?;
    }
    Ok(())
}

/// RFC 7517 §5: a JWK Set of public signing keys, each fitting an algorithm we accept.
fn check_jwks(jwks: &str) -> Result<(), RegistrationError> {
    let value: serde_json::Value =
        serde_json::from_str(jwks).map_err(|e| invalid(format!("--jwks is not JSON: {e}")))?;
    let keys = value
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| invalid("--jwks must be a JWK Set: {\"keys\": [...]}"))?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(invalid(format!("--jwks must hold 1 to {MAX_KEYS} keys")));
    }
    for key in keys {
        let jwk = public_jwk(key).map_err(|e| invalid(format!("--jwks: {e}")))?;
        if !ClientAlg::ALL.iter().any(|alg| alg.fits(&jwk)) {
            return Err(invalid(
                "--jwks: every key must be an RSA, P-256 or Ed25519 signing key",
            ));
        }
    }
    serde_json::from_value::<JwkSet>(value)
        .map(|_| ())
        .map_err(|e| invalid(format!("--jwks: {e}")))
}

/// An https URL (plain http only to a loopback host; the server fetches those in development
/// mode only).
fn check_jwks_uri(uri: &str) -> Result<(), RegistrationError> {
    let url = url::Url::parse(uri).map_err(|e| invalid(format!("--jwks-uri `{uri}`: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(invalid(format!(
            "--jwks-uri `{uri}` must be https (plain http only for loopback hosts)"
        ))),
    }
}

/// What `changes` and a change of authentication method make of `client`'s registration,
/// checked as a whole before anything is stored: `private_key_jwt` and signed request objects
/// need keys; a public client can use neither.
pub fn plan_client_security(
    client: &Client,
    auth_method: Option<ClientAuthMethod>,
    changes: SecurityChanges,
) -> Result<(ClientSecurity, ClientAuthMethod), RegistrationError> {
    check_security_changes(&changes)?;
    let mut security: ClientSecurity = client.security.clone();
    let value = |v: String| (!v.trim().is_empty()).then_some(v);
    if let Some(jwks) = changes.jwks {
        security.jwks = value(jwks);
        if security.jwks.is_some() {
            security.jwks_uri = None;
        }
    }
    if let Some(uri) = changes.jwks_uri {
        security.jwks_uri = value(uri);
        if security.jwks_uri.is_some() {
            security.jwks = None;
        }
    }
    if let Some(required) = changes.require_dpop {
        security.require_dpop = required;
    }
    if let Some(required) = changes.require_par {
        security.require_par = required;
    }
    if let Some(required) = changes.require_signed_request_object {
        security.require_signed_request_object = required;
    }
    let method = auth_method.unwrap_or(client.auth_method);
    if client.is_public() && method != ClientAuthMethod::None {
        return Err(invalid(format!(
            "client `{}` is public: it cannot use {method}",
            client.id
        )));
    }
    if !client.is_public() && method == ClientAuthMethod::None {
        return Err(invalid(
            "auth method `none` is for public clients (--public)",
        ));
    }
    if method == ClientAuthMethod::PrivateKeyJwt && !security.has_keys() {
        return Err(invalid(
            "private_key_jwt needs the client's keys: --jwks, --jwks-file or --jwks-uri",
        ));
    }
    if security.require_signed_request_object && !security.has_keys() {
        return Err(invalid(
            "--require-signed-request-object needs the client's keys: --jwks, --jwks-file or --jwks-uri",
        ));
    }
    Ok((security, method))
}

/// Apply `changes`, and a change of authentication method, to `client` (as planned by
/// `plan_client_security`). Moving to a secret method gives the client a new secret, returned
/// once; moving to `private_key_jwt` drops its secret. Audited as `client_updated` naming the
/// settings changed (never a key or secret), when something changed.
pub async fn change_client_security(
    store: &Store,
    client: &Client,
    auth_method: Option<ClientAuthMethod>,
    changes: SecurityChanges,
    actor: &Actor,
    now: UnixTime,
) -> Result<(Client, Option<Secret>), RegistrationError> {
    let (security, method) = plan_client_security(client, auth_method, changes)?;
    let mut secret = None;
    let mut changed: Vec<&str> = Vec::new();
    if method != client.auth_method {
        if method != ClientAuthMethod::PrivateKeyJwt
            && client.auth_method == ClientAuthMethod::PrivateKeyJwt
        {
            secret = Some(random_secret());
        }
        let hash = secret.as_ref().map(|s| hash_secret(s.expose()));
        store
            .set_client_auth_method(&client.id, method, hash.as_deref(), now)
            .await?;
        changed.push("token_endpoint_auth_method");
    }
    if security != client.security {
        store
            .set_client_security(&client.id, &security, now)
            .await?;
        let old = &client.security;
        for (name, differs) in [
            ("jwks", security.jwks != old.jwks),
            ("jwks_uri", security.jwks_uri != old.jwks_uri),
            ("require_dpop", security.require_dpop != old.require_dpop),
            ("require_par", security.require_par != old.require_par),
            (
                "require_signed_request_object",
                security.require_signed_request_object != old.require_signed_request_object,
            ),
        ] {
            if differs {
                changed.push(name);
            }
        }
    }
    if !changed.is_empty() {
        let event = Event::new(Kind::ClientUpdated, now)
            .server(&client.server_id)
            .actor(actor.label())
            .subject(client.id.as_str())
            .detail("changed", changed.join(" "));
        audit::write(store, event).await;
    }
    let client = store
        .client(&client.id)
        .await?
        .ok_or_else(|| invalid(format!("no client `{}`", client.id)))?;
    Ok((client, secret))
}

/// `change_client_security` by an operator on the command line.
pub async fn update_client_security(
    store: &Store,
    client: &Client,
    auth_method: Option<ClientAuthMethod>,
    changes: SecurityChanges,
    now: UnixTime,
) -> Result<(Client, Option<Secret>), RegistrationError> {
    change_client_security(store, client, auth_method, changes, &Actor::Cli, now).await
}

/// Set a client's second-factor policy (`default`, `off`, `optional`, `required`), audited as
/// `mfa_policy_changed` when it changes.
pub async fn set_client_mfa(
    store: &Store,
    client: &mut Client,
    mfa: ClientMfa,
    actor: &Actor,
    now: UnixTime,
) -> Result<(), RegistrationError> {
    if mfa == client.mfa {
        return Ok(());
    }
    store.set_client_mfa(&client.id, mfa.as_str(), now).await?;
    client.mfa = mfa;
    audit::write(
        store,
        Event::new(Kind::MfaPolicyChanged, now)
            .server(&client.server_id)
            .actor(actor.label())
            .subject(client.id.as_str())
            .detail("client_id", client.id.as_str())
            .detail("mfa", mfa.as_str()),
    )
    .await;
    Ok(())
}
