//! A fresh database per test: a SQLite file in a temporary directory, or a PostgreSQL database
//! created on the server named by PORTCULLIS_TEST_POSTGRES_URL and dropped afterwards.

use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How long creating or dropping a PostgreSQL test database may take.
const DATABASE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>, // (admin URL, database name)
}

pub fn postgres_admin_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
        .ok()
        .or_else(|| option_env!("PORTCULLIS_TEST_POSTGRES_URL").map(str::to_string))
        .filter(|s| !s.is_empty())
        .expect("PORTCULLIS_TEST_POSTGRES_URL is set for the PostgreSQL tests")
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("portcullis.db").display());
                Self {
                    url,
                    backend,
                    _dir: Some(dir),
                    pg: None,
                }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!(
                    "portcullis_test_{}",
                    portcullis::security::random_token(9)
                        .to_lowercase()
                        .replace(['-', '_'], "x")
                );
                let create = async {
                    let mut conn = sqlx::PgConnection::connect(&admin)
                        .await
                        .expect("connect to PostgreSQL admin database");
                    sqlx::query(&format!("CREATE DATABASE {name}"))
                        .execute(&mut conn)
                        .await
                        .expect("create test database");
                    let _ = conn.close().await;
                };
                tokio::time::timeout(DATABASE_LIMIT, create)
                    .await
                    .expect("PostgreSQL creates the test database within 30 s");
                let mut url = url::Url::parse(&admin).expect("admin URL");
                url.set_path(&format!("/{name}"));
                Self {
                    url: url.to_string(),
                    backend,
                    _dir: None,
                    pg: Some((admin, name)),
                }
            }
        }
    }
}

impl TestDatabase {
    /// The same database for a second server (a replica): dropping the handle leaves the
    /// database to its owner, which must outlive it.
    pub fn shared(&self) -> Self {
        Self {
            url: self.url.clone(),
            backend: self.backend,
            _dir: None,
            pg: None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop is synchronous: use a small runtime on its own thread.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let drop = async move {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                        let _ = conn.close().await;
                    }
                };
                // Bounded like every wait of the tests; a database left behind is harmless.
                let _ =
                    runtime.block_on(async { tokio::time::timeout(DATABASE_LIMIT, drop).await });
            })
            .join();
        }
    }
}
