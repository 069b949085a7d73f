//! Black-box tests of `harken serve`: the real binary on a free port with a fresh data dir, real
//! audio (espeak-ng) served from a loopback host, a loopback callback receiver, real Whisper
//! (`tiny.en`; models from `HARKEN_MODELS_DIR` or ~/.cache/harken/models). Quiet unless RUST_LOG
//! is set (then the servers' logs go to stderr).

#[path = "api/helpers.rs"]
mod helpers;

#[path = "api/auth.rs"]
mod auth;
#[path = "api/callbacks.rs"]
mod callbacks;
#[path = "api/capabilities.rs"]
mod capabilities;
#[path = "api/dialects.rs"]
mod dialects;
#[path = "api/downloads.rs"]
mod downloads;
#[path = "api/elevenlabs.rs"]
mod elevenlabs;
#[path = "api/happy.rs"]
mod happy;
#[path = "api/limits.rs"]
mod limits;
#[path = "api/openai.rs"]
mod openai;
#[path = "api/recovery.rs"]
mod recovery;
#[path = "api/scaleout.rs"]
mod scaleout;
#[path = "api/uploads.rs"]
mod uploads;
#[path = "api/validation.rs"]
mod validation;
