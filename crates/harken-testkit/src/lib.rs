//! Real services for harken's integration tests, shared by the crates that need them: a fresh
//! PostgreSQL database per test ([`TestDb`]) and moto's S3-compatible server on a loopback port
//! ([`S3`]). Both are cleaned up when the value is dropped. `scripts/install-deps` installs
//! what they run (`psql`, moto's venv); `scripts/test` checks PostgreSQL is up.

mod postgres;
mod s3;

pub use postgres::{admin_url, TestDb};
pub use s3::S3;
