//! The one retry schedule every loop uses: exponential backoff with jitter. Delays double from
//! `initial` up to `max`, and each is drawn from its upper half ("equal jitter"), so replicas and
//! workers that failed together do not retry in step. A leaf: it imports nothing of the crate.

use std::time::Duration;

/// Successive retry delays.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial: initial.min(max),
            next: initial.min(max),
            max,
        }
    }

    /// Starts over from the first delay (the thing retried succeeded).
    pub fn reset(&mut self) {
        self.next = self.initial;
    }

    /// The delay before the next attempt: between half of the current step and the whole of it.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = step / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Sleeps for [`Backoff::next_delay`].
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_cap_and_stay_in_the_upper_half_of_each_step() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let steps = [100, 200, 400, 800, 800, 800];
        for step in steps {
            let delay = backoff.next_delay();
            let step = Duration::from_millis(step);
            assert!(
                delay >= step / 2 && delay <= step,
                "{delay:?} outside [{:?}, {step:?}]",
                step / 2
            );
        }
    }

    #[test]
    fn jitter_spreads_delays_of_one_step() {
        let delays: std::collections::BTreeSet<Duration> = (0..20)
            .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).next_delay())
            .collect();
        assert!(delays.len() > 10, "{} distinct delays in 20", delays.len());
    }
}
