//! TCP reassembly of each direction of each connection (duplicates dropped,
//! out-of-order segments put back in place), then BGP framing (RFC 4271 §4.1)
//! with resynchronisation when the capture starts mid-stream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bgp_proto::framing::{next_message_len, HEADER_LEN, MAX_EXTENDED_MESSAGE_LEN};

use crate::link::TcpSegment;
use crate::{CaptureWarning, CapturedMessage};

/// Turns 32-bit sequence numbers into a 64-bit stream position, so streams
/// longer than 4 GiB and wrap-around work (RFC 9293 §3.4: comparisons are modulo 2^32).
struct SeqUnwrapper {
    last_raw: u32,
    last: i64,
}

impl SeqUnwrapper {
    fn new(anchor: u32) -> Self {
        SeqUnwrapper {
            last_raw: anchor,
            last: 0,
        }
    }

    fn unwrap(&mut self, seq: u32) -> i64 {
        let delta = i64::from(seq.wrapping_sub(self.last_raw) as i32);
        self.last += delta;
        self.last_raw = seq;
        self.last
    }
}

struct Segment<'a> {
    /// Unwrapped sequence number of the first payload byte.
    position: i64,
    payload: &'a [u8],
    timestamp: Duration,
}

/// One direction of one TCP connection.
struct Stream<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    seq: SeqUnwrapper,
    /// Raw and unwrapped sequence number of the SYN, when it was captured.
    syn: Option<(u32, i64)>,
    segments: Vec<Segment<'a>>,
}

/// Every stream seen so far; `current` maps a direction to its latest stream.
#[derive(Default)]
pub(crate) struct Streams<'a> {
    streams: Vec<Stream<'a>>,
    current: HashMap<(SocketAddr, SocketAddr), usize>,
}

impl<'a> Streams<'a> {
    /// Files a segment under its stream (a SYN on a used address pair starts a new one).
    pub(crate) fn add_segment(&mut self, seg: TcpSegment<'a>, timestamp: Duration) {
        let key = (seg.src, seg.dst);
        let existing = self.current.get(&key).copied();
        let index = match existing {
            Some(i) if !seg.syn => i,
            Some(i)
                if self.streams[i].segments.is_empty()
                    && !matches!(self.streams[i].syn, Some((raw, _)) if raw != seg.seq) =>
            {
                // Retransmitted SYN, or a SYN for a stream with no data yet.
                i
            }
            _ => {
                // First sight of this direction, or a new connection (SYN)
                // reusing the address/port pair.
                self.streams.push(Stream {
                    src: seg.src,
                    dst: seg.dst,
                    seq: SeqUnwrapper::new(seg.seq),
                    syn: None,
                    segments: Vec::new(),
                });
                let i = self.streams.len() - 1;
                self.current.insert(key, i);
                i
            }
        };
        let stream = &mut self.streams[index];
        let mut position = stream.seq.unwrap(seg.seq);
        if seg.syn {
            stream.syn = Some((seg.seq, position));
            // The SYN occupies one sequence number (RFC 9293 §3.4).
            position += 1;
        }
        if !seg.payload.is_empty() {
            stream.segments.push(Segment {
                position,
                payload: seg.payload,
                timestamp,
            });
        }
    }

    /// Complete messages of all streams, ordered by capture time.
    pub(crate) fn into_messages(self, warnings: &mut Vec<CaptureWarning>) -> Vec<CapturedMessage> {
        let mut messages = Vec::new();
        for stream in self.streams {
            stream.assemble(&mut messages, warnings);
        }
        // Stable: messages of one stream keep their order when timestamps tie.
        messages.sort_by_key(|m| m.timestamp);
        messages
    }
}

impl Stream<'_> {
    /// Reassembles the byte stream and splits it into messages.
    fn assemble(mut self, messages: &mut Vec<CapturedMessage>, warnings: &mut Vec<CaptureWarning>) {
        if self.segments.is_empty() {
            return;
        }
        // Stable sort: of two segments starting at the same place, the one
        // captured first wins and the retransmission is dropped.
        self.segments.sort_by_key(|s| s.position);
        let start = match self.syn {
            Some((_, syn)) => syn + 1,
            None => self.segments[0].position,
        };

        let mut bytes: Vec<u8> = Vec::new();
        // (end of the contiguous bytes, time they were all there)
        let mut arrivals: Vec<(usize, Duration)> = Vec::new();
        let mut cursor = start;
        let mut latest = Duration::ZERO;
        let mut gap = false;
        for seg in &self.segments {
            let end = seg.position + seg.payload.len() as i64;
            if end <= cursor {
                continue; // duplicate or retransmission of bytes we have
            }
            if seg.position > cursor {
                warnings.push(CaptureWarning::StreamGap {
                    src: self.src,
                    dst: self.dst,
                    offset: (cursor - start) as u64,
                    missing: (seg.position - cursor) as u64,
                });
                gap = true;
                break;
            }
            let skip = (cursor - seg.position) as usize;
            bytes.extend_from_slice(seg.payload.get(skip..).unwrap_or_default());
            latest = latest.max(seg.timestamp);
            arrivals.push((bytes.len(), latest));
            cursor = end;
        }

        let mut pos = 0usize;
        if self.syn.is_none() {
            // Mid-connection capture: the first bytes may be the tail of a message.
            let first = first_header(&bytes);
            if first > 0 {
                warnings.push(CaptureWarning::SkippedLeadingBytes {
                    src: self.src,
                    dst: self.dst,
                    skipped: first as u64,
                });
            }
            pos = first;
        }
        loop {
            let rest = bytes.get(pos..).unwrap_or_default();
            match next_message_len(rest, MAX_EXTENDED_MESSAGE_LEN) {
                Ok(Some(len)) => {
                    let end = pos + len;
                    let idx = arrivals.partition_point(|&(e, _)| e < end);
                    let timestamp = arrivals.get(idx).map_or(latest, |&(_, t)| t);
                    messages.push(CapturedMessage {
                        src: self.src,
                        dst: self.dst,
                        timestamp,
                        bytes: rest[..len].to_vec(),
                    });
                    pos = end;
                }
                Ok(None) => {
                    if !rest.is_empty() && !gap {
                        warnings.push(CaptureWarning::IncompleteMessage {
                            src: self.src,
                            dst: self.dst,
                            offset: pos as u64,
                            pending: rest.len(),
                        });
                    }
                    break;
                }
                Err(error) => {
                    warnings.push(CaptureWarning::Framing {
                        src: self.src,
                        dst: self.dst,
                        offset: pos as u64,
                        error,
                    });
                    break;
                }
            }
        }
    }
}

/// Offset of the first plausible BGP header (16 x 0xff, then a length whose
/// high byte is not 0xff, so a longer run of 0xff is skipped to its end), or
/// the buffer length when there is none.
pub(crate) fn first_header(bytes: &[u8]) -> usize {
    if bytes.len() < HEADER_LEN {
        return if bytes.iter().all(|&b| b == 0xff) {
            0
        } else {
            bytes.len()
        };
    }
    (0..=bytes.len() - HEADER_LEN)
        .find(|&i| {
            bytes[i..i + 16].iter().all(|&b| b == 0xff)
                && bytes[i + 16] != 0xff
                && usize::from(u16::from_be_bytes([bytes[i + 16], bytes[i + 17]])) >= HEADER_LEN
        })
        .unwrap_or(bytes.len())
}
