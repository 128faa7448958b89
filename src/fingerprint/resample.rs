//! A streaming band-limited resampler (windowed-sinc, polyphase table), good enough for
//! fingerprinting: its pass band ends at 90 % of the output Nyquist frequency.

/// Zero crossings of the sinc kernel on each side.
const ZERO_CROSSINGS: f64 = 6.0;
/// Fractional positions the kernel is tabulated at.
const PHASES: usize = 128;

pub struct Resampler {
    /// Input samples per output sample.
    step: f64,
    /// Kernel taps on each side of the centre.
    half: usize,
    /// `PHASES + 1` rows of `2 * half` taps.
    table: Vec<f32>,
    /// Input not yet fully used, starting at absolute input index `base`.
    history: Vec<f32>,
    base: u64,
    /// Absolute input position of the next output sample.
    position: f64,
    passthrough: bool,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Resampler {
        let step = f64::from(from) / f64::from(to);
        // Cut-off relative to the input rate: 0.45 of the lower of the two rates.
        let cutoff = 0.45 * f64::from(from.min(to)) / f64::from(from);
        let half = (ZERO_CROSSINGS / (2.0 * cutoff)).ceil() as usize;
        let taps = 2 * half;
        let mut table = Vec::with_capacity((PHASES + 1) * taps);
        for phase in 0..=PHASES {
            let frac = phase as f64 / PHASES as f64;
            let mut row: Vec<f64> = (0..taps)
                .map(|j| {
                    // Tap j is input sample floor(position) - half + 1 + j.
                    let t = (j as f64 - half as f64 + 1.0) - frac;
                    let x = 2.0 * cutoff * t;
                    let sinc = if x.abs() < 1e-9 {
                        1.0
                    } else {
                        (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                    };
                    let w = t / (half as f64 + 1.0);
                    let window = if w.abs() >= 1.0 {
                        0.0
                    } else {
                        0.5 + 0.5 * (std::f64::consts::PI * w).cos()
                    };
                    2.0 * cutoff * sinc * window
                })
                .collect();
            let gain: f64 = row.iter().sum();
            if gain.abs() > 1e-12 {
                row.iter_mut().for_each(|v| *v /= gain);
            }
            table.extend(row.into_iter().map(|v| v as f32));
        }
        Resampler {
            step,
            half,
            table,
            history: Vec::new(),
            base: 0,
            position: 0.0,
            passthrough: from == to,
        }
    }

    /// Resamples `input` (continuing the stream) and appends the output to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if self.passthrough {
            out.extend_from_slice(input);
            return;
        }
        self.history.extend_from_slice(input);
        let taps = 2 * self.half;
        let end = self.base + self.history.len() as u64;
        loop {
            let whole = self.position.floor();
            let first = whole as i64 - self.half as i64 + 1;
            let last = first + taps as i64 - 1;
            if last >= end as i64 {
                break;
            }
            let frac = self.position - whole;
            let phase = (frac * PHASES as f64).round() as usize;
            let row = &self.table[phase * taps..(phase + 1) * taps];
            let mut acc = 0.0f32;
            if first >= self.base as i64 {
                let start = (first - self.base as i64) as usize;
                for (x, k) in self.history[start..start + taps].iter().zip(row) {
                    acc += x * k;
                }
            } else {
                // Before the first sample: treat as silence.
                for (j, k) in row.iter().enumerate() {
                    let index = first + j as i64;
                    if index >= self.base as i64 {
                        acc += self.history[(index - self.base as i64) as usize] * k;
                    }
                }
            }
            out.push(acc);
            self.position += self.step;
        }
        // Drop input no future output needs.
        let keep_from =
            (self.position.floor() as i64 - self.half as i64 + 1).max(self.base as i64) as u64;
        let drop = (keep_from - self.base) as usize;
        if drop > 0 {
            self.history.drain(..drop.min(self.history.len()));
            self.base += drop as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, secs: f64) -> Vec<f32> {
        (0..(f64::from(rate) * secs) as usize)
            .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() as f32)
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn length_and_pass_band_survive_and_stop_band_is_removed() {
        for from in [44_100, 48_000, 22_050, 16_000] {
            let mut r = Resampler::new(from, 8000);
            let mut out = Vec::new();
            for chunk in sine(1000.0, from, 2.0).chunks(1000) {
                r.process(chunk, &mut out);
            }
            assert!(
                (out.len() as i64 - 16_000).abs() < 100,
                "{from}: {} samples",
                out.len()
            );
            let level = rms(&out[500..out.len() - 500]);
            assert!((level - 0.707).abs() < 0.05, "{from}: 1 kHz at rms {level}");

            let mut r = Resampler::new(from, 8000);
            let mut out = Vec::new();
            r.process(&sine(6000.0, from, 1.0), &mut out);
            let level = rms(&out[500..out.len() - 500]);
            assert!(level < 0.05, "{from}: 6 kHz leaks at rms {level}");
        }
    }
}
