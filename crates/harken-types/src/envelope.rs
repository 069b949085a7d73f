//! The Kie.ai response envelope: `{"code": <int>, "msg": "<text>", "data": <object|null>}`.
//!
//! The HTTP status is 200 for every answered request; clients read `code`.

use serde::{Deserialize, Serialize};

/// Outcome codes carried in the envelope's `code` field (DESIGN.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    Success,
    BadRequest,
    Unauthorized,
    InsufficientCredits,
    NotFound,
    Validation,
    RateLimited,
    Unavailable,
    ServerError,
    GenerationFailed,
    FeatureDisabled,
}

impl Code {
    /// The number that goes on the wire.
    pub const fn as_u16(self) -> u16 {
        match self {
            Code::Success => 200,
            Code::BadRequest => 400,
            Code::Unauthorized => 401,
            Code::InsufficientCredits => 402,
            Code::NotFound => 404,
            Code::Validation => 422,
            Code::RateLimited => 429,
            Code::Unavailable => 455,
            Code::ServerError => 500,
            Code::GenerationFailed => 501,
            Code::FeatureDisabled => 505,
        }
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.as_u16())
    }
}

/// One response body, whatever the endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Envelope<T> {
    pub code: u16,
    pub msg: String,
    pub data: Option<T>,
}

impl<T> Envelope<T> {
    pub fn success(data: T) -> Self {
        Envelope { code: Code::Success.as_u16(), msg: "success".to_owned(), data: Some(data) }
    }

    pub fn error(code: Code, msg: impl Into<String>) -> Self {
        Envelope { code: code.as_u16(), msg: msg.into(), data: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelope_has_null_data() {
        let e: Envelope<()> = Envelope::error(Code::Validation, "recordInfo is null");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":422,"msg":"recordInfo is null","data":null}"#
        );
    }
}
