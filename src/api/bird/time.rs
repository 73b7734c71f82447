//! BIRD's time formats (local time, `iso short`), without a time crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A wall-clock time broken down in the daemon's local time zone (BIRD
/// prints local time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

impl LocalTime {
    pub fn of(t: SystemTime) -> LocalTime {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let millis = d.subsec_millis();
        local_parts(secs).unwrap_or_else(|| utc_parts(secs)).with_millis(millis)
    }

    fn with_millis(mut self, millis: u32) -> LocalTime {
        self.millis = millis;
        self
    }

    /// `%T.%3f`: `19:47:48.079`.
    pub fn time_ms(&self) -> String {
        format!(
            "{:02}:{:02}:{:02}.{:03}",
            self.hour, self.minute, self.second, self.millis
        )
    }

    /// `%F`: `2024-01-31`.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `%F %T.%3f`: `2024-01-31 19:47:48.079`.
    pub fn date_time_ms(&self) -> String {
        format!("{} {}", self.date(), self.time_ms())
    }
}

fn local_parts(secs: i64) -> Option<LocalTime> {
    // time_t is 32 bits on some targets, so the conversion is not always a no-op.
    #[allow(clippy::useless_conversion)]
    let t: libc::time_t = secs.try_into().ok()?;
    // SAFETY: `tm` is plain old data; localtime_r only writes into it and
    // returns null on failure, which we check.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        return None;
    }
    Some(LocalTime {
        year: i64::from(tm.tm_year) + 1900,
        month: u32::try_from(tm.tm_mon + 1).ok()?,
        day: u32::try_from(tm.tm_mday).ok()?,
        hour: u32::try_from(tm.tm_hour).ok()?,
        minute: u32::try_from(tm.tm_min).ok()?,
        second: u32::try_from(tm.tm_sec).ok()?,
        millis: 0,
    })
}

/// UTC civil time from Unix seconds (Howard Hinnant's days-to-civil algorithm).
pub(super) fn utc_parts(secs: i64) -> LocalTime {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    LocalTime {
        year,
        month: month as u32,
        day: day as u32,
        hour: (rem / 3600) as u32,
        minute: (rem % 3600 / 60) as u32,
        second: (rem % 60) as u32,
        millis: 0,
    }
}

/// BIRD's default protocol/route time format (`iso short ms`): the time of
/// day when less than 20 hours ago, else the date.
pub fn short_time(t: SystemTime, now: SystemTime) -> String {
    let lt = LocalTime::of(t);
    match now.duration_since(t) {
        Ok(age) if age >= Duration::from_secs(20 * 3600) => lt.date(),
        _ => lt.time_ms(),
    }
}

/// `%t`: seconds with three decimals.
pub(super) fn secs_ms(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// The wall-clock time an [`std::time::Instant`] in the past corresponds to.
pub(super) fn wall_clock(elapsed: Duration, now: SystemTime) -> SystemTime {
    now.checked_sub(elapsed).unwrap_or(UNIX_EPOCH)
}
