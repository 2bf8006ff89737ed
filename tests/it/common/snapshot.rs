//! "Nothing lost, nothing gained": every row of every table, read into a comparable form, so a
//! hostile test can prove the store holds exactly what it held before the attack.
//!
//! Tables are listed from the database itself (`sqlite_master`, `information_schema.tables`),
//! so a table added by a later migration is covered without touching this file. Each row is
//! rendered by the database as one string (SQLite `quote()` of every column, PostgreSQL
//! `row_to_json`), blobs included, and a table's rows are sorted.

use std::collections::BTreeMap;

use sqlx::Connection;

use super::{Backend, TestServer};

/// Table name → its rows, each rendered as a string, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<String, Vec<String>>);

impl Snapshot {
    /// Read the whole database of `server`.
    pub async fn take(server: &TestServer) -> Self {
        // Audit events are written by a background task: wait for those already recorded, so
        // an event of an earlier, legitimate request is not mistaken for the attack's.
        server.state.audit.flush().await;
        let tables = match server.db.backend {
            Backend::Sqlite => sqlite(&server.db.url).await,
            Backend::Postgres => postgres(&server.db.url).await,
        };
        Self(tables)
    }

    /// The tables whose rows differ between `self` and `after`.
    pub fn changed_tables(&self, after: &Snapshot) -> Vec<String> {
        let names: std::collections::BTreeSet<&String> =
            self.0.keys().chain(after.0.keys()).collect();
        names
            .into_iter()
            .filter(|t| self.0.get(*t) != after.0.get(*t))
            .cloned()
            .collect()
    }

    /// Assert that only `allowed` tables changed; on failure, show the rows that differ.
    pub fn assert_unchanged_except(&self, after: &Snapshot, allowed: &[&str], what: &str) {
        let unexpected: Vec<String> = self
            .changed_tables(after)
            .into_iter()
            .filter(|t| !allowed.contains(&t.as_str()))
            .collect();
        if unexpected.is_empty() {
            return;
        }
        let mut report = String::new();
        for table in &unexpected {
            let empty = Vec::new();
            let before = self.0.get(table).unwrap_or(&empty);
            let now = after.0.get(table).unwrap_or(&empty);
            for row in before.iter().filter(|r| !now.contains(r)) {
                report.push_str(&format!("\n  {table} - {row}"));
            }
            for row in now.iter().filter(|r| !before.contains(r)) {
                report.push_str(&format!("\n  {table} + {row}"));
            }
        }
        panic!("{what}: the store changed in {unexpected:?}:{report}");
    }

    /// Assert that nothing changed at all.
    pub fn assert_unchanged(&self, after: &Snapshot, what: &str) {
        self.assert_unchanged_except(after, &[], what)
    }

    /// The number of rows of `table`.
    pub fn rows(&self, table: &str) -> usize {
        self.0.get(table).map_or(0, Vec::len)
    }
}

async fn sqlite(url: &str) -> BTreeMap<String, Vec<String>> {
    let mut conn = sqlx::SqliteConnection::connect(url)
        .await
        .expect("open the SQLite test database");
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list tables");
    let mut out = BTreeMap::new();
    for (table,) in tables {
        let columns: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(&mut conn)
                .await
                .expect("list columns");
        // quote() renders any value (text, integer, real, blob as X'…', NULL) as a literal.
        let row_expr = columns
            .iter()
            .map(|(c,)| format!("'{c}=' || quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(" || ', ' || ");
        let rows: Vec<(String,)> = sqlx::query_as(&format!("SELECT {row_expr} FROM \"{table}\""))
            .fetch_all(&mut conn)
            .await
            .expect("read rows");
        let mut rows: Vec<String> = rows.into_iter().map(|(r,)| r).collect();
        rows.sort();
        out.insert(table, rows);
    }
    let _ = conn.close().await;
    out
}

async fn postgres(url: &str) -> BTreeMap<String, Vec<String>> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("open the PostgreSQL test database");
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list tables");
    let mut out = BTreeMap::new();
    for (table,) in tables {
        // row_to_json renders every column, bytea as its hex text.
        let rows: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT row_to_json(t)::text FROM \"{table}\" t"))
                .fetch_all(&mut conn)
                .await
                .expect("read rows");
        let mut rows: Vec<String> = rows.into_iter().map(|(r,)| r).collect();
        rows.sort();
        out.insert(table, rows);
    }
    let _ = conn.close().await;
    out
}
