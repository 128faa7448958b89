//! The voice-activity gate: which stretches of an upload hold speech, so that only they are
//! transcribed. Music, noise and silence cost a small neural detector's time, not the
//! recogniser's, and give the recogniser nothing to invent words from.
//!
//! Two tests, both on 16 ms frames at 16 kHz:
//! - a frame is voiced when the neural detector of the `earshot` crate on crates.io (unrelated to
//!   this project; its weights are inside the crate) scores it 0.5 or more. It tells voice from
//!   noise and silence, but calls most music voice too;
//! - a one-second window is speech-like when its frames' loudness varies by at least
//!   [`SPEECH_DB_STD`] (standard deviation, in dB) and a third of them are voiced. Speech stops
//!   between syllables and words; music mostly does not. Measured on Debian's recordings (the
//!   LibriVox reading, espeak-ng, flite) against 13 tracks of Debian's game music: the median
//!   window varies by 7.6–20 dB in speech and 1.4–5.4 dB in music.
//!
//! Voiced frames inside speech-like windows are speech; those within [`JOIN_GAP_SECS`] of each
//! other form a stretch, padded by [`PAD_SECS`].

/// Samples per second the gate and the recogniser take.
pub const RATE: usize = 16_000;
const FRAME: usize = 256;
/// A frame scoring at least this is voice.
const VOICE: f32 = 0.5;
/// Speech shorter than this in total within a stretch is a click, a breath or a note.
const MIN_SPEECH_SECS: f64 = 0.5;
/// Frames per loudness window (about 1 s), and the hop between windows.
const WINDOW: usize = 62;
const HOP: usize = 31;
/// How much a speech-like window's loudness varies at least (dB, standard deviation).
pub const SPEECH_DB_STD: f32 = 6.0;
/// The share of a speech-like window's frames that must be voiced.
const MIN_VOICED_SHARE: f32 = 0.3;
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
    /// Per frame, its loudness in dB.
    loudness: Vec<f32>,
    /// Per frame, voiced and in a speech-like window.
    speech: Vec<bool>,
    speech_frames: usize,
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
            loudness: Vec::new(),
            speech: Vec::new(),
            speech_frames: 0,
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
        let energy = self.pending.iter().map(|x| x * x).sum::<f32>() / FRAME as f32;
        self.pending.clear();
        self.voiced.push(voiced);
        self.loudness.push(10.0 * (energy + 1e-9).log10());
        self.speech.push(false);
        let frames = self.voiced.len();
        if frames >= WINDOW && (frames - WINDOW).is_multiple_of(HOP) {
            self.judge_window(frames - WINDOW, frames);
        }
    }

    /// Marks the voiced frames of `from..to` as speech when the window is speech-like.
    fn judge_window(&mut self, from: usize, to: usize) {
        if self.capped || !speech_like(&self.loudness[from..to], &self.voiced[from..to]) {
            return;
        }
        for i in from..to {
            if self.voiced[i] && !self.speech[i] {
                self.speech[i] = true;
                self.speech_frames += 1;
            }
        }
        if self.speech_frames >= self.cap_frames {
            self.capped = true;
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
        // The last window, when the frames since the last judged one are enough to judge.
        let frames = self.voiced.len();
        let judged_to = if frames >= WINDOW {
            WINDOW + (frames - WINDOW) / HOP * HOP
        } else {
            0
        };
        if frames > judged_to && frames >= HOP {
            self.judge_window(frames.saturating_sub(WINDOW), frames);
        }
        let mut stretches = Vec::new();
        let mut kept = 0;
        let cap = self.cap_frames * FRAME;
        for stretch in stretches_of(&self.speech, self.samples) {
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

/// A window is speech-like when its loudness varies like speech and enough of it is voiced.
fn speech_like(loudness: &[f32], voiced: &[bool]) -> bool {
    let n = loudness.len() as f32;
    let voiced_share = voiced.iter().filter(|v| **v).count() as f32 / n;
    if voiced_share < MIN_VOICED_SHARE {
        return false;
    }
    let mean = loudness.iter().sum::<f32>() / n;
    let variance = loudness.iter().map(|l| (l - mean).powi(2)).sum::<f32>() / n;
    variance.sqrt() >= SPEECH_DB_STD
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
