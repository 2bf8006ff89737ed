//! Single use of JWT ids (client assertions, DPoP proofs, request objects), group-committed:
//! requests hand their id to one background writer, which records every id queued meanwhile in
//! one INSERT (`Store::use_jtis`) and answers each request whether its id was new.
//!
//! The database decides, as before: an id is accepted once on every replica until it expires,
//! because the INSERT lets it through once; nothing is remembered in memory. What the batch
//! saves is the cost around the decision. On SQLite, where writes go through one connection,
//! one id per request was one more statement, one more transaction (its WAL frames) and two more
//! thread hand-offs per request; a batch pays them once for all the requests queued while the
//! previous batch was written, and the writer yields once before it takes a batch so that the
//! requests ready to run can join it (docs/performance.md, issue 21). A lone request waits for
//! one statement, as before; the writer waits on no timer.

use tokio::sync::{mpsc, oneshot};

use crate::clock::UnixTime;
use crate::error::Error;
use crate::store::{BatchFailure, JtiKind, JtiUse, Store};

/// Ids recorded at most this many per INSERT (4 parameters each: well under either
/// database's limit).
const BATCH: usize = 256;

/// Requests that may wait for room in the queue beyond this.
const QUEUE: usize = 1024;

/// The handle requests record ids through. Cheap to clone.
#[derive(Clone)]
pub struct UsedJtis {
    sender: mpsc::Sender<Claim>,
}

struct Claim {
    used: JtiUse,
    now: UnixTime,
    done: oneshot::Sender<Result<bool, BatchFailure>>,
}

impl UsedJtis {
    /// Start the background writer on the current tokio runtime.
    pub fn start(store: Store) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, receiver));
        Self { sender }
    }

    /// Record `jti` of `issuer` as used until `expires_at`: `true` for its first use on any
    /// replica, `false` for a replay. Waits until the database has answered; the id is recorded
    /// even if the caller stops waiting.
    pub async fn first_use(
        &self,
        kind: JtiKind,
        issuer: &str,
        jti: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, Error> {
        let (done, answer) = oneshot::channel();
        let stopped = || Error::internal("the used JWT ids writer stopped");
        let claim = Claim {
            used: JtiUse {
                kind,
                issuer: issuer.to_string(),
                jti: jti.to_string(),
                expires_at,
            },
            now,
            done,
        };
        self.sender.send(claim).await.map_err(|_| stopped())?;
        match answer.await {
            Ok(Ok(first)) => Ok(first),
            Ok(Err(failed)) => Err(failed.into_error("used JWT ids")),
            Err(_) => Err(stopped()),
        }
    }
}

async fn write_batches(store: Store, mut receiver: mpsc::Receiver<Claim>) {
    let mut batch: Vec<Claim> = Vec::with_capacity(BATCH);
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        // Let the requests that are ready to run reach their own claim first: on a busy core
        // the database thread would otherwise wake at once for this one id (1.1 ids per batch
        // under the benchmark's load, 12 with the yield). Not a timer: with nothing else ready
        // it returns at once.
        tokio::task::yield_now().await;
        // Whatever queued while the previous batch was written goes in this one.
        while batch.len() < BATCH {
            match receiver.try_recv() {
                Ok(claim) => batch.push(claim),
                Err(_) => break,
            }
        }
        let uses: Vec<JtiUse> = batch.iter().map(|c| c.used.clone()).collect();
        // The earliest clock of the batch: an entry is taken over only if it expired for every
        // request in it (a replay is never let through by another request's later clock).
        let now = batch.iter().map(|c| c.now).min().unwrap_or_default();
        match store.use_jtis(&uses, now).await {
            Ok(firsts) => {
                for (claim, first) in batch.drain(..).zip(firsts) {
                    let _ = claim.done.send(Ok(first));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, ids = batch.len(), "cannot record used JWT ids");
                let failed = BatchFailure::of(&e);
                for claim in batch.drain(..) {
                    let _ = claim.done.send(Err(failed.clone()));
                }
            }
        }
        // Any claim left (none: one answer per id) would be dropped, and its request told the
        // writer stopped rather than wait for ever.
        batch.clear();
    }
}
