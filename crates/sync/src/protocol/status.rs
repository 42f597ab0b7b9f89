//! Status responses as typed values: a command's tagged result ([`Completion`]), the
//! untagged `* OK` greeting and `* BYE` ([`encode_bye`]), and the capability list
//! ([`Capabilities`]), so that the server writes no status line by hand either.

use super::codes::Code;
use super::tokens::{atom_or_string, Malformed};
use crate::wire::{Encoder, Status, Token};

/// A command's tagged result: `tag OK|NO|BAD [code] text` (also the untagged
/// `* OK [code] text` of the greeting, with tag `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// OK, NO or BAD.
    pub status: Status,
    /// The response code, if any.
    pub code: Option<Code>,
    /// The human-readable rest (for OK, the verb answered). Encoded with CR and LF
    /// replaced by spaces, so it can never end the line early.
    pub text: String,
}

impl Completion {
    /// `OK [code] text`.
    pub fn ok(code: Option<Code>, text: impl Into<String>) -> Completion {
        Completion {
            status: Status::Ok,
            code,
            text: text.into(),
        }
    }

    /// `NO [code] text`.
    pub fn no(code: Option<Code>, text: impl Into<String>) -> Completion {
        Completion {
            status: Status::No,
            code,
            text: text.into(),
        }
    }

    /// `BAD [code] text`.
    pub fn bad(code: Option<Code>, text: impl Into<String>) -> Completion {
        Completion {
            status: Status::Bad,
            code,
            text: text.into(),
        }
    }

    /// Encodes `tag STATUS [code] text` CRLF; `tag` is `*` for an untagged status.
    pub fn encode(&self, enc: &mut Encoder, tag: &str) {
        // Not `atom`: `*` is no atom character.
        enc.raw(tag).raw(match self.status {
            Status::Ok => " OK",
            Status::No => " NO",
            Status::Bad => " BAD",
        });
        if let Some(code) = &self.code {
            enc.sp();
            code.encode(enc);
        }
        if !self.text.is_empty() {
            enc.sp().raw(&self.text.replace(['\r', '\n'], " "));
        }
        enc.crlf();
    }

    /// Decodes the parts of a tagged (or untagged status) response as the wire reader
    /// hands them ([`Code::parse`] keeps a code it cannot read as [`Code::Other`]).
    pub fn parse(status: Status, code: Option<&(String, Vec<Token>)>, text: &str) -> Completion {
        Completion {
            status,
            code: code.map(|(name, args)| Code::parse(name, args)),
            text: text.to_owned(),
        }
    }
}

/// Encodes `* BYE text` CRLF (CR and LF in `text` become spaces).
pub fn encode_bye(enc: &mut Encoder, text: &str) {
    enc.raw("* BYE ")
        .raw(&text.replace(['\r', '\n'], " "))
        .crlf();
}

/// The server's capabilities: `* CAPABILITY cap ...`, and the greeting's
/// `[CAPABILITY ...]` ([`Code::Capability`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities(pub Vec<String>);

impl Capabilities {
    /// True when `cap` is listed (case-insensitive).
    pub fn has(&self, cap: &str) -> bool {
        self.0.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// Decodes the arguments of `* CAPABILITY`.
    pub fn parse(args: &[Token]) -> Result<Capabilities, Malformed> {
        args.iter()
            .map(|t| atom_or_string(Some(t), "capability"))
            .collect::<Result<_, _>>()
            .map(Capabilities)
    }

    /// Encodes `* CAPABILITY ...` CRLF.
    pub fn encode(&self, enc: &mut Encoder) {
        enc.raw("* CAPABILITY");
        for c in &self.0 {
            enc.sp().string(c);
        }
        enc.crlf();
    }
}
