//! Timer negotiation (RFC 5880 §6.8.2–§6.8.4) and transmit jitter (§6.8.7),
//! as pure functions so they can be tested on their own.

use std::time::Duration;

/// The least Desired Min TX Interval a session advertises while it is not Up
/// (RFC 5880 §6.8.3: "not less than one second"), so a session that is not
/// yet, or no longer, Up costs little.
pub const SLOW_TX_INTERVAL: Duration = Duration::from_secs(1);

/// Where jitter gets its randomness: the caller chooses, so a test can be
/// deterministic and the daemon can seed from the OS.
pub trait RandomSource {
    /// A uniformly distributed 32-bit value.
    fn next_u32(&mut self) -> u32;
}

/// Any `FnMut() -> u32` closure is a source, e.g. `|| 0` for "never jitter".
impl<F: FnMut() -> u32> RandomSource for F {
    fn next_u32(&mut self) -> u32 {
        self()
    }
}

/// xorshift64* (Vigna): a tiny deterministic generator, plenty for jitter.
#[derive(Clone, Debug)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator seeded with `seed` (0 is replaced, it is a fixed point).
    pub fn new(seed: u64) -> XorShift64 {
        XorShift64(if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed })
    }
}

impl RandomSource for XorShift64 {
    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }
}

/// The interval at which we send periodic packets (RFC 5880 §6.8.7): the
/// larger of what we want to send at and what the remote can take.
pub fn transmit_interval(local_desired_min_tx: Duration, remote_required_min_rx: Duration) -> Duration {
    local_desired_min_tx.max(remote_required_min_rx)
}

/// The asynchronous-mode Detection Time (RFC 5880 §6.8.4): the remote's
/// Detect Mult times the remote's agreed transmit interval, the larger of our
/// Required Min RX and the remote's Desired Min TX.
pub fn detection_time(
    remote_detect_mult: u8,
    local_required_min_rx: Duration,
    remote_desired_min_tx: Duration,
) -> Duration {
    local_required_min_rx.max(remote_desired_min_tx) * u32::from(remote_detect_mult)
}

/// `interval` less the RFC 5880 §6.8.7 jitter: a random 0–25% reduction, or
/// 10–25% when our Detect Mult is 1 (the RFC's "no more than 90% ... no less
/// than 75%", so the remote never times out between two packets).
///
/// Exact integer arithmetic: the result is in [75%, 100%] of `interval`
/// ([75%, 90%] for multiplier 1), never zero for a nonzero interval.
pub fn jittered(interval: Duration, detect_mult: u8, rng: &mut impl RandomSource) -> Duration {
    jittered_with_slack(interval, detect_mult, Duration::ZERO, rng)
}

/// [`jittered`], but at least `slack` shorter than the RFC's longest
/// interval (never below its shortest, 75%): a caller that may send up to
/// `slack` late, to serve many sessions in one wakeup, still keeps every
/// interval within §6.8.7's bounds.
pub fn jittered_with_slack(
    interval: Duration,
    detect_mult: u8,
    slack: Duration,
    rng: &mut impl RandomSource,
) -> Duration {
    const ONE: u128 = 1 << 32;
    const MAX_REDUCTION: u128 = ONE / 4;
    // ceil(0.10 * 2^32): at least a 10% reduction.
    const MIN_REDUCTION_MULT_1: u128 = ONE.div_ceil(10);
    let rfc_min = if detect_mult == 1 { MIN_REDUCTION_MULT_1 } else { 0 };
    let slack_share = match interval.as_nanos() {
        0 => 0,
        i => (slack.as_nanos().saturating_mul(ONE)).div_ceil(i),
    };
    let min = (rfc_min + slack_share).min(MAX_REDUCTION);
    let reduction = min + (((MAX_REDUCTION - min) * u128::from(rng.next_u32())) >> 32);
    let nanos = (interval.as_nanos() * (ONE - reduction)) >> 32;
    let nanos = nanos.max(1).min(interval.as_nanos());
    Duration::new(
        u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX),
        (nanos % 1_000_000_000) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_the_slower_of_the_two() {
        let ms = Duration::from_millis;
        assert_eq!(transmit_interval(ms(100), ms(300)), ms(300));
        assert_eq!(transmit_interval(ms(500), ms(300)), ms(500));
        assert_eq!(detection_time(3, ms(100), ms(250)), ms(750));
        assert_eq!(detection_time(5, ms(400), ms(250)), ms(2000));
    }

    #[test]
    fn jitter_extremes_hit_the_bounds_exactly() {
        let i = Duration::from_millis(100);
        assert_eq!(jittered(i, 3, &mut || 0), i);
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        let most = jittered(i, 3, &mut || u32::MAX);
        assert!(most >= ms(75) && most < ms(75) + us(1), "{most:?}");
        let least_mult_1 = jittered(i, 1, &mut || 0);
        assert!(
            least_mult_1 <= ms(90) && least_mult_1 > ms(90) - us(1),
            "{least_mult_1:?}"
        );
        let most_mult_1 = jittered(i, 1, &mut || u32::MAX);
        assert!(most_mult_1 >= ms(75) && most_mult_1 < ms(75) + us(1), "{most_mult_1:?}");
        assert_eq!(jittered(Duration::from_nanos(1), 1, &mut || 0), Duration::from_nanos(1));
    }

    #[test]
    fn slack_shortens_the_longest_interval_and_never_the_shortest() {
        let ms = Duration::from_millis;
        let i = ms(100);
        for draw in [0, 1, u32::MAX / 3, u32::MAX / 2, u32::MAX] {
            let t = jittered_with_slack(i, 3, ms(5), &mut || draw);
            assert!(t >= ms(75) && t <= ms(95), "{draw}: {t:?}");
            let t = jittered_with_slack(i, 1, ms(5), &mut || draw);
            assert!(t >= ms(75) && t <= ms(85), "mult 1, {draw}: {t:?}");
        }
        assert!(jittered_with_slack(i, 3, ms(5), &mut || 0) > ms(95) - Duration::from_micros(1));
        // More slack than the jitter range: the shortest interval, not less.
        let t = jittered_with_slack(i, 3, ms(40), &mut || 0);
        assert!(t >= ms(75) && t < ms(75) + Duration::from_micros(1), "{t:?}");
        assert_eq!(jittered_with_slack(Duration::ZERO, 3, ms(5), &mut || 0), Duration::ZERO);
    }
}
