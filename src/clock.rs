//! Wall-clock time in Unix seconds, as a value that tests can fix and move. Everything that
//! stamps or compares times (job records, token expiry, provider deadlines) asks a [`Clock`]. A
//! leaf: it imports nothing of the crate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The system clock, or a fixed one a test sets.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    fixed: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that reads `secs` until it is [`set`](Clock::set) or
    /// [`advance`](Clock::advance)d; its clones move with it.
    pub fn fixed(secs: u64) -> Clock {
        Clock {
            fixed: Some(Arc::new(AtomicU64::new(secs))),
        }
    }

    /// Unix seconds now.
    pub fn now_secs(&self) -> u64 {
        match &self.fixed {
            Some(fixed) => fixed.load(Ordering::SeqCst),
            None => system_secs(),
        }
    }

    /// Moves a fixed clock forward; the system clock cannot be moved.
    ///
    /// # Panics
    /// On the system clock: a test that means to move time must have fixed it.
    pub fn advance(&self, secs: u64) {
        self.fixed
            .as_ref()
            .expect("only a fixed clock can be advanced")
            .fetch_add(secs, Ordering::SeqCst);
    }
}

/// Unix seconds by the system clock (0 before 1970).
pub fn system_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The UTC day of a Unix time, `YYYY-MM-DD`.
pub fn day(secs: u64) -> String {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The Unix time a UTC day (`YYYY-MM-DD`) starts at.
pub fn day_start(day: &str) -> Option<u64> {
    let mut parts = day.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    (days >= 0 && civil_from_days(days) == (y, m, d)).then(|| days as u64 * 86_400)
}

/// `YYYY-MM-DD hh:mm:ss` UTC, for people.
pub fn display(secs: u64) -> String {
    let rest = secs % 86_400;
    format!(
        "{} {:02}:{:02}:{:02}",
        day(secs),
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(1_796_256_000), "2026-12-03");
        assert_eq!(day_start("2026-12-03"), Some(1_796_256_000));
        assert_eq!(
            day_start("2024-02-29").map(day),
            Some("2024-02-29".to_owned())
        );
        assert_eq!(day_start("2025-02-29"), None);
        assert_eq!(display(1_796_256_000 + 3661), "2026-12-03 01:01:01");
    }

    #[test]
    fn a_fixed_clock_moves_only_when_told_and_its_clones_follow() {
        let clock = Clock::fixed(1_000);
        let clone = clock.clone();
        assert_eq!(clock.now_secs(), 1_000);
        clock.advance(60);
        assert_eq!(clone.now_secs(), 1_060);
        assert!(Clock::system().now_secs() > 1_700_000_000);
    }
}
