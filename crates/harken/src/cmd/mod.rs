//! One module per subcommand; each exposes `Args` (clap) and `async fn run(Args)`.

pub mod keys;
pub mod migrate;
pub mod models;
pub mod serve;
pub mod transcribe;
