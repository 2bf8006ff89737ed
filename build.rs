//! Marks the PostgreSQL half of the test suite as runnable when a test database URL is set at
//! build time; otherwise those tests are listed as ignored, with the reason, by `cargo test`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(portcullis_pg_tests)");
    println!("cargo::rerun-if-env-changed=PORTCULLIS_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-changed=migrations");
    if std::env::var_os("PORTCULLIS_TEST_POSTGRES_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=portcullis_pg_tests");
    }
}
