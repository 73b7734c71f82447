//! RFC 4271 §10 jitter: timers are scaled by a random factor in [0.75, 1.0],
//! from a small deterministic generator so a run is reproducible.

use std::time::Duration;

/// xorshift64* (Vigna): tiny, deterministic, good enough for timer jitter.
#[derive(Clone, Debug)]
pub(super) struct Jitter(u64);

impl Jitter {
    pub(super) fn new(seed: u64) -> Jitter {
        // The all-zero state is a fixed point of xorshift.
        Jitter(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `d` scaled by a random factor in [0.75, 1.0) (RFC 4271 §10), in exact
    /// integer arithmetic so no duration can overflow.
    pub(super) fn scale(&mut self, d: Duration) -> Duration {
        // factor = k / 2^32 with k in [3 * 2^30, 2^32).
        let k = (3u128 << 30) + u128::from(self.next_u64() >> 34);
        let nanos = (d.as_nanos() * k) >> 32;
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        Duration::new(secs, (nanos % 1_000_000_000) as u32)
    }
}
