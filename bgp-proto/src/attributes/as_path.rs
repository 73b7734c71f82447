//! AS_PATH and AS4_PATH (RFC 4271 §4.3, §5.1.2, RFC 6793, RFC 5065 §3):
//! segments, the path arithmetic the decision process and policies need, and
//! the 2-/4-octet encodings.

use std::fmt;

use crate::error::Reason;
use crate::open::AS_TRANS;

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentType {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AsSegment {
    pub kind: SegmentType,
    pub asns: Vec<u32>,
}

/// AS_PATH or AS4_PATH as a list of segments.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE.
    pub fn sequence(asns: Vec<u32>) -> AsPath {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }],
        }
    }

    /// Path length for the decision process (RFC 4271 §9.1.2.2 a): an AS_SET
    /// counts as 1, confederation segments count 0 (RFC 5065 §5.3).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                SegmentType::ConfedSequence | SegmentType::ConfedSet => 0,
            })
            .sum()
    }

    /// First AS of the path (the neighbouring AS), if the path starts with a sequence.
    pub fn first_as(&self) -> Option<u32> {
        match self.segments.first() {
            Some(AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }) => asns.first().copied(),
            _ => None,
        }
    }

    /// The originating AS: the last AS of a trailing AS_SEQUENCE.
    pub fn origin_as(&self) -> Option<u32> {
        match self.segments.last() {
            Some(AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }) => asns.last().copied(),
            _ => None,
        }
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// Prepends `asn` `count` times to the leading AS_SEQUENCE (RFC 4271 §5.1.2).
    pub fn prepend(&mut self, asn: u32, count: usize) {
        match self.segments.first_mut() {
            Some(seg) if seg.kind == SegmentType::Sequence && seg.asns.len() + count <= 255 => {
                seg.asns.splice(0..0, std::iter::repeat_n(asn, count));
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![asn; count],
                },
            ),
        }
    }

    /// Whether any AS does not fit in 2 octets.
    pub fn has_four_octet_as(&self) -> bool {
        self.segments.iter().flat_map(|s| &s.asns).any(|&a| a > 0xffff)
    }

    /// Number of ASes counted as RFC 6793 §4.2.3 counts them (sets as 1, confed segments as 0).
    fn count_for_as4(&self) -> usize {
        self.path_len()
    }

    /// RFC 6793 §4.2.3: rebuild the real path from a 2-octet peer's AS_PATH and
    /// AS4_PATH. If AS4_PATH is longer than AS_PATH it is ignored.
    pub fn merge_as4(&self, as4_path: &AsPath) -> AsPath {
        let n = self.count_for_as4();
        let m = as4_path.count_for_as4();
        if m > n {
            return self.clone();
        }
        // Keep the leading (n - m) ASes of AS_PATH, then append AS4_PATH.
        let mut keep = n - m;
        let mut out = AsPath::default();
        for seg in &self.segments {
            if keep == 0 {
                break;
            }
            match seg.kind {
                SegmentType::Sequence => {
                    let take = keep.min(seg.asns.len());
                    out.segments.push(AsSegment {
                        kind: seg.kind,
                        asns: seg.asns[..take].to_vec(),
                    });
                    keep -= take;
                }
                SegmentType::Set => {
                    out.segments.push(seg.clone());
                    keep -= 1;
                }
                SegmentType::ConfedSequence | SegmentType::ConfedSet => out.segments.push(seg.clone()),
            }
        }
        out.segments.extend(as4_path.segments.iter().cloned());
        out
    }

    pub(super) fn decode(mut v: &[u8], four_octet: bool) -> Result<AsPath, Reason> {
        let width = if four_octet { 4 } else { 2 };
        let mut segments = Vec::new();
        while !v.is_empty() {
            // RFC 7606 §7.2: overrun, zero length or undefined type is malformed.
            let [kind, count, rest @ ..] = v else {
                return Err(Reason::MalformedAsPath("segment header overruns"));
            };
            let kind = match kind {
                1 => SegmentType::Set,
                2 => SegmentType::Sequence,
                3 => SegmentType::ConfedSequence,
                4 => SegmentType::ConfedSet,
                _ => return Err(Reason::MalformedAsPath("undefined segment type")),
            };
            if *count == 0 {
                return Err(Reason::MalformedAsPath("zero segment length"));
            }
            let len = *count as usize * width;
            let Some(body) = rest.get(..len) else {
                return Err(Reason::MalformedAsPath("segment overruns"));
            };
            let asns = body
                .chunks_exact(width)
                .map(|c| match c {
                    [a, b] => u16::from_be_bytes([*a, *b]) as u32,
                    [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
                    _ => 0,
                })
                .collect();
            segments.push(AsSegment { kind, asns });
            v = &rest[len..];
        }
        Ok(AsPath { segments })
    }

    /// Wire form; with `four_octet` false, ASes above 65535 become AS_TRANS
    /// (RFC 6793 §4.2.2). Segments longer than 255 ASes are split.
    pub fn encode(&self, four_octet: bool, out: &mut Vec<u8>) {
        for seg in &self.segments {
            for chunk in seg.asns.chunks(255) {
                out.push(seg.kind as u8);
                out.push(chunk.len() as u8);
                for &asn in chunk {
                    if four_octet {
                        out.extend_from_slice(&asn.to_be_bytes());
                    } else {
                        out.extend_from_slice(&u16::try_from(asn).unwrap_or(AS_TRANS).to_be_bytes());
                    }
                }
            }
        }
    }
}

impl fmt::Display for AsPath {
    /// BIRD style: `65001 65002 {65003 65004} (65005)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let list = seg.asns.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ");
            match seg.kind {
                SegmentType::Sequence => f.write_str(&list)?,
                SegmentType::Set => write!(f, "{{{list}}}")?,
                SegmentType::ConfedSequence => write!(f, "({list})")?,
                SegmentType::ConfedSet => write!(f, "[{list}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as4_reconstruction() {
        // RFC 6793 §4.2.3: AS_PATH 65001 23456 23456 65002, AS4_PATH 4200000001 4200000002 65002.
        let as_path = AsPath::sequence(vec![65001, 23456, 23456, 65002]);
        let as4 = AsPath::sequence(vec![4_200_000_001, 4_200_000_002, 65002]);
        let merged = as_path.merge_as4(&as4);
        assert_eq!(merged.to_string(), "65001 4200000001 4200000002 65002");
        // An AS4_PATH longer than AS_PATH is ignored.
        let long = AsPath::sequence(vec![1, 2, 3, 4, 5]);
        assert_eq!(as_path.merge_as4(&long), as_path);
    }

    #[test]
    fn as_path_two_octet_encoding_uses_as_trans() {
        let p = AsPath::sequence(vec![65001, 4_200_000_001]);
        let mut out = Vec::new();
        p.encode(false, &mut out);
        assert_eq!(out, vec![2, 2, 0xfd, 0xe9, 0x5b, 0xa0]);
    }

    #[test]
    fn prepend_and_lengths() {
        let mut p = AsPath::sequence(vec![65002]);
        p.prepend(65001, 2);
        assert_eq!(p.to_string(), "65001 65001 65002");
        assert_eq!(p.path_len(), 3);
        assert_eq!(p.first_as(), Some(65001));
        assert_eq!(p.origin_as(), Some(65002));
        let mut empty = AsPath::default();
        empty.prepend(64512, 1);
        assert_eq!(empty.to_string(), "64512");
    }
}
