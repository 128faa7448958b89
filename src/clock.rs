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

#[cfg(test)]
mod tests {
    use super::*;

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
