//! Small nom glue: a parse error that remembers where it happened, so every
//! decode error can carry its byte offset.

use nom::error::{ErrorKind, ParseError};

/// A nom error that records how many input bytes were left when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    pub remaining: usize,
}

impl ParseError<&[u8]> for Short {
    fn from_error_kind(input: &[u8], _kind: ErrorKind) -> Self {
        Short { remaining: input.len() }
    }

    fn append(_input: &[u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type PResult<'a, T> = nom::IResult<&'a [u8], T, Short>;

/// Offset inside `whole` (whose first byte is at message offset `base`) where a
/// parse of `whole` stopped with `err`.
pub(crate) fn failed_at(base: usize, whole: &[u8], err: nom::Err<Short>) -> usize {
    match err {
        nom::Err::Error(s) | nom::Err::Failure(s) => base + whole.len() - s.remaining.min(whole.len()),
        nom::Err::Incomplete(_) => base + whole.len(),
    }
}
