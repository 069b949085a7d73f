//! A throwaway database on the PostgreSQL server the tests use.

use std::process::Command;

/// The server's admin URL: `HARKEN_TEST_PG`, default `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn admin_url() -> String {
    std::env::var("HARKEN_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Runs one statement as the admin with `psql` (no driver needed, and it works from `Drop`).
fn psql(sql: &str) {
    let admin = admin_url();
    let out = Command::new("psql").args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &admin, "-c", sql]).output();
    let out = out.expect("psql is installed (scripts/install-deps installs postgresql-client)");
    assert!(
        out.status.success(),
        "psql {sql} on {admin} (PostgreSQL must run there; scripts/test checks it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A database (`harken_test_<random>`) that exists while this value lives.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    /// Its URL, on the same server as [`admin_url`].
    pub url: String,
}

impl TestDb {
    pub fn create() -> TestDb {
        let name = format!("harken_test_{:016x}", random_u64());
        psql(&format!("CREATE DATABASE {name}"));
        let admin = admin_url();
        let server = admin.rsplit_once('/').expect("HARKEN_TEST_PG: a URL with a database path").0;
        TestDb { url: format!("{server}/{name}"), name }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// Unique enough for database names: std's per-process random hasher keys, fed the clock.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    h.finish()
}
