//! The bitset indexed by prefix id that every peer's Adj-RIB-Out (what was
//! advertised, what is queued) and the kernel feed are made of.
//!
//! Stored in chunks of [`CHUNK_BITS`]: a chunk with every bit clear or every
//! bit set holds no words. A reflector client's Adj-RIB-Out is every prefix
//! but its own, and its queue during a dump is a run of set bits: at 10,000
//! clients of a 20,000-prefix table flat bitsets were 57 MB (issue 14),
//! chunked ones are mostly one partial chunk per set.

/// Bits per chunk: 64 words, 512 bytes when it holds words.
const CHUNK_BITS: u32 = 4096;
const CHUNK_WORDS: usize = CHUNK_BITS as usize / 64;

type Words = Box<[u64; CHUNK_WORDS]>;

/// One chunk: its set-bit count, and its words unless the count is 0 or
/// [`CHUNK_BITS`] (then every bit is the same).
#[derive(Default)]
struct Chunk {
    ones: u32,
    words: Option<Words>,
}

impl Chunk {
    fn get(&self, bit: u32) -> bool {
        self.word(bit as usize / 64) & (1 << (bit % 64)) != 0
    }

    /// Sets or clears one bit; true if it changed.
    fn set(&mut self, bit: u32, on: bool) -> bool {
        if self.get(bit) == on {
            return false;
        }
        let fill = if self.ones == 0 { 0 } else { !0 };
        let words = self.words.get_or_insert_with(|| Box::new([fill; CHUNK_WORDS]));
        let (word, mask) = (bit as usize / 64, 1u64 << (bit % 64));
        if on {
            words[word] |= mask;
            self.ones += 1;
        } else {
            words[word] &= !mask;
            self.ones -= 1;
        }
        if self.ones == 0 || self.ones == CHUNK_BITS {
            self.words = None;
        }
        true
    }

    /// Word `k` of the chunk.
    fn word(&self, k: usize) -> u64 {
        match &self.words {
            Some(w) => w[k],
            None if self.ones == 0 => 0,
            None => !0,
        }
    }
}

/// A growable bitset indexed by prefix id.
#[derive(Default)]
pub(super) struct Bits {
    chunks: Vec<Chunk>,
    /// Set bits in all.
    pub(super) count: usize,
}

impl Bits {
    pub(super) fn get(&self, i: u32) -> bool {
        self.chunks
            .get((i / CHUNK_BITS) as usize)
            .is_some_and(|c| c.get(i % CHUNK_BITS))
    }

    /// The set bits from `from` on, in ascending order.
    pub(super) fn ones_from(&self, from: u32) -> impl Iterator<Item = u32> + '_ {
        let first = (from / CHUNK_BITS) as usize;
        let chunks = self.chunks.get(first..).unwrap_or(&[]);
        chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.ones > 0)
            .flat_map(move |(k, chunk)| {
                let base = (first + k) as u32 * CHUNK_BITS;
                (0..CHUNK_WORDS).flat_map(move |w| {
                    let at = base + w as u32 * 64;
                    let mut word = chunk.word(w);
                    if at + 64 <= from {
                        word = 0;
                    } else if at < from {
                        word &= !0u64 << (from - at);
                    }
                    std::iter::from_fn(move || {
                        if word == 0 {
                            return None;
                        }
                        let bit = word.trailing_zeros();
                        word &= word - 1;
                        Some(at + bit)
                    })
                })
            })
    }

    pub(super) fn set(&mut self, i: u32, on: bool) {
        let chunk = (i / CHUNK_BITS) as usize;
        if chunk >= self.chunks.len() {
            if !on {
                return;
            }
            self.chunks.resize_with(chunk + 1, Chunk::default);
        }
        if self.chunks[chunk].set(i % CHUNK_BITS, on) {
            if on {
                self.count += 1;
            } else {
                self.count -= 1;
            }
        }
    }

    /// Heap bytes the set holds (chunk list and word blocks).
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        let words = self.chunks.iter().filter(|c| c.words.is_some()).count();
        self.chunks.capacity() * std::mem::size_of::<Chunk>() + words * CHUNK_WORDS * 8
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{Bits, CHUNK_BITS};

    #[test]
    fn ones_from_yields_the_set_bits_from_a_start_in_ascending_order() {
        let mut bits = Bits::default();
        for i in [3, 63, 64, 65, 200, 1000, 4095, 4096, 9000] {
            bits.set(i, true);
        }
        bits.set(64, false);
        let from = |f| bits.ones_from(f).collect::<Vec<_>>();
        assert_eq!(from(0), vec![3, 63, 65, 200, 1000, 4095, 4096, 9000]);
        assert_eq!(from(63), vec![63, 65, 200, 1000, 4095, 4096, 9000]);
        assert_eq!(from(66), vec![200, 1000, 4095, 4096, 9000]);
        assert_eq!(from(4096), vec![4096, 9000]);
        assert_eq!(from(9001).len(), 0);
        assert_eq!(bits.count, 8);
    }

    /// Random sets and clears (a fixed xorshift sequence) mixed with runs
    /// that fill or empty whole chunks: the same answers as a set, checked
    /// after every run.
    #[test]
    fn chunked_bits_answer_like_a_set_of_ids() {
        let mut bits = Bits::default();
        let mut model = BTreeSet::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let span = 4 * CHUNK_BITS as u64;
        for round in 0..40 {
            let (start, len) = (next() % span, next() % (2 * CHUNK_BITS as u64));
            let on = round % 3 != 2;
            for i in start..(start + len).min(span) {
                bits.set(i as u32, on);
                if on {
                    model.insert(i as u32);
                } else {
                    model.remove(&(i as u32));
                }
            }
            for _ in 0..500 {
                let (i, on) = ((next() % span) as u32, next() % 2 == 0);
                bits.set(i, on);
                if on {
                    model.insert(i);
                } else {
                    model.remove(&i);
                }
            }
            for i in 0..span as u32 {
                assert_eq!(bits.get(i), model.contains(&i), "round {round}, bit {i}");
            }
            assert_eq!(bits.count, model.len());
            let from = (next() % span) as u32;
            let want: Vec<u32> = model.range(from..).copied().collect();
            assert_eq!(
                bits.ones_from(from).collect::<Vec<_>>(),
                want,
                "round {round}, from {from}"
            );
        }
    }

    /// A reflector client's sets: all 20,000 prefixes but its own two
    /// advertised, a dump half done. Words only for the chunks that mix set
    /// and clear bits (the last chunk, 16,384.., is one of them); flat
    /// bitsets took 2,500 bytes each.
    #[test]
    fn runs_of_set_or_clear_bits_hold_no_words() {
        let mut advertised = Bits::default();
        for i in 0..20_000 {
            advertised.set(i, true);
        }
        advertised.set(17, false);
        advertised.set(12_345, false);
        assert!(
            advertised.heap_bytes() <= 3 * 512 + 8 * 16,
            "{}",
            advertised.heap_bytes()
        );
        let mut queued = Bits::default();
        for i in 0..20_000 {
            queued.set(i, true);
        }
        for i in 0..10_000 {
            queued.set(i, false);
        }
        assert!(queued.heap_bytes() <= 2 * 512 + 8 * 16, "{}", queued.heap_bytes());
        assert_eq!(queued.ones_from(0).next(), Some(10_000));
        assert_eq!(queued.count, 10_000);
    }
}
