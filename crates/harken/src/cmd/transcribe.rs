//! `harken transcribe FILE|URL`: the engine without a server.

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Audio files or http(s) URLs.
    #[arg(required = true)]
    pub inputs: Vec<String>,
}

pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
