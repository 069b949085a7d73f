//! Wire types shared by every layer of harken: the transcript (ElevenLabs Scribe format),
//! Kie.ai task states, the response envelope and its codes.
//!
//! Nothing here performs I/O. Anything two crates must agree on byte for byte lives here.

mod envelope;
mod language;
mod task;
mod transcript;

pub use envelope::{Code, Envelope};
pub use language::{iso639_1_to_3, iso639_3_to_1, normalize_language_code};
pub use task::TaskState;
pub use transcript::{Transcript, Word, WordKind};
