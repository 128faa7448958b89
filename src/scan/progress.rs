//! A scan's progress: a bar on a terminal, a line every 10 s in the log.

use std::time::{Duration, Instant};

use super::Checkpoint;

/// Progress on a terminal (a bar) or in the log (a line every 10 s).
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    pub(super) fn new(bar: bool, id: &str) -> Progress {
        let bar = bar.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} scan {prefix} {wide_msg}")
                    .expect("a valid template"),
            );
            bar.set_prefix(id.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    pub(super) fn summary(&self, checkpoint: &Checkpoint) -> String {
        let c = &checkpoint.counts;
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        format!(
            "{} read, {} taken, {} already judged, {} out of scope, {} failed; {:.1} MB, ≈{:.2} h audio; {:.0} objects/s",
            c.read,
            c.taken(),
            c.already_judged,
            c.out_of_scope + c.out_of_window,
            c.failed,
            c.bytes as f64 / 1e6,
            c.est_audio_hours,
            c.read as f64 / secs
        )
    }

    pub(super) fn tick(&mut self, checkpoint: &Checkpoint) {
        if let Some(bar) = &self.bar {
            bar.set_message(self.summary(checkpoint));
        } else if self.last_line.elapsed() >= Duration::from_secs(10) {
            self.log(checkpoint);
        }
    }

    pub(super) fn log(&mut self, checkpoint: &Checkpoint) {
        if self.bar.is_none() {
            tracing::info!(scan = %checkpoint.id, position = checkpoint.position, "{}", self.summary(checkpoint));
            self.last_line = Instant::now();
        }
    }

    pub(super) fn finish(&mut self, checkpoint: &Checkpoint) {
        if let Some(bar) = self.bar.take() {
            bar.finish_with_message(self.summary(checkpoint));
        } else {
            tracing::info!(scan = %checkpoint.id, "{}", self.summary(checkpoint));
        }
    }
}
