//! SASL mechanisms PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login), as one
//! exchange every protocol drives with its own framing (IMAP `+ `, POP3 `+ `, the sync
//! protocol's `+ `, NNTP `383`).
//!
//! The protocol passes in the mechanism name and any initial response (SASL-IR), and
//! then each line the client sent, still base64 encoded; the exchange answers with the
//! next challenge (raw bytes, the protocol base64-encodes them) or the credentials.
//! A client may cancel with `*` (RFC 4422 3.5). Every input is bounded by
//! [`MAX_RESPONSE`], and nothing here allocates more than that.

use base64::Engine;

/// The longest base64 response accepted, in bytes (user name, password and
/// authorization identity of a few hundred bytes each fit easily).
pub const MAX_RESPONSE: usize = 8 * 1024;

/// What a client proved it knows.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The identity to act as; empty when the same as `authcid`.
    pub authzid: String,
    /// The identity whose password this is.
    pub authcid: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// True when an authorization identity other than the authenticated one is asked
    /// for (proxy authorization, which tern does not allow).
    pub fn wants_proxy(&self) -> bool {
        !self.authzid.is_empty() && !self.authzid.eq_ignore_ascii_case(&self.authcid)
    }
}

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The mechanism is not one of PLAIN and LOGIN.
    #[error("unsupported mechanism")]
    UnknownMechanism,
    /// The client sent `*`.
    #[error("authentication cancelled")]
    Cancelled,
    /// Not base64, too long, or not the mechanism's format.
    #[error("malformed {mechanism} response")]
    Malformed {
        /// `PLAIN` or `LOGIN`.
        mechanism: &'static str,
    },
}

/// The mechanisms offered, as advertised (`AUTH=PLAIN AUTH=LOGIN`, `SASL PLAIN LOGIN`).
pub const MECHANISMS: [&str; 2] = ["PLAIN", "LOGIN"];

/// What the protocol does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge (base64-encode it) and pass the client's answer to
    /// [`Exchange::respond`].
    Challenge(Vec<u8>),
    /// The exchange is complete: verify these.
    Done(Credentials),
}

/// One SASL exchange in progress.
#[derive(Debug)]
pub struct Exchange {
    state: State,
}

#[derive(Debug)]
enum State {
    Plain,
    LoginUser,
    LoginPassword { user: String },
    Finished,
}

impl Exchange {
    /// Starts `mechanism` with the client's initial response, if it sent one (`=`
    /// stands for an empty one, RFC 4959).
    pub fn start(mechanism: &str, initial: Option<&[u8]>) -> Result<(Exchange, Step), SaslError> {
        let state = if mechanism.eq_ignore_ascii_case("PLAIN") {
            State::Plain
        } else if mechanism.eq_ignore_ascii_case("LOGIN") {
            State::LoginUser
        } else {
            return Err(SaslError::UnknownMechanism);
        };
        let mut exchange = Exchange { state };
        let step = match initial {
            Some(r) => exchange.respond(r)?,
            None => Step::Challenge(exchange.challenge()),
        };
        Ok((exchange, step))
    }

    fn challenge(&self) -> Vec<u8> {
        match self.state {
            State::LoginUser => b"Username:".to_vec(),
            State::LoginPassword { .. } => b"Password:".to_vec(),
            State::Plain | State::Finished => Vec::new(),
        }
    }

    /// Takes the client's next response (base64, without its line ending).
    pub fn respond(&mut self, line: &[u8]) -> Result<Step, SaslError> {
        if line == b"*" {
            self.state = State::Finished;
            return Err(SaslError::Cancelled);
        }
        let mechanism = match self.state {
            State::Plain => "PLAIN",
            _ => "LOGIN",
        };
        let decoded = decode(line).ok_or(SaslError::Malformed { mechanism })?;
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Plain => parse_plain(&decoded).map(Step::Done),
            State::LoginUser => {
                let user = utf8(decoded, mechanism)?;
                self.state = State::LoginPassword { user };
                Ok(Step::Challenge(self.challenge()))
            }
            State::LoginPassword { user } => Ok(Step::Done(Credentials {
                authzid: String::new(),
                authcid: user,
                password: utf8(decoded, mechanism)?,
            })),
            State::Finished => Err(SaslError::Malformed { mechanism }),
        }
    }
}

/// Base64 of at most [`MAX_RESPONSE`] bytes; `=` alone is the empty response.
fn decode(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.trim_ascii();
    if line.len() > MAX_RESPONSE {
        return None;
    }
    if line == b"=" {
        return Some(Vec::new());
    }
    base64::engine::general_purpose::STANDARD.decode(line).ok()
}

fn utf8(bytes: Vec<u8>, mechanism: &'static str) -> Result<String, SaslError> {
    String::from_utf8(bytes).map_err(|_| SaslError::Malformed { mechanism })
}

/// `authzid NUL authcid NUL password` (RFC 4616 2).
fn parse_plain(decoded: &[u8]) -> Result<Credentials, SaslError> {
    let bad = SaslError::Malformed { mechanism: "PLAIN" };
    let mut parts = decoded.split(|&b| b == 0);
    let (Some(authz), Some(authc), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad);
    };
    if authc.is_empty() {
        return Err(bad);
    }
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| bad.clone());
    Ok(Credentials {
        authzid: text(authz)?,
        authcid: text(authc)?,
        password: text(password)?,
    })
}

/// Base64 for a challenge line.
pub fn encode(challenge: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> Vec<u8> {
        encode(s).into_bytes()
    }

    #[test]
    fn plain_with_initial_response() {
        let (_, step) = Exchange::start("plain", Some(&b64(b"\0alice\0secret"))).unwrap();
        let Step::Done(c) = step else { panic!() };
        assert_eq!(
            (c.authcid.as_str(), c.password.as_str()),
            ("alice", "secret")
        );
        assert!(!c.wants_proxy());
    }

    #[test]
    fn plain_without_initial_response_asks_for_it() {
        let (mut x, step) = Exchange::start("PLAIN", None).unwrap();
        assert_eq!(step, Step::Challenge(Vec::new()));
        let Step::Done(c) = x.respond(&b64(b"bob\0alice\0pw")).unwrap() else {
            panic!()
        };
        assert!(c.wants_proxy());
    }

    #[test]
    fn login_asks_user_then_password() {
        let (mut x, step) = Exchange::start("LOGIN", None).unwrap();
        assert_eq!(step, Step::Challenge(b"Username:".to_vec()));
        assert_eq!(
            x.respond(&b64(b"alice")).unwrap(),
            Step::Challenge(b"Password:".to_vec())
        );
        let Step::Done(c) = x.respond(&b64(b"pw")).unwrap() else {
            panic!()
        };
        assert_eq!((c.authcid.as_str(), c.password.as_str()), ("alice", "pw"));
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(
            Exchange::start("CRAM-MD5", None).err(),
            Some(SaslError::UnknownMechanism)
        );
        for bad in [
            &b"!!!"[..],
            &b64(b"no-nuls"),
            &b64(b"a\0b\0c\0d"),
            &b64(b"\0\0pw"),
            &b64(b"\0\xff\0pw"),
        ] {
            assert!(Exchange::start("PLAIN", Some(bad)).is_err(), "{bad:?}");
        }
        let (mut x, _) = Exchange::start("PLAIN", None).unwrap();
        assert_eq!(x.respond(b"*"), Err(SaslError::Cancelled));
        let long = vec![b'A'; MAX_RESPONSE + 4];
        assert!(Exchange::start("PLAIN", Some(&long)).is_err());
    }

    #[test]
    fn any_bytes_give_an_answer_not_a_panic() {
        let mut seed = 7u64;
        for _ in 0..2000 {
            let len = (seed % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            let _ = Exchange::start("PLAIN", Some(&bytes));
            let _ = Exchange::start("LOGIN", Some(&bytes)).map(|(mut x, _)| x.respond(&bytes));
        }
    }
}
