//! Choosing the backend from configuration: a PostgreSQL URL, or SQLite in the data dir.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{PostgresStore, Result, SqliteStore, Store, StoreError};

/// Where harken keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// `postgres://...` or `postgresql://...`: shared by any number of nodes.
    Postgres(String),
    /// `<data dir>/harken.db`: one node.
    Sqlite(PathBuf),
}

impl StoreLocation {
    /// PostgreSQL when `database_url` is given, else SQLite in `data_dir`.
    pub fn new(database_url: Option<&str>, data_dir: &Path) -> Result<Self> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok(StoreLocation::Sqlite(data_dir.to_owned())),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(StoreLocation::Postgres(url.to_owned()))
            }
            Some(url) => Err(StoreError::Config(format!(
                "--database-url: expected a postgres:// or postgresql:// URL, received {}",
                crate::postgres::redact_url(url)
            ))),
        }
    }

    /// For logs: the password of a URL is replaced.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Postgres(url) => crate::postgres::redact_url(url),
            StoreLocation::Sqlite(dir) => format!("sqlite in {}", dir.join(crate::sqlite::DB_FILE).display()),
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, StoreLocation::Postgres(_))
    }
}

/// Opens the store. PostgreSQL is migrated only when `migrate` is set (nodes of a deployment may
/// leave that to `harken migrate`); SQLite, a single node's own file, always is.
pub async fn open_store(location: &StoreLocation, migrate: bool) -> Result<Arc<dyn Store>> {
    match location {
        StoreLocation::Postgres(url) => {
            let store = PostgresStore::connect(url).await?;
            if migrate {
                store.migrate().await?;
            }
            Ok(Arc::new(store))
        }
        StoreLocation::Sqlite(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Config(format!("creating the data dir {}: {e}", dir.display())))?;
            Ok(Arc::new(SqliteStore::open_dir(dir).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_follows_the_url() {
        let dir = Path::new("/d");
        assert_eq!(StoreLocation::new(None, dir).unwrap(), StoreLocation::Sqlite(dir.into()));
        assert_eq!(StoreLocation::new(Some(""), dir).unwrap(), StoreLocation::Sqlite(dir.into()));
        let pg = StoreLocation::new(Some("postgres://u:pw@h/db"), dir).unwrap();
        assert!(pg.is_shared());
        assert!(!pg.describe().contains("pw"), "{}", pg.describe());
        let err = StoreLocation::new(Some("mysql://u:pw@h/db"), dir).unwrap_err().to_string();
        assert!(err.contains("--database-url") && !err.contains("pw"), "{err}");
    }
}
