//! SQLite's write-ahead log is checkpointed in the background (`store::wal`), not by the commit
//! that takes it past `wal_autocheckpoint`, which would make every statement behind it wait.

use std::time::{Duration, Instant};

use portcullis::store::{NewUser, Username};

use crate::common::{Backend, TestServer};

/// The database file's size: a checkpoint copies the WAL's pages into it, so it grows then.
fn database_file_len(server: &TestServer) -> u64 {
    let path = server
        .db
        .url
        .strip_prefix("sqlite://")
        .expect("a SQLite URL");
    std::fs::metadata(path).expect("database file").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_in_the_background() {
    let server = TestServer::start(Backend::Sqlite).await;
    let store = server.store();
    let before = database_file_len(&server);
    // A few hundred commits: far below the writer's own checkpoint, so they stay in the WAL.
    for i in 0..300 {
        let user = NewUser {
            username: Username::parse(&format!("wal-user-{i}")).expect("username"),
            password_hash: None,
            claims: Default::default(),
        };
        store
            .insert_user(&user, server.clock_now())
            .await
            .expect("insert user");
    }
    assert_eq!(
        database_file_len(&server),
        before,
        "no checkpoint yet: the commits are in the WAL only"
    );
    let checkpoints = store.spawn_wal_checkpoints().expect("SQLite checkpoints");
    let deadline = Instant::now() + Duration::from_secs(10);
    while database_file_len(&server) == before {
        assert!(
            Instant::now() < deadline,
            "the background checkpoint never copied the WAL into the database file"
        );
        tokio::time::sleep(portcullis::store::wal::INTERVAL).await;
    }
    checkpoints.abort();
    // Everything is still there, read back through the store.
    let users = store.users().await.expect("users");
    let written = users.iter().filter(|u| u.username.starts_with("wal-user-"));
    assert_eq!(written.count(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_pg_tests),
    ignore = "set PORTCULLIS_TEST_POSTGRES_URL to run against PostgreSQL"
)]
async fn postgresql_has_no_wal_task() {
    let server = TestServer::start(Backend::Postgres).await;
    assert!(server.store().spawn_wal_checkpoints().is_none());
}
