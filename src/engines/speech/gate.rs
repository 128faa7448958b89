//! The voice-activity gate: which stretches of an upload hold speech, so that only they are
//! transcribed. Music, noise and silence cost a small neural detector's time (the `earshot` crate
//! of crates.io, 16 ms frames at 16 kHz, weights inside the crate), not the recogniser's, and
//! give the recogniser nothing to invent words from.

/// Samples per second the gate and the recogniser take.
pub const RATE: usize = 16_000;
const FRAME: usize = 256;
/// A frame scoring at least this is voice.
const VOICE: f32 = 0.5;
/// Voice shorter than this in total within a stretch is a click, a breath or a note, not speech.
const MIN_SPEECH_SECS: f64 = 0.3;
/// Pauses shorter than this stay inside one stretch.
const JOIN_GAP_SECS: f64 = 0.6;
/// Kept on either side of a stretch, so that first and last syllables are whole.
const PAD_SECS: f64 = 0.2;

/// The speech of an upload, gathered while it is decoded: each stretch with where it starts in
/// the upload. Only speech is kept, at most the cap, so memory stays bounded whatever the length.
#[derive(Debug, Clone, Default)]
pub struct Speech {
    pub stretches: Vec<(f64, Vec<f32>)>,
    /// Seconds of audio decoded.
    pub audio_secs: f64,
    /// Speech went on past the cap; the rest was not kept.
    pub capped: bool,
}

impl Speech {
    pub fn speech_secs(&self) -> f64 {
        self.stretches
            .iter()
            .map(|(_, pcm)| pcm.len())
            .sum::<usize>() as f64
            / RATE as f64
    }
}

/// Gathers an upload's [`Speech`] from decoded PCM at any rate: resamples to 16 kHz, runs the
/// detector frame by frame, and keeps one-second blocks only while voice is within a second of
/// them.
pub struct Collector {
    resampler: Option<crate::fingerprint::Resampler>,
    resampled: Vec<f32>,
    detector: Box<vad::Detector>,
    pending: Vec<f32>,
    voiced: Vec<bool>,
    voiced_frames: usize,
    blocks: Vec<Option<Vec<f32>>>,
    samples: usize,
    cap_frames: usize,
    capped: bool,
}

const BLOCK: usize = RATE;

impl Collector {
    /// Keeps at most `cap_secs` of speech.
    pub fn new(cap_secs: u64) -> Collector {
        let cap_frames = usize::try_from(cap_secs).unwrap_or(usize::MAX / RATE) * RATE / FRAME;
        Collector {
            resampler: None,
            resampled: Vec::new(),
            detector: vad::Detector::default_boxed(),
            pending: Vec::new(),
            voiced: Vec::new(),
            voiced_frames: 0,
            blocks: Vec::new(),
            samples: 0,
            cap_frames,
            capped: false,
        }
    }

    /// Adds mono samples at `rate` Hz.
    pub fn push(&mut self, samples: &[f32], rate: u32) {
        let resampler = self
            .resampler
            .get_or_insert_with(|| crate::fingerprint::Resampler::new(rate, RATE as u32));
        let mut resampled = std::mem::take(&mut self.resampled);
        resampled.clear();
        resampler.process(samples, &mut resampled);
        for &sample in &resampled {
            if self.samples.is_multiple_of(BLOCK) {
                self.close_block();
                self.blocks
                    .push((!self.capped).then(|| Vec::with_capacity(BLOCK)));
            }
            if let Some(Some(block)) = self.blocks.last_mut() {
                block.push(sample);
            }
            self.samples += 1;
            self.pending.push(sample);
            if self.pending.len() == FRAME {
                self.frame();
            }
        }
        self.resampled = resampled;
    }

    fn frame(&mut self) {
        let voiced = !self.capped && voice(&mut self.detector, &self.pending);
        self.pending.clear();
        self.voiced.push(voiced);
        if voiced {
            self.voiced_frames += 1;
            if self.voiced_frames >= self.cap_frames {
                self.capped = true;
            }
        }
    }

    /// A block whose neighbours have been heard is dropped unless voice is near it.
    fn close_block(&mut self) {
        let Some(done) = self.blocks.len().checked_sub(2) else {
            return;
        };
        if !self.voice_near(done) {
            self.blocks[done] = None;
        }
    }

    fn voice_near(&self, block: usize) -> bool {
        let frames_per_block = BLOCK / FRAME;
        let from = block.saturating_sub(1) * frames_per_block;
        let to = ((block + 2) * frames_per_block).min(self.voiced.len());
        self.voiced
            .get(from..to)
            .is_some_and(|f| f.iter().any(|v| *v))
    }

    /// The speech gathered.
    pub fn finish(mut self) -> Speech {
        if !self.pending.is_empty() {
            let mut last = std::mem::take(&mut self.pending);
            last.resize(FRAME, 0.0);
            self.pending = last;
            self.frame();
        }
        let mut stretches = Vec::new();
        let mut kept = 0;
        let cap = self.cap_frames * FRAME;
        for stretch in stretches_of(&self.voiced, self.samples) {
            if kept >= cap {
                self.capped = true;
                break;
            }
            let end = stretch.end.min(stretch.start + cap - kept);
            let pcm: Vec<f32> = (stretch.start..end)
                .map(|i| {
                    self.blocks[i / BLOCK]
                        .as_ref()
                        .and_then(|b| b.get(i % BLOCK))
                        .copied()
                        .unwrap_or(0.0)
                })
                .collect();
            kept += pcm.len();
            stretches.push((stretch.start as f64 / RATE as f64, pcm));
        }
        Speech {
            stretches,
            audio_secs: self.samples as f64 / RATE as f64,
            capped: self.capped,
        }
    }
}

fn voice(detector: &mut vad::Detector, samples: &[f32]) -> bool {
    let mut frame = [0i16; FRAME];
    for (out, sample) in frame.iter_mut().zip(samples) {
        // Saturating conversion: resampling can overshoot 1.0 a little.
        *out = (sample * 32767.0) as i16;
    }
    detector.predict_i16(&frame) >= VOICE
}

/// A stretch of speech, in samples at [`RATE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    pub start: usize,
    pub end: usize,
}

/// Joins voiced frames into padded stretches.
fn stretches_of(voiced: &[bool], len: usize) -> Vec<Stretch> {
    let secs = |frames: usize| (frames * FRAME) as f64 / RATE as f64;
    let join_gap = (JOIN_GAP_SECS * RATE as f64 / FRAME as f64) as usize;
    let pad = (PAD_SECS * RATE as f64) as usize;
    // (first frame, end frame, voiced frames)
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for (i, &v) in voiced.iter().enumerate() {
        if !v {
            continue;
        }
        match runs.last_mut() {
            Some(run) if i - run.1 <= join_gap => {
                run.1 = i + 1;
                run.2 += 1;
            }
            _ => runs.push((i, i + 1, 1)),
        }
    }
    let mut out: Vec<Stretch> = Vec::new();
    for (first, end, count) in runs {
        if secs(count) < MIN_SPEECH_SECS {
            continue;
        }
        let start = (first * FRAME).saturating_sub(pad);
        let end = (end * FRAME + pad).min(len);
        match out.last_mut() {
            Some(last) if start <= last.end => last.end = end,
            _ => out.push(Stretch { start, end }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voiced_frames_join_into_padded_stretches() {
        let mut voiced = vec![false; 1000];
        // 0.48 s of voice, a 0.32 s pause, 0.48 s more: one stretch.
        voiced[100..130].fill(true);
        voiced[150..180].fill(true);
        // A lone 64 ms blip: dropped.
        voiced[400..404].fill(true);
        // Far away, 1 s: its own stretch.
        voiced[700..763].fill(true);
        let got = stretches_of(&voiced, 1000 * FRAME);
        let pad = (PAD_SECS * RATE as f64) as usize;
        assert_eq!(
            got,
            vec![
                Stretch {
                    start: 100 * FRAME - pad,
                    end: 180 * FRAME + pad
                },
                Stretch {
                    start: 700 * FRAME - pad,
                    end: 763 * FRAME + pad
                },
            ]
        );
    }

    #[test]
    fn silence_and_noise_keep_nothing() {
        let mut collector = Collector::new(600);
        collector.push(&vec![0.0; 44_100 * 3], 44_100);
        let mut state = 0x2545_f491_u32;
        let noise: Vec<f32> = (0..44_100 * 3)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32 - 0.5) * 0.4
            })
            .collect();
        collector.push(&noise, 44_100);
        let speech = collector.finish();
        assert!(speech.stretches.is_empty(), "{:?}", speech.speech_secs());
        assert!((speech.audio_secs - 6.0).abs() < 0.01);
    }
}
