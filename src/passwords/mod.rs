//! User passwords: argon2id (RFC 9106), stored as PHC strings (`$argon2id$v=19$m=…,t=…,p=…$…`).
//!
//! Argon2 is slow and memory-hard on purpose, so it never runs on the runtime's worker threads:
//! every hash or verification runs on one of `passwords.max_concurrent` dedicated threads
//! (`workers`), each reusing its own memory, at niceness `passwords.nice`. A burst of logins
//! then queues for a worker instead of taking every core, and `memory × burst` of RAM, away from
//! the token endpoint.

mod workers;

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{oneshot, Semaphore};

use crate::config::PasswordConfig;
use crate::security::{random_bytes, Secret};
use workers::{Memory, Workers};

/// RFC 9106 §3.1 recommends a 128-bit salt.
const SALT_BYTES: usize = 16;

/// What the dummy hash is a hash of. No user can sign in with it: it is only ever verified
/// when there is no stored hash, and the answer is then `false` whatever the outcome.
const DUMMY_PASSWORD: &[u8] = b"portcullis: no such user";

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing is unavailable: {0}")]
    Unavailable(String),
}

/// Hashes and verifies user passwords; one per process, shared through `AppState`.
pub struct PasswordHasher {
    params: Params,
    argon2: Argon2<'static>,
    /// One per worker: a permit is held from before a job is queued until it has run, so the
    /// workers' queue never overflows and a caller that gives up (a request timeout) still
    /// counts until its hash is done.
    permits: Arc<Semaphore>,
    workers: Result<Workers, String>,
    /// A hash of `DUMMY_PASSWORD` with the configured parameters, verified against when there is
    /// no stored hash, so that an unknown user (or one without a password) costs the same time
    /// as a wrong password. Computed on first need rather than at start, where the CLI and most
    /// tests would pay for it without using it.
    dummy: Arc<OnceLock<String>>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("m_cost", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .field("available_permits", &self.permits.available_permits())
            .finish()
    }
}

impl PasswordHasher {
    pub fn new(config: &PasswordConfig) -> Self {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .unwrap_or_else(|e| {
            // Config::validate rejects every parameter argon2 refuses. Should a caller skip it,
            // the (stronger) defaults are better than a panic or a weaker hash.
            tracing::error!(error = %e, "invalid argon2 parameters; using the defaults");
            Params::DEFAULT
        });
        let count = config.workers().clamp(1, 1024);
        let workers = Workers::start(count, config.nice).map_err(|e| {
            tracing::error!(error = %e, "cannot start the argon2 workers");
            e.to_string()
        });
        Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone()),
            params,
            permits: Arc::new(Semaphore::new(count)),
            workers,
            dummy: Arc::new(OnceLock::new()),
        }
    }

    /// Hash a new password with a fresh random salt: a PHC string to store.
    pub async fn hash(&self, password: &Secret) -> Result<String, PasswordError> {
        if password.expose().is_empty() {
            return Err(PasswordError::Empty);
        }
        let salt = SaltString::encode_b64(&random_bytes(SALT_BYTES))
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        let argon2 = self.argon2.clone();
        let password = password.clone();
        self.run(move |memory| {
            hash_into(memory, &argon2, password.expose().as_bytes(), &salt)
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await?
    }

    /// Does `password` match the stored hash? With no stored hash (unknown user, or a user
    /// without a password) the answer is `false`, after the same work as a real verification,
    /// so the response time does not tell whether the user exists.
    pub async fn verify(&self, password: &Secret, stored: Option<&str>) -> bool {
        let argon2 = self.argon2.clone();
        let dummy = self.dummy.clone();
        let password = password.clone();
        let stored = stored.map(str::to_owned);
        let outcome = self
            .run(move |memory| {
                verify_on_worker(
                    memory,
                    &argon2,
                    &dummy,
                    password.expose().as_bytes(),
                    stored.as_deref(),
                )
            })
            .await;
        outcome.unwrap_or_else(|e| {
            tracing::error!(error = %e, "password verification did not run");
            false
        })
    }

    /// Was `stored` made with something other than argon2id and the configured parameters? A
    /// login that has just verified the password may then store a fresh hash of it, so raising
    /// the parameters reaches existing users as they sign in.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(hash) = PasswordHash::new(stored) else {
            return true;
        };
        let Ok(params) = Params::try_from(&hash) else {
            return true;
        };
        hash.algorithm != Algorithm::Argon2id.ident()
            || hash.version != Some(u32::from(Version::V0x13))
            || params.m_cost() != self.params.m_cost()
            || params.t_cost() != self.params.t_cost()
            || params.p_cost() != self.params.p_cost()
    }

    /// Run argon2 on a worker once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let workers = self
            .workers
            .as_ref()
            .map_err(|e| PasswordError::Unavailable(e.clone()))?;
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| PasswordError::Unavailable(e.to_string()))?;
        let (done, result) = oneshot::channel();
        workers
            .submit(Box::new(move |memory: &mut Memory| {
                let _permit = permit;
                let _ = done.send(work(memory));
            }))
            .map_err(PasswordError::Unavailable)?;
        result
            .await
            .map_err(|_| PasswordError::Unavailable("the argon2 job did not finish".into()))
    }
}

/// argon2 of `password` under `argon2`'s parameters, in the worker's memory: a PHC string.
fn hash_into(
    memory: &mut Memory,
    argon2: &Argon2<'static>,
    password: &[u8],
    salt: &SaltString,
) -> argon2::password_hash::Result<String> {
    let params = argon2.params();
    let mut salt_buffer = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buffer)?;
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(output_len, |out| {
        argon2
            .hash_password_into_with_memory(
                password,
                salt_bytes,
                out,
                memory.blocks(params.block_count()),
            )
            .map_err(Into::into)
    })?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Does `password` match `hash`, recomputed with the algorithm, version, parameters and salt
/// written in it? The comparison of the outputs is constant-time (`Output`'s `PartialEq`).
fn matches(memory: &mut Memory, password: &[u8], hash: &PasswordHash<'_>) -> bool {
    let mut recompute = || -> argon2::password_hash::Result<bool> {
        let expected = hash.hash.ok_or(argon2::password_hash::Error::Password)?;
        let salt = hash.salt.ok_or(argon2::password_hash::Error::Password)?;
        let algorithm = Algorithm::try_from(hash.algorithm)?;
        let version = hash
            .version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let params = Params::try_from(hash)?;
        let mut salt_buffer = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buffer)?;
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let computed = Output::init_with(expected.len(), |out| {
            argon2
                .hash_password_into_with_memory(
                    password,
                    salt_bytes,
                    out,
                    memory.blocks(params.block_count()),
                )
                .map_err(Into::into)
        })?;
        Ok(computed == expected)
    };
    recompute().unwrap_or(false)
}

fn verify_on_worker(
    memory: &mut Memory,
    argon2: &Argon2<'static>,
    dummy: &OnceLock<String>,
    password: &[u8],
    stored: Option<&str>,
) -> bool {
    if let Some(stored) = stored {
        match PasswordHash::new(stored) {
            Ok(hash) => return matches(memory, password, &hash),
            // Never log the stored value itself.
            Err(e) => tracing::warn!(error = %e, "a stored password hash is malformed"),
        }
    }
    spend_a_verification(memory, argon2, dummy, password);
    false
}

/// The work of one verification, for when there is nothing to verify against.
fn spend_a_verification(
    memory: &mut Memory,
    argon2: &Argon2<'static>,
    dummy: &OnceLock<String>,
    password: &[u8],
) {
    match dummy.get().map(|stored| PasswordHash::new(stored)) {
        Some(Ok(hash)) => {
            let _ = matches(memory, password, &hash);
        }
        _ => {
            // The first time, computing the dummy is itself the one hash this call must cost.
            // Two first calls racing both compute it; one of the results is kept.
            let hashed = SaltString::encode_b64(&random_bytes(SALT_BYTES))
                .and_then(|salt| hash_into(memory, argon2, DUMMY_PASSWORD, &salt));
            match hashed {
                Ok(hash) => {
                    let _ = dummy.set(hash);
                }
                Err(e) => tracing::error!(error = %e, "cannot compute the dummy password hash"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Far below production cost, so the tests are quick; set through the configuration only.
    fn cheap() -> PasswordConfig {
        PasswordConfig {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            max_concurrent: 2,
            nice: 10,
        }
    }

    /// Hashes made by the argon2 crate's own API and by ours are interchangeable: stored hashes
    /// from before the workers (or from other tools) still verify.
    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = PasswordHasher::new(&cheap());
        let ours = hasher.hash(&Secret::new("pw")).await.expect("hash");
        let argon2 = Argon2::default();
        let parsed = PasswordHash::new(&ours).expect("parse");
        assert!(argon2.verify_password(b"pw", &parsed).is_ok());
        assert!(argon2.verify_password(b"pW", &parsed).is_err());
        let salt = SaltString::encode_b64(&random_bytes(SALT_BYTES)).expect("salt");
        for (m, t, p) in [(64, 1, 1), (256, 3, 2)] {
            let theirs = Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(m, t, p, None).expect("params"),
            )
            .hash_password(b"pw", &salt)
            .expect("their hash")
            .to_string();
            assert!(
                hasher.verify(&Secret::new("pw"), Some(&theirs)).await,
                "{theirs}"
            );
            assert!(!hasher.verify(&Secret::new("pw "), Some(&theirs)).await);
        }
        // Argon2i and a v0x10 hash verify too: what the PHC string says is what is computed.
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(64, 1, 1, None).expect("params"),
        )
        .hash_password(b"pw", &salt)
        .expect("argon2i")
        .to_string();
        assert!(
            hasher.verify(&Secret::new("pw"), Some(&argon2i)).await,
            "{argon2i}"
        );
        assert!(hasher.needs_rehash(&argon2i));
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password() {
        let hasher = PasswordHasher::new(&cheap());
        let password = Secret::new("correct horse battery staple");
        let stored = hasher.hash(&password).await.expect("hash");
        assert!(
            stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{stored}"
        );
        assert!(hasher.verify(&password, Some(&stored)).await);
    }

    #[tokio::test]
    async fn a_wrong_password_does_not_verify() {
        let hasher = PasswordHasher::new(&cheap());
        let stored = hasher.hash(&Secret::new("right")).await.expect("hash");
        assert!(!hasher.verify(&Secret::new("wrong"), Some(&stored)).await);
        assert!(!hasher.verify(&Secret::new("Right"), Some(&stored)).await);
        assert!(!hasher.verify(&Secret::new(""), Some(&stored)).await);
    }

    #[tokio::test]
    async fn no_stored_hash_never_verifies() {
        let hasher = PasswordHasher::new(&cheap());
        // The first call computes the dummy hash, the next ones verify against it.
        for _ in 0..3 {
            assert!(!hasher.verify(&Secret::new("anything"), None).await);
        }
        let dummy = String::from_utf8_lossy(DUMMY_PASSWORD).into_owned();
        assert!(!hasher.verify(&Secret::new(dummy), None).await);
        assert!(hasher.dummy.get().is_some(), "the dummy is computed once");
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_does_not_verify() {
        let hasher = PasswordHasher::new(&cheap());
        assert!(!hasher.verify(&Secret::new("x"), Some("not a hash")).await);
    }

    #[tokio::test]
    async fn salts_differ_and_empty_passwords_are_refused() {
        let hasher = PasswordHasher::new(&cheap());
        let password = Secret::new("same");
        let a = hasher.hash(&password).await.expect("hash");
        let b = hasher.hash(&password).await.expect("hash");
        assert_ne!(a, b);
        assert!(matches!(
            hasher.hash(&Secret::new("")).await,
            Err(PasswordError::Empty)
        ));
    }

    #[tokio::test]
    async fn hashes_with_other_parameters_need_a_rehash() {
        let hasher = PasswordHasher::new(&cheap());
        let current = hasher.hash(&Secret::new("pw")).await.expect("hash");
        assert!(!hasher.needs_rehash(&current));
        let stronger = PasswordHasher::new(&PasswordConfig {
            argon2_iterations: 2,
            ..cheap()
        });
        assert!(stronger.needs_rehash(&current));
        assert!(
            stronger.verify(&Secret::new("pw"), Some(&current)).await,
            "an old hash verifies with the parameters written in it"
        );
        assert!(hasher.needs_rehash("garbage"));
    }

    #[tokio::test]
    async fn concurrent_work_is_bounded_by_the_permits() {
        let hasher = Arc::new(PasswordHasher::new(&PasswordConfig {
            max_concurrent: 1,
            ..cheap()
        }));
        let held = hasher
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("permit");
        let waiting = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.hash(&Secret::new("pw")).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "no permit, no hashing");
        drop(held);
        assert!(waiting.await.expect("task").is_ok());
    }

    #[test]
    fn debug_shows_parameters_only() {
        let hasher = PasswordHasher::new(&cheap());
        let shown = format!("{hasher:?}");
        assert!(shown.contains("m_cost: 64"), "{shown}");
    }
}
