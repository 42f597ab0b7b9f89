//! Recognising a literal announcement (`{n}`, `{n+}`, `~{n}`, `~{n+}`) at the end of
//! a line, byte by byte, so that [`CommandReader`](super::CommandReader) never has to
//! look back over a line it has already buffered (or thrown away).

/// A literal announcement at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Announce {
    pub(super) size: u64,
    pub(super) binary: bool,
    pub(super) nonsync: bool,
}

/// Streaming recogniser of a literal announcement (`{n}`, `{n+}`, `~{n}`, `~{n+}`)
/// ending a line. It is fed every byte of a line before its LF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Scan {
    #[default]
    Other,
    Tilde,
    Digits {
        binary: bool,
        size: u64,
        any: bool,
    },
    Plus {
        binary: bool,
        size: u64,
    },
    Close(Announce),
    CloseCr(Announce),
}

impl Scan {
    pub(super) fn step(self, b: u8) -> Scan {
        match (self, b) {
            (Scan::Tilde, b'{') => Scan::Digits {
                binary: true,
                size: 0,
                any: false,
            },
            (_, b'{') => Scan::Digits {
                binary: false,
                size: 0,
                any: false,
            },
            (_, b'~') => Scan::Tilde,
            (Scan::Digits { binary, size, .. }, b'0'..=b'9') => Scan::Digits {
                binary,
                size: size.saturating_mul(10).saturating_add(u64::from(b - b'0')),
                any: true,
            },
            (
                Scan::Digits {
                    binary,
                    size,
                    any: true,
                },
                b'+',
            ) => Scan::Plus { binary, size },
            (
                Scan::Digits {
                    binary,
                    size,
                    any: true,
                },
                b'}',
            ) => Scan::Close(Announce {
                size,
                binary,
                nonsync: false,
            }),
            (Scan::Plus { binary, size }, b'}') => Scan::Close(Announce {
                size,
                binary,
                nonsync: true,
            }),
            (Scan::Close(a), b'\r') => Scan::CloseCr(a),
            _ => Scan::Other,
        }
    }

    pub(super) fn announce(self) -> Option<Announce> {
        match self {
            Scan::Close(a) | Scan::CloseCr(a) => Some(a),
            _ => None,
        }
    }
}
