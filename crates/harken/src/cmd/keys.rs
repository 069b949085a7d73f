//! `harken keys create|list`: API keys, managed directly in the database (the data dir's SQLite,
//! or PostgreSQL with `--database-url`; works while `harken serve` runs). Only a SHA-256 of each key is stored; the key is printed once, as the
//! last line of `create`'s output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use harken_server::DatabaseUrl;
use harken_store::{Credits, NewKey, Store, StoreLocation};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create an API key and print it (last line of output; it is not shown again).
    Create(CreateArgs),
    /// List keys with their remaining credits (never the keys themselves).
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Directory holding harken's database.
    #[arg(long, env = "HARKEN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL of a scaled-out deployment; the data dir's SQLite without it.
    #[arg(long, env = "HARKEN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,
    /// Credits the key starts with (fractions allowed, to 0.001).
    #[arg(long)]
    pub credits: f64,
    /// A label to recognise the key by in `keys list`.
    #[arg(long)]
    pub name: Option<String>,
    /// Secret for signing callbacks (X-Webhook-Signature); unsigned when absent.
    #[arg(long, env = "HARKEN_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Directory holding harken's database.
    #[arg(long, env = "HARKEN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL of a scaled-out deployment; the data dir's SQLite without it.
    #[arg(long, env = "HARKEN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match args.command {
        KeysCommand::Create(a) => create(a, &mut out).await,
        KeysCommand::List(a) => list(a, &mut out).await,
    }
}

async fn open(data_dir: &Path, database_url: Option<&DatabaseUrl>) -> anyhow::Result<Arc<dyn Store>> {
    let location = StoreLocation::new(database_url.map(|u| u.0.as_str()), data_dir)?;
    harken_store::open_store(&location, true)
        .await
        .with_context(|| format!("opening the database ({})", location.describe()))
}

pub async fn create(args: CreateArgs, out: &mut impl Write) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.credits.is_finite() && args.credits >= 0.0,
        "--credits: expected a number >= 0, received {}",
        args.credits
    );
    if let Some(secret) = &args.webhook_secret {
        anyhow::ensure!(!secret.is_empty(), "--webhook-secret: expected a non-empty secret, received \"\"");
    }
    let store = open(&args.data_dir, args.database_url.as_ref()).await?;
    let signed = args.webhook_secret.is_some();
    let new = NewKey { name: args.name, credits: Credits::from_f64(args.credits), webhook_secret: args.webhook_secret };
    let created = store.create_key(new).await.context("creating the key")?;
    writeln!(
        out,
        "created {} with {} credits; callbacks {}",
        created.key.id,
        created.key.credits,
        if signed { "signed" } else { "unsigned" }
    )?;
    writeln!(out, "the API key follows; it is shown only now:")?;
    writeln!(out, "{}", created.secret)?;
    Ok(())
}

pub async fn list(args: ListArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let store = open(&args.data_dir, args.database_url.as_ref()).await?;
    let keys = store.list_keys().await.context("listing keys")?;
    writeln!(out, "{:<30}  {:<16}  {:>12}  {:>10}  webhook", "id", "name", "credits", "reserved")?;
    for k in keys {
        writeln!(
            out,
            "{:<30}  {:<16}  {:>12}  {:>10}  {}",
            k.id,
            k.name.as_deref().unwrap_or("-"),
            k.available().to_string(),
            k.reserved.to_string(),
            if k.webhook_secret.is_some() { "signed" } else { "-" }
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_prints_the_key_last_and_list_never_shows_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        let args = CreateArgs {
            data_dir: dir.path().into(),
            credits: 12.5,
            name: Some("ci".into()),
            webhook_secret: Some("s".into()),
            database_url: None,
        };
        create(args, &mut out).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        let secret = text.lines().last().unwrap().to_owned();
        assert!(secret.starts_with("hk_"), "{text}");
        let mut out = Vec::new();
        list(ListArgs { data_dir: dir.path().into(), database_url: None }, &mut out).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("12.5") && text.contains("ci") && text.contains("signed"), "{text}");
        assert!(!text.contains(&secret));
    }
}
