//! The audit log: who did what, when. Sign-ins, failures and lockouts, tokens issued and revoked,
//! refresh token reuse, client, user and key changes.
//!
//! Never a secret: events carry ids (client id, user id, `jti`, grant id), usernames as typed,
//! reasons and scopes, never a password, a client secret, a code or a token. Requests write
//! through a bounded channel to one background writer that inserts in batches, in two ways:
//!
//! - [`AuditLog::commit`] (`token_issued`): the request waits until its event is in the database,
//!   so a token a client received is always audited, even if the process is killed the next
//!   instant. This is a group commit: while the writer inserts one batch, the events of every
//!   other request queue up and go in the next single INSERT, so under load a commit costs a
//!   share of one round trip, not a round trip each. A failed insert withholds the tokens
//!   (`503 temporarily_unavailable`).
//! - [`AuditLog::record`] (everything else): queued without waiting; when the channel is full
//!   the event is dropped and counted rather than slowing requests down. With no commit waiting,
//!   the writer lingers up to `LINGER` for a batch to fill (one INSERT per few hundred events
//!   rather than one per handful), so such an event is in the database within `LINGER`, at once
//!   when a commit or `flush` (shutdown, tests) comes along.
//!
//! The CLI writes directly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::clock::UnixTime;
use crate::error::Error;
use crate::store::{BatchFailure, NewAuditEvent, Store, StoreError};

/// The kinds of audit event, as stored in `audit_events.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SignIn,
    SignInFailed,
    Lockout,
    TokenIssued,
    TokenRevoked,
    RefreshReuse,
    CodeReplay,
    RateLimited,
    ClientCreated,
    ClientUpdated,
    ClientSecretRotated,
    ClientDeleted,
    UserCreated,
    UserUpdated,
    UserDisabled,
    UserEnabled,
    UserDeleted,
    UserPasswordChanged,
    UserUnlocked,
    KeyGenerated,
    KeyRotated,
    SessionsRevoked,
    LogoutDeliveryFailed,
    DeviceAuthorizationStarted,
    DeviceApproved,
    DeviceDenied,
    DeviceUserCodeFailed,
    TokenExchanged,
    GroupCreated,
    GroupUpdated,
    GroupDeleted,
    GroupMembersAdded,
    GroupMembersRemoved,
    AccessPolicyCreated,
    AccessPolicyUpdated,
    AccessPolicyDeleted,
    AccessRuleCreated,
    AccessRuleUpdated,
    AccessRuleDeleted,
    ScopeCreated,
    ScopeUpdated,
    ScopeDeleted,
    ClaimCreated,
    ClaimUpdated,
    ClaimDeleted,
    ServerUpdated,
    RegistrationTokenCreated,
    RegistrationTokenRevoked,
    MfaEnrolled,
    MfaVerified,
    MfaFailed,
    MfaReset,
    MfaRecoveryCodeUsed,
    MfaRecoveryCodesGenerated,
    MfaPolicyChanged,
    // High-assurance clients (issue 21).
    ClientAuthenticationFailed,
    // A user's grants and consents withdrawn by an operator (issue 19).
    GrantsRevoked,
    ConsentRevoked,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[
        Self::SignIn,
        Self::SignInFailed,
        Self::Lockout,
        Self::TokenIssued,
        Self::TokenRevoked,
        Self::RefreshReuse,
        Self::CodeReplay,
        Self::RateLimited,
        Self::ClientCreated,
        Self::ClientUpdated,
        Self::ClientSecretRotated,
        Self::ClientDeleted,
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::UserDeleted,
        Self::UserPasswordChanged,
        Self::UserUnlocked,
        Self::KeyGenerated,
        Self::KeyRotated,
        Self::SessionsRevoked,
        Self::LogoutDeliveryFailed,
        Self::DeviceAuthorizationStarted,
        Self::DeviceApproved,
        Self::DeviceDenied,
        Self::DeviceUserCodeFailed,
        Self::TokenExchanged,
        Self::GroupCreated,
        Self::GroupUpdated,
        Self::GroupDeleted,
        Self::GroupMembersAdded,
        Self::GroupMembersRemoved,
        Self::AccessPolicyCreated,
        Self::AccessPolicyUpdated,
        Self::AccessPolicyDeleted,
        Self::AccessRuleCreated,
        Self::AccessRuleUpdated,
        Self::AccessRuleDeleted,
        Self::ScopeCreated,
        Self::ScopeUpdated,
        Self::ScopeDeleted,
        Self::ClaimCreated,
        Self::ClaimUpdated,
        Self::ClaimDeleted,
        Self::ServerUpdated,
        Self::RegistrationTokenCreated,
        Self::RegistrationTokenRevoked,
        Self::MfaEnrolled,
        Self::MfaVerified,
        Self::MfaFailed,
        Self::MfaReset,
        Self::MfaRecoveryCodeUsed,
        Self::MfaRecoveryCodesGenerated,
        Self::MfaPolicyChanged,
        // High-assurance clients (issue 21).
        Self::ClientAuthenticationFailed,
        Self::GrantsRevoked,
        Self::ConsentRevoked,
    ];

    pub fn parse(s: &str) -> Option<Kind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::SignInFailed => "sign_in_failed",
            Self::Lockout => "lockout",
            Self::TokenIssued => "token_issued",
            Self::TokenRevoked => "token_revoked",
            Self::RefreshReuse => "refresh_reuse",
            Self::CodeReplay => "code_replay",
            Self::RateLimited => "rate_limited",
            Self::ClientCreated => "client_created",
            Self::ClientUpdated => "client_updated",
            Self::ClientSecretRotated => "client_secret_rotated",
            Self::ClientDeleted => "client_deleted",
            Self::UserCreated => "user_created",
            Self::UserUpdated => "user_updated",
            Self::UserDisabled => "user_disabled",
            Self::UserEnabled => "user_enabled",
            Self::UserDeleted => "user_deleted",
            Self::UserPasswordChanged => "user_password_changed",
            Self::UserUnlocked => "user_unlocked",
            Self::KeyGenerated => "key_generated",
            Self::KeyRotated => "key_rotated",
            Self::SessionsRevoked => "sessions_revoked",
            Self::LogoutDeliveryFailed => "logout_delivery_failed",
            Self::DeviceAuthorizationStarted => "device_authorization_started",
            Self::DeviceApproved => "device_approved",
            Self::DeviceDenied => "device_denied",
            Self::DeviceUserCodeFailed => "device_user_code_failed",
            Self::TokenExchanged => "token_exchanged",
            Self::GroupCreated => "group_created",
            Self::GroupUpdated => "group_updated",
            Self::GroupDeleted => "group_deleted",
            Self::GroupMembersAdded => "group_members_added",
            Self::GroupMembersRemoved => "group_members_removed",
            Self::AccessPolicyCreated => "access_policy_created",
            Self::AccessPolicyUpdated => "access_policy_updated",
            Self::AccessPolicyDeleted => "access_policy_deleted",
            Self::AccessRuleCreated => "access_rule_created",
            Self::AccessRuleUpdated => "access_rule_updated",
            Self::AccessRuleDeleted => "access_rule_deleted",
            Self::ScopeCreated => "scope_created",
            Self::ScopeUpdated => "scope_updated",
            Self::ScopeDeleted => "scope_deleted",
            Self::ClaimCreated => "claim_created",
            Self::ClaimUpdated => "claim_updated",
            Self::ClaimDeleted => "claim_deleted",
            Self::ServerUpdated => "server_updated",
            Self::RegistrationTokenCreated => "registration_token_created",
            Self::RegistrationTokenRevoked => "registration_token_revoked",
            Self::MfaEnrolled => "mfa_enrolled",
            Self::MfaVerified => "mfa_verified",
            Self::MfaFailed => "mfa_failed",
            Self::MfaReset => "mfa_reset",
            Self::MfaRecoveryCodeUsed => "mfa_recovery_code_used",
            Self::MfaRecoveryCodesGenerated => "mfa_recovery_codes_generated",
            Self::MfaPolicyChanged => "mfa_policy_changed",
            // High-assurance clients (issue 21).
            Self::ClientAuthenticationFailed => "client_authentication_failed",
            Self::GrantsRevoked => "grants_revoked",
            Self::ConsentRevoked => "consent_revoked",
        }
    }
}

/// What was typed into the username field of a sign-in that failed may be a password typed in the
/// wrong field, so it is not stored: the first 16 hex digits (64 bits) of the SHA-256 of the
/// name as it would be typed again (trimmed, lower-cased) are. An operator can still match a
/// known username: `printf %s ada | sha256sum | cut -c1-16`.
pub fn typed_username_hash(username: &str) -> String {
    crate::security::sha256(username.trim().to_lowercase().as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An event under construction: `Event::new(kind, now).server(..).actor(..).subject(..)`.
#[derive(Debug, Clone)]
pub struct Event(NewAuditEvent);

impl Event {
    pub fn new(kind: Kind, at: UnixTime) -> Self {
        Self(NewAuditEvent {
            at,
            server_id: None,
            kind: kind.as_str(),
            actor: None,
            subject: None,
            detail: Value::Object(Default::default()),
        })
    }
    pub fn server(mut self, server_id: &str) -> Self {
        self.0.server_id = Some(server_id.to_string());
        self
    }
    /// Who acted: `client:ID`, `user:ID`, `ip:ADDR`, `cli`.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.0.actor = Some(actor.into());
        self
    }
    /// What was acted on: a user id, a client id, a key id, a grant id.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.0.subject = Some(subject.into());
        self
    }
    /// A detail field. Callers pass ids, names, reasons and scopes, never a secret.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.0.detail {
            map.insert(key.to_string(), value.into());
        }
        self
    }
    /// The username typed at a failed or refused sign-in, as `username_sha256` (see
    /// [`typed_username_hash`]), never as typed.
    pub fn typed_username(self, username: &str) -> Self {
        self.detail("username_sha256", typed_username_hash(username))
    }
    /// Tokens issued to `client_id` (for `user_id`, unless the client acts for itself): ids and
    /// scopes only, never a token. `jti` is the access token's; an ID token alone has none.
    #[allow(clippy::too_many_arguments)]
    pub fn token_issued(
        at: UnixTime,
        server_id: &str,
        client_id: &str,
        grant: &str,
        user_id: Option<&str>,
        jti: Option<&str>,
        scope: &str,
        refresh_token: bool,
    ) -> Self {
        let mut event = Event::new(Kind::TokenIssued, at)
            .server(server_id)
            .actor(format!("client:{client_id}"))
            .detail("grant", grant)
            .detail("client_id", client_id);
        if let Some(jti) = jti {
            event = event.detail("jti", jti);
        }
        event = event
            .detail("scope", scope)
            .detail("refresh_token", refresh_token);
        match user_id {
            Some(user_id) => event.subject(user_id),
            None => event,
        }
    }

    pub fn into_new(self) -> NewAuditEvent {
        self.0
    }
}

enum Message {
    Event(NewAuditEvent),
    /// An event whose request waits for the answer: written, or why not.
    Commit(NewAuditEvent, oneshot::Sender<Result<(), BatchFailure>>),
    Flush(oneshot::Sender<()>),
}

/// Events written at most this many per INSERT.
const BATCH: usize = 256;

/// How long the writer waits for a batch to fill after its first event.
const LINGER: std::time::Duration = std::time::Duration::from_millis(250);

/// The handle requests record events through. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

impl AuditLog {
    /// Start the background writer on the current tokio runtime.
    pub fn start(store: Store, capacity: usize) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        tokio::spawn(write_batches(store, receiver));
        Self {
            sender,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queue an event; never waits. A full queue drops the event, counts it and warns.
    pub fn record(&self, event: Event) {
        if self.sender.try_send(Message::Event(event.0)).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Every power of two, so a flood does not also flood the log.
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "audit queue full: events dropped");
            }
        }
    }

    /// Queue an event and wait until it is in the database. Waits for room when the queue is
    /// full (never drops); an error when the batch could not be written. The event is written
    /// even if the caller stops waiting.
    pub async fn commit(&self, event: Event) -> Result<(), Error> {
        let (done, written) = oneshot::channel();
        let stopped = || Error::internal("audit writer stopped");
        self.sender
            .send(Message::Commit(event.0, done))
            .await
            .map_err(|_| stopped())?;
        match written.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failed)) => Err(failed.into_error("audit log")),
            Err(_) => Err(stopped()),
        }
    }

    /// Events dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Wait until every event queued before this call is written (shutdown, tests).
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut committing = Vec::new();
    let mut flushing = Vec::new();
    while let Some(first) = receiver.recv().await {
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Event(e) => batch.push(e),
                Message::Commit(e, done) => {
                    batch.push(e);
                    committing.push(done);
                }
                Message::Flush(done) => flushing.push(done),
            }
            if batch.len() >= BATCH {
                break;
            }
            next = if committing.is_empty() && flushing.is_empty() {
                // Nobody waits: linger for a fuller batch.
                tokio::time::timeout_at(deadline, receiver.recv())
                    .await
                    .ok()
                    .flatten()
            } else {
                // Someone waits: write now, with whatever else has already queued (the group).
                receiver.try_recv().ok()
            };
        }
        let written = if batch.is_empty() {
            Ok(())
        } else {
            insert(&store, &batch).await.map_err(|e| {
                tracing::error!(error = %e, events = batch.len(), "cannot write audit events");
                BatchFailure::of(&e)
            })
        };
        batch.clear();
        for done in committing.drain(..) {
            let _ = done.send(written.clone());
        }
        for done in flushing.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn insert(store: &Store, batch: &[NewAuditEvent]) -> Result<(), StoreError> {
    store.insert_audit_events(batch).await
}

/// Write one event now (the CLI, and rare server events such as key generation).
pub async fn write(store: &Store, event: Event) {
    if let Err(e) = store.insert_audit_events(&[event.0]).await {
        tracing::error!(error = %e, "cannot write audit event");
    }
}
