//! Users: the rules for their claims and attributes, and the changes an operator makes to an
//! account (create, update, disable, unlock, new password, sign out, delete), each audited with
//! its actor. The CLI and the management API both call these.

use serde_json::{Map, Value};

use super::clients::RegistrationError as ManageError;
use super::Actor;
use crate::audit::{self, Event, Kind};
use crate::clock::UnixTime;
use crate::store::{NewUser, Sessions, Store, User, Username};
use crate::tokens::claims::{is_reserved, ADDRESS, EMAIL, PHONE, PROFILE};

fn invalid(message: impl Into<String>) -> ManageError {
    ManageError::Invalid(message.into())
}

fn no_user(key: &str) -> ManageError {
    ManageError::NotFound(format!("no user `{key}`"))
}

/// The parts of an address claim (OIDC Core §5.1.1).
pub const ADDRESS_PARTS: &[&str] = &[
    "formatted",
    "street_address",
    "locality",
    "region",
    "postal_code",
    "country",
];

/// Attribute keys are JSON member names in tokens; keep them printable and short.
pub const MAX_ATTRIBUTE_KEY_CHARS: usize = 256;

/// The standard claims a user record holds: every claim the profile, email, address and phone
/// scopes release but `updated_at`, which the server keeps.
pub fn is_user_claim(name: &str) -> bool {
    name != "updated_at"
        && [PROFILE, EMAIL, ADDRESS, PHONE]
            .iter()
            .any(|g| g.contains(&name))
}

/// A whole claims object, as it will be stored, under OIDC Core §5.1: known claims only,
/// non-empty strings, e-mail and URL shapes, `birthdate` as YYYY-MM-DD or YYYY, the
/// `*_verified` flags booleans that come with their value, the address an object of its parts.
pub fn check_claims(claims: &Map<String, Value>) -> Result<(), ManageError> {
    for (name, value) in claims {
        if !is_user_claim(name) {
            return Err(invalid(format!(
                "`{name}` is not a standard claim of a user"
            )));
        }
        match (name.as_str(), value) {
            ("email_verified", Value::Bool(_)) | ("phone_number_verified", Value::Bool(_)) => {}
            ("email_verified" | "phone_number_verified", _) => {
                return Err(invalid(format!("the {name} claim must be true or false")))
            }
            ("address", Value::Object(parts)) => {
                if parts.is_empty() {
                    return Err(invalid("the address claim must have at least one part"));
                }
                for (part, value) in parts {
                    if !ADDRESS_PARTS.contains(&part.as_str()) {
                        return Err(invalid(format!(
                            "`{part}` is not a part of an address (one of {})",
                            ADDRESS_PARTS.join(", ")
                        )));
                    }
                    non_empty_string(&format!("address.{part}"), value)?;
                }
            }
            ("address", _) => return Err(invalid("the address claim must be an object")),
            (name, value) => {
                let text = non_empty_string(name, value)?;
                check_claim_value(name, text)?;
            }
        }
    }
    for (flag, value) in [
        ("email_verified", "email"),
        ("phone_number_verified", "phone_number"),
    ] {
        if claims.contains_key(flag) && !claims.contains_key(value) {
            return Err(invalid(format!("{flag} needs {value}")));
        }
    }
    Ok(())
}

fn non_empty_string<'a>(name: &str, value: &'a Value) -> Result<&'a str, ManageError> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(invalid(format!(
            "the {name} claim must be a non-empty string"
        ))),
    }
}

/// The shape §5.1 gives one string claim's value.
pub fn check_claim_value(name: &str, value: &str) -> Result<(), ManageError> {
    match name {
        "email" if !looks_like_email(value) => {
            Err(invalid(format!("email `{value}` is not an e-mail address")))
        }
        "profile" | "picture" | "website" if !is_web_url(value) => {
            Err(invalid(format!("{name} `{value}` is not an http(s) URL")))
        }
        "birthdate" if !is_birthdate(value) => Err(invalid(format!(
            "birthdate `{value}` is not YYYY-MM-DD or YYYY"
        ))),
        _ => Ok(()),
    }
}

pub fn looks_like_email(value: &str) -> bool {
    matches!(value.split_once('@'), Some((local, domain))
        if !local.is_empty() && !domain.is_empty() && !value.chars().any(char::is_whitespace))
}

pub fn is_web_url(value: &str) -> bool {
    url::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
}

/// §5.1 `birthdate`: YYYY-MM-DD, or YYYY alone.
pub fn is_birthdate(value: &str) -> bool {
    let number = |s: &str, range: std::ops::RangeInclusive<u32>| {
        s.bytes().all(|b| b.is_ascii_digit()) && s.parse().is_ok_and(|n| range.contains(&n))
    };
    match value.split('-').collect::<Vec<_>>()[..] {
        [year] => year.len() == 4 && number(year, 0..=9999),
        [year, month, day] => {
            year.len() == 4
                && month.len() == 2
                && day.len() == 2
                && number(year, 0..=9999)
                && number(month, 1..=12)
                && number(day, 1..=31)
        }
        _ => false,
    }
}

/// An attribute key: not a standard or protocol claim's name (an attribute must never stand in
/// for one), nor `username`; printable, 1 to 256 characters.
pub fn check_attribute_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    if key.is_empty()
        || key.chars().count() > MAX_ATTRIBUTE_KEY_CHARS
        || key.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "attribute name `{key}` must be 1 to {MAX_ATTRIBUTE_KEY_CHARS} characters without spaces or control characters"
        ));
    }
    if is_reserved(key) || key == "username" {
        return Err(format!(
            "`{key}` is a standard claim or protocol name, not a custom attribute; use its own flag"
        ));
    }
    Ok(key.to_string())
}

/// A whole attributes object, as it will be stored.
pub fn check_attributes(attributes: &Map<String, Value>) -> Result<(), ManageError> {
    for (key, value) in attributes {
        if check_attribute_key(key).map_err(ManageError::Invalid)? != *key {
            return Err(invalid(format!(
                "attribute name `{key}` must not begin or end with spaces"
            )));
        }
        if value.is_null() {
            return Err(invalid(format!("attribute `{key}` must not be null")));
        }
    }
    Ok(())
}

/// A user to create; the password, if any, already hashed (argon2id).
pub struct UserRequest {
    pub username: String,
    pub password_hash: Option<String>,
    pub claims: Map<String, Value>,
    pub attributes: Map<String, Value>,
}

/// `user create`: every rule checked before anything is stored; audited.
pub async fn create_user(
    store: &Store,
    request: UserRequest,
    actor: &Actor,
    now: UnixTime,
) -> Result<User, ManageError> {
    let username = Username::parse(&request.username).map_err(ManageError::Invalid)?;
    check_claims(&request.claims)?;
    check_attributes(&request.attributes)?;
    let new = NewUser {
        username,
        password_hash: request.password_hash,
        claims: request.claims,
    };
    let mut user = store.insert_user(&new, now).await?;
    if !request.attributes.is_empty() {
        store
            .set_user_attributes(&user.id, &request.attributes, now)
            .await?;
        user = reload(store, &user, true).await?;
    }
    audit::write(store, user_event(Kind::UserCreated, &user, actor, now)).await;
    Ok(user)
}

/// `user update`: store the user's new claims and attributes (whole objects, checked here) and
/// audit the names that changed, never their values.
pub async fn update_profile(
    store: &Store,
    user: &User,
    claims: Map<String, Value>,
    attributes: Map<String, Value>,
    actor: &Actor,
    now: UnixTime,
) -> Result<User, ManageError> {
    check_claims(&claims)?;
    check_attributes(&attributes)?;
    let changed_claims = changed_names(&user.claims, &claims);
    let changed_attributes = changed_names(&user.attributes, &attributes);
    let mut stored = true;
    if !changed_claims.is_empty() {
        stored = store.set_user_claims(&user.id, &claims, now).await?;
    }
    if stored && !changed_attributes.is_empty() {
        stored = store
            .set_user_attributes(&user.id, &attributes, now)
            .await?;
    }
    if stored && !(changed_claims.is_empty() && changed_attributes.is_empty()) {
        let event = user_event(Kind::UserUpdated, user, actor, now)
            .detail("claims", changed_claims)
            .detail("attributes", changed_attributes);
        audit::write(store, event).await;
    }
    reload(store, user, stored).await
}

/// The names whose values differ between two objects, sorted.
fn changed_names(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<String> {
    let mut names: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `user disable|enable`. Disabling withdraws the user's grants, refresh tokens and sessions.
pub async fn set_disabled(
    store: &Store,
    user: &User,
    disabled: bool,
    actor: &Actor,
    now: UnixTime,
) -> Result<User, ManageError> {
    let changed = store.set_user_disabled(&user.id, disabled, now).await?;
    if changed {
        let kind = if disabled {
            Kind::UserDisabled
        } else {
            Kind::UserEnabled
        };
        audit::write(store, user_event(kind, user, actor, now)).await;
    }
    reload(store, user, changed).await
}

/// `user unlock`: clear a lockout after failed sign-ins.
pub async fn unlock(
    store: &Store,
    user: &User,
    actor: &Actor,
    now: UnixTime,
) -> Result<User, ManageError> {
    let changed = store.unlock_user(&user.id, now).await?;
    if changed {
        audit::write(store, user_event(Kind::UserUnlocked, user, actor, now)).await;
    }
    reload(store, user, changed).await
}

/// `user set-password` with the new password already hashed: revokes the user's grants and
/// sessions and clears a lockout.
pub async fn set_password(
    store: &Store,
    user: &User,
    password_hash: &str,
    actor: &Actor,
    now: UnixTime,
) -> Result<User, ManageError> {
    let changed = store
        .set_password_hash(&user.id, password_hash, now)
        .await?;
    if changed {
        audit::write(
            store,
            user_event(Kind::UserPasswordChanged, user, actor, now),
        )
        .await;
    }
    reload(store, user, changed).await
}

/// `user delete`, with their grants, tokens, sessions and consents. False if already gone.
pub async fn delete_user(
    store: &Store,
    user: &User,
    actor: &Actor,
    now: UnixTime,
) -> Result<bool, ManageError> {
    let deleted = store.delete_user(&user.id, now).await?;
    if deleted {
        audit::write(store, user_event(Kind::UserDeleted, user, actor, now)).await;
    }
    Ok(deleted)
}

/// What signing a user out did.
#[derive(Debug, Clone, Copy)]
pub struct SignedOut {
    pub sessions_ended: usize,
    pub backchannel_logouts_queued: usize,
}

/// `user sessions revoke`: end one live session (`sid`) or all of them ("sign out
/// everywhere"); back-channel logouts are queued in the outbox for the running replicas.
pub async fn end_sessions(
    store: &Store,
    user: &User,
    sid: Option<&str>,
    actor: &Actor,
    now: UnixTime,
) -> Result<SignedOut, ManageError> {
    let live = store.live_sessions_of(&user.id, now).await?;
    let which = match sid {
        Some(sid) if !live.iter().any(|s| s.sid == sid) => {
            return Err(ManageError::NotFound(format!(
                "user `{}` has no live session `{sid}`",
                user.username
            )))
        }
        Some(sid) => Sessions::One(sid),
        None => Sessions::OfUser(&user.id),
    };
    let sessions_ended = if sid.is_some() { 1 } else { live.len() };
    let queued = store.end_sessions(which, now).await?;
    let mut event = user_event(Kind::SessionsRevoked, user, actor, now)
        .detail("sessions", sessions_ended)
        .detail("backchannel_logouts", queued.len());
    if let Some(sid) = sid {
        event = event.detail("sid", sid);
    }
    audit::write(store, event).await;
    Ok(SignedOut {
        sessions_ended,
        backchannel_logouts_queued: queued.len(),
    })
}

/// A user named by an operator: a username or an id.
pub async fn find_user(store: &Store, key: &str) -> Result<User, ManageError> {
    let by_id = store.user(key).await?;
    let by_name = store.user_by_username(key).await?;
    match (by_id, by_name) {
        // A username may happen to equal another user's id; acting on either would be a guess.
        (Some(a), Some(b)) if a.id != b.id => Err(invalid(format!(
            "`{key}` is both the id of user `{}` and the username of user {}; name one of them another way",
            a.username, b.id
        ))),
        (Some(user), _) | (None, Some(user)) => Ok(user),
        (None, None) => Err(no_user(key)),
    }
}

/// The user as stored after a change; `changed` is false if it vanished in between.
async fn reload(store: &Store, user: &User, changed: bool) -> Result<User, ManageError> {
    if !changed {
        return Err(no_user(&user.username));
    }
    store
        .user(&user.id)
        .await?
        .ok_or_else(|| no_user(&user.username))
}

/// A user change, in the audit log: id and username, never the password or its hash.
fn user_event(kind: Kind, user: &User, actor: &Actor, now: UnixTime) -> Event {
    Event::new(kind, now)
        .actor(actor.label())
        .subject(user.id.as_str())
        .detail("username", user.username.as_str())
}
