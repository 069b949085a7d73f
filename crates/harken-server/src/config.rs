//! `ServerConfig`: every setting of `harken serve`, defined once. Flags override environment
//! variables, which override the defaults written here; `--help` shows these doc comments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use harken_store::{Credits, RetrySchedule};

#[derive(Debug, Clone, clap::Args)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free port; the URL is printed on stdout).
    #[arg(long, env = "HARKEN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory holding the SQLite database and temporary downloads.
    #[arg(long, env = "HARKEN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Allow audio and callback URLs that resolve to private, loopback or link-local addresses.
    /// Only for tests and trusted single-user setups.
    #[arg(long, env = "HARKEN_ALLOW_PRIVATE_URLS")]
    pub allow_private_urls: bool,
    /// In-process workers (tasks transcribed at once). Inference already uses every core, so
    /// more than 1 only helps when downloads dominate.
    #[arg(long, env = "HARKEN_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// New tasks a key may create per rate window.
    #[arg(long, env = "HARKEN_RATE_LIMIT", default_value_t = 20)]
    pub rate_limit: u32,
    /// Length of the rate window, in seconds.
    #[arg(long, env = "HARKEN_RATE_WINDOW_SECS", default_value_t = 10)]
    pub rate_window_secs: u64,
    /// Credits charged per minute of audio (billed per second, rounded up to 0.001 credit).
    #[arg(long, env = "HARKEN_CREDITS_PER_MINUTE", default_value_t = 1.0)]
    pub credits_per_minute: f64,
    /// Delays in seconds before each callback retry, comma-separated (Kie.ai: 1, 5, 15 minutes).
    #[arg(long, env = "HARKEN_CALLBACK_RETRY_SECS", value_delimiter = ',', default_value = "60,300,900")]
    pub callback_retry_secs: Vec<u64>,
    /// Seconds a callback receiver has to answer.
    #[arg(long, env = "HARKEN_CALLBACK_TIMEOUT_SECS", default_value_t = 15)]
    pub callback_timeout_secs: u64,
    /// Seconds a worker's lease on a task lasts without a heartbeat; after that the task is
    /// handed to another worker (this is how a crashed server's tasks come back).
    #[arg(long, env = "HARKEN_LEASE_SECS", default_value_t = 30)]
    pub lease_secs: u64,
    /// Claims of one task before it fails for good (a task that crashes the server every time
    /// must not crash it forever).
    #[arg(long, env = "HARKEN_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,
    /// Largest audio download, in megabytes.
    #[arg(long, env = "HARKEN_MAX_AUDIO_MB", default_value_t = 200)]
    pub max_audio_mb: u64,
    /// Longest whole audio download, in seconds.
    #[arg(long, env = "HARKEN_DOWNLOAD_TIMEOUT_SECS", default_value_t = 600)]
    pub download_timeout_secs: u64,
    /// What this process runs: `all` (API and workers), `api` (HTTP only) or `worker` (workers and
    /// the callback dispatcher, no HTTP). Any number of each may share one PostgreSQL database.
    #[arg(long, env = "HARKEN_ROLE", value_enum, default_value = "all")]
    pub role: Role,
    /// Worker nodes only: serve `/healthz` and `/metrics`, and nothing else, on this address (for
    /// probes and Prometheus). The other roles serve both on `--listen`.
    #[arg(long, env = "HARKEN_OPS_LISTEN")]
    pub ops_listen: Option<SocketAddr>,
    /// PostgreSQL URL shared by every node (`postgres://user:password@host:5432/harken`); without
    /// it, SQLite in the data dir (one node).
    #[arg(long, env = "HARKEN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,
    /// Do not apply database migrations at start (run `harken migrate` before starting nodes).
    #[arg(long, env = "HARKEN_NO_MIGRATE")]
    pub no_migrate: bool,
    /// Where files every node must see (uploads) are kept: `s3://bucket[/prefix]` (credentials and
    /// region from the AWS_* environment variables) or `file:///dir`; `<data dir>/files` without it.
    #[arg(long, env = "HARKEN_OBJECT_STORE_URL")]
    pub object_store_url: Option<String>,
    /// Endpoint of an S3-compatible service (MinIO, Ceph, ...), e.g. `http://10.0.0.5:9000`.
    #[arg(long, env = "HARKEN_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Seconds given to in-flight requests and lease releases at shutdown.
    #[arg(long, env = "HARKEN_SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,
    /// Synchronous ElevenLabs/OpenAI requests that may wait for their transcript at once; one
    /// more is refused with 429 instead of piling up.
    #[arg(long, env = "HARKEN_MAX_SYNC_REQUESTS", default_value_t = 16)]
    pub max_sync_requests: usize,
    /// Longest a synchronous request waits for its transcript, in seconds (the task goes on after).
    #[arg(long, env = "HARKEN_SYNC_TIMEOUT_SECS", default_value_t = 3600)]
    pub sync_timeout_secs: u64,
    /// Where ElevenLabs-dialect requests with `webhook=true` deliver their transcript.
    #[arg(long, env = "HARKEN_ELEVENLABS_WEBHOOK_URL")]
    pub elevenlabs_webhook_url: Option<String>,
    /// Secret signing those deliveries (`ElevenLabs-Signature: t=...,v0=<hex HMAC-SHA256>`).
    #[arg(long, env = "HARKEN_ELEVENLABS_WEBHOOK_SECRET", hide_env_values = true)]
    pub elevenlabs_webhook_secret: Option<String>,
    /// How long uploaded files are kept: a number with s, m, h or d (Kie.ai keeps them 3 days).
    #[arg(long, env = "HARKEN_FILE_TTL", default_value = "3d", value_parser = parse_ttl)]
    pub file_ttl: Duration,
    /// Largest uploaded file, in megabytes.
    #[arg(long, env = "HARKEN_MAX_UPLOAD_MB", default_value_t = 200)]
    pub max_upload_mb: u64,
    /// The URL clients reach this server at (e.g. https://stt.example.com), used in uploaded
    /// files' download links. Default: each upload request's Host (or X-Forwarded-Host/-Proto).
    #[arg(long, env = "HARKEN_PUBLIC_URL")]
    pub public_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: ServerConfig,
        }
        Wrapper::try_parse_from(["harken"]).expect("the defaults parse").config
    }
}

impl ServerConfig {
    /// Checks settings that clap's types cannot, naming the bad one.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.workers >= 1, "--workers: expected at least 1, received 0");
        anyhow::ensure!(self.rate_limit >= 1, "--rate-limit: expected at least 1, received 0");
        anyhow::ensure!(self.rate_window_secs >= 1, "--rate-window-secs: expected at least 1, received 0");
        anyhow::ensure!(
            self.credits_per_minute.is_finite() && self.credits_per_minute >= 0.0,
            "--credits-per-minute: expected a number >= 0, received {}",
            self.credits_per_minute
        );
        anyhow::ensure!(self.lease_secs >= 2, "--lease-secs: expected at least 2, received {}", self.lease_secs);
        anyhow::ensure!(self.max_attempts >= 1, "--max-attempts: expected at least 1, received 0");
        anyhow::ensure!(self.max_audio_mb >= 1, "--max-audio-mb: expected at least 1, received 0");
        anyhow::ensure!(self.max_sync_requests >= 1, "--max-sync-requests: expected at least 1, received 0");
        if let Some(url) = &self.elevenlabs_webhook_url {
            let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            anyhow::ensure!(ok, "--elevenlabs-webhook-url: expected an http(s) URL, received {url:?}");
        }
        anyhow::ensure!(
            self.ops_listen.is_none() || self.role == Role::Worker,
            "--ops-listen: only for worker nodes (--role worker); this role serves /healthz and /metrics on --listen"
        );
        anyhow::ensure!(self.max_upload_mb >= 1, "--max-upload-mb: expected at least 1, received 0");
        if let Some(url) = &self.public_url {
            let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            anyhow::ensure!(ok, "--public-url: expected an http(s) URL such as https://stt.example.com, received {url:?}");
        }
        Ok(())
    }

    /// Where the database is: PostgreSQL when `--database-url` is set, else SQLite in the data dir.
    pub fn store_location(&self) -> anyhow::Result<harken_store::StoreLocation> {
        Ok(harken_store::StoreLocation::new(self.database_url.as_ref().map(|u| u.0.as_str()), &self.data_dir)?)
    }

    /// The object store for shared files (`--object-store-url`, default `<data dir>/files`).
    pub fn blobs(&self) -> anyhow::Result<harken_store::blobs::Blobs> {
        Ok(harken_store::blobs::Blobs::open(
            self.object_store_url.as_deref(),
            self.s3_endpoint.as_deref(),
            &self.data_dir,
        )?)
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }

    pub fn rate_window(&self) -> Duration {
        Duration::from_secs(self.rate_window_secs)
    }

    pub fn retry_schedule(&self) -> RetrySchedule {
        RetrySchedule(self.callback_retry_secs.iter().map(|s| Duration::from_secs(*s)).collect())
    }

    /// The price of `duration_s` seconds of audio, rounded up to a thousandth of a credit.
    pub fn cost_of(&self, duration_s: f64) -> Credits {
        let millis = (duration_s.max(0.0) * self.credits_per_minute * 1000.0 / 60.0).ceil();
        Credits::from_millis(millis as i64)
    }
}

/// What a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    /// The HTTP API and the workers in one process.
    #[default]
    All,
    /// The HTTP API only: tasks are queued for worker nodes.
    Api,
    /// Workers, the lease reaper and the callback dispatcher; no HTTP.
    Worker,
}

impl Role {
    pub fn serves_http(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }
    pub fn runs_workers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

/// A database URL whose password never reaches logs (`Debug` redacts it).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&harken_store::postgres::redact_url(&self.0))
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DatabaseUrl(s.to_owned()))
    }
}

/// `90s`, `15m`, `72h`, `3d`, or bare seconds; at least one second.
fn parse_ttl(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: u64 = number.parse().map_err(|_| format!("expected a number with s, m, h or d (e.g. 3d), received {raw:?}"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("expected a number with s, m, h or d (e.g. 3d), received {raw:?}")),
    };
    if secs == 0 {
        return Err("expected at least 1 s, received 0".to_owned());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let c = ServerConfig::default();
        c.validate().unwrap();
        assert_eq!((c.rate_limit, c.rate_window_secs, c.callback_timeout_secs), (20, 10, 15));
        assert_eq!(c.callback_retry_secs, vec![60, 300, 900]);
        assert_eq!(c.cost_of(60.0), Credits::from_f64(1.0));
        assert_eq!(c.cost_of(1.0), Credits::from_millis(17), "rounded up");
        assert_eq!((c.file_ttl, c.max_upload_mb), (Duration::from_secs(3 * 86_400), 200));
    }

    #[test]
    fn file_ttl_reads_units() {
        assert_eq!(parse_ttl("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("72h"), Ok(Duration::from_secs(3 * 86_400)));
        assert!(parse_ttl("3 weeks").is_err() && parse_ttl("0d").is_err() && parse_ttl("d").is_err());
    }

    #[test]
    fn database_url_is_redacted_in_logs_and_roles_parse() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: ServerConfig,
        }
        let c = Wrapper::try_parse_from(["harken", "--database-url", "postgres://u:hunter2@db/h", "--role", "api"])
            .unwrap()
            .config;
        assert_eq!(c.role, Role::Api);
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(c.store_location().unwrap().is_shared());
        assert_eq!(ServerConfig::default().role, Role::All);
    }

    #[test]
    fn only_workers_take_an_ops_address() {
        let ops = Some("127.0.0.1:9100".parse().unwrap());
        ServerConfig { role: Role::Worker, ops_listen: ops, ..ServerConfig::default() }.validate().unwrap();
        let err = ServerConfig { role: Role::All, ops_listen: ops, ..ServerConfig::default() }.validate().unwrap_err();
        assert!(err.to_string().starts_with("--ops-listen: only for worker nodes"), "{err}");
    }

    #[test]
    fn allow_private_urls_reads_the_environment() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: ServerConfig,
        }
        std::env::set_var("HARKEN_ALLOW_PRIVATE_URLS", "true");
        let on = Wrapper::try_parse_from(["harken"]).unwrap().config.allow_private_urls;
        std::env::set_var("HARKEN_ALLOW_PRIVATE_URLS", "false");
        let off = Wrapper::try_parse_from(["harken"]).unwrap().config.allow_private_urls;
        std::env::remove_var("HARKEN_ALLOW_PRIVATE_URLS");
        assert!(on && !off);
    }
}
