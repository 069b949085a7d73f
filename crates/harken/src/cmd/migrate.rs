//! `harken migrate`: applies the embedded database migrations and exits. With PostgreSQL, run it
//! once per release before starting nodes with `--no-migrate` (or let the first `serve` do it:
//! concurrent runs are serialised by an advisory lock). Migrations keep the previous release
//! working, so nodes can be upgraded one at a time.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use harken_server::DatabaseUrl;
use harken_store::StoreLocation;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// PostgreSQL URL (`postgres://user:password@host:5432/harken`); SQLite in the data dir without it.
    #[arg(long, env = "HARKEN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,
    /// Directory holding the SQLite database (when no database URL is given).
    #[arg(long, env = "HARKEN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    migrate(args, &mut std::io::stdout().lock()).await
}

pub async fn migrate(args: Args, out: &mut impl Write) -> anyhow::Result<()> {
    let location = StoreLocation::new(args.database_url.as_ref().map(|u| u.0.as_str()), &args.data_dir)?;
    harken_store::open_store(&location, true)
        .await
        .with_context(|| format!("migrating the database ({})", location.describe()))?;
    writeln!(out, "harken: database is up to date ({})", location.describe())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrates_sqlite_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        migrate(Args { database_url: None, data_dir: dir.path().into() }, &mut out).await.unwrap();
        assert!(dir.path().join("harken.db").exists());
        assert!(String::from_utf8(out).unwrap().contains("up to date"));
        let bad = Args { database_url: Some(DatabaseUrl("mysql://x".into())), data_dir: dir.path().into() };
        assert!(migrate(bad, &mut Vec::new()).await.unwrap_err().to_string().contains("--database-url"));
    }
}
