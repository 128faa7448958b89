//! Acoustic fingerprints: landmark (spectral-peak pair) hashing, after Wang's Shazam paper and
//! audfprint, with a tempo-tolerant matcher.
//!
//! Why landmarks and not Chromaprint: Chromaprint summarises ~0.1 s frames of chroma into a
//! continuous bit stream compared position by position, so it needs the query to be most of the
//! reference at the same speed; an 8 s excerpt embedded in other audio, or a 5 % tempo change,
//! breaks the alignment it relies on. Landmarks are local: each hash names two spectral peaks (their
//! frequencies and the time between them) and survives anything that keeps the strongest peaks
//! where they were — re-encoding, gain (peaks are local maxima, scale-free), noise down to about
//! 10 dB SNR (loud peaks stay the loudest), a telephone band (peaks are taken only in 312–3400 Hz),
//! cutting and embedding (each hash stands alone; matching counts hashes that agree on one time
//! offset). Tempo changes with pitch kept leave frequencies alone and scale times: the matcher
//! looks hashes up with Δt ± 1 frame and scans the offset histogram over time ratios 0.95–1.05.
//!
//! Pipeline: mono PCM at any rate → [`Resampler`] to 8 kHz → 512-point STFT, hop 128 (16 ms) →
//! log power in bins 20..=218 → peaks (maxima of a 17-frame × 17-bin neighbourhood) → each peak
//! paired with up to [`FANOUT`] later peaks within 48 frames and ±60 bins → 21-bit hashes.

mod index;
mod resample;

pub use index::{
    COVERED, Index, IndexFileError, LOCAL_FRAMES, Match, MatchSegment, REPEATS, SENSITIVE_AT,
    SUSPICIOUS_AT, Weigh, score_of, unique_suffix,
};
pub use resample::Resampler;

use std::collections::VecDeque;
use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

/// The rate fingerprints are computed at.
pub const SAMPLE_RATE: u32 = 8000;
const FFT_SIZE: usize = 512;
const HOP: usize = 128;
/// Seconds per spectrogram frame.
pub const FRAME_SECS: f64 = HOP as f64 / SAMPLE_RATE as f64;
/// Lowest and highest FFT bins used (312.5 Hz – 3406 Hz: inside a telephone band).
const MIN_BIN: usize = 20;
const MAX_BIN: usize = 218;
const BINS: usize = MAX_BIN - MIN_BIN + 1;
/// Peak neighbourhood half-sizes: frames and bins.
const PEAK_FRAMES: usize = 8;
const PEAK_BINS: usize = 8;
/// A peak must stand this far (natural-log power, ≈ 6 dB) above its frame's mean.
const PEAK_MIN_ABOVE_MEAN: f32 = 1.4;
/// Pairs per anchor peak, and the target zone.
pub const FANOUT: usize = 5;
pub(crate) const MAX_DT: u32 = 48;
const MAX_DF: i32 = 60;

/// One landmark: a 21-bit hash and the frame of its anchor peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Landmark {
    pub hash: u32,
    pub frame: u32,
}

/// The landmarks of a recording, in anchor-frame order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub landmarks: Vec<Landmark>,
    /// Spectrogram frames the recording spans.
    pub frames: u32,
}

impl Fingerprint {
    pub fn duration_secs(&self) -> f64 {
        f64::from(self.frames) * FRAME_SECS
    }

    /// A compact binary form: magic, frame count, then (hash, frame) pairs, little-endian u32s.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.landmarks.len() * 8);
        out.extend_from_slice(b"ESFP0001");
        out.extend_from_slice(&self.frames.to_le_bytes());
        for landmark in &self.landmarks {
            out.extend_from_slice(&landmark.hash.to_le_bytes());
            out.extend_from_slice(&landmark.frame.to_le_bytes());
        }
        out
    }

    /// Parses [`Fingerprint::to_bytes`].
    ///
    /// # Errors
    /// Not a fingerprint of this version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Fingerprint, FormatError> {
        let body = bytes
            .strip_prefix(b"ESFP0001")
            .ok_or(FormatError::NotAFingerprint)?;
        if body.len() < 4 || (body.len() - 4) % 8 != 0 {
            return Err(FormatError::Truncated { bytes: body.len() });
        }
        let word = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes"));
        let frames = word(0);
        let landmarks: Vec<Landmark> = (4..body.len())
            .step_by(8)
            .map(|at| Landmark {
                hash: word(at),
                frame: word(at + 4),
            })
            .collect();
        // A hash packs three fields into 21 bits (`pack`); a larger one is damage, and would
        // index past the reference index's table.
        if let Some(n) = landmarks.iter().position(|l| l.hash >= HASH_SPACE) {
            return Err(FormatError::HashOutOfRange {
                landmark: n,
                hash: landmarks[n].hash,
            });
        }
        // Matching allocates by length: a length no recording has is damage.
        if frames > MAX_FRAMES || landmarks.iter().any(|l| l.frame > frames) {
            return Err(FormatError::Length { frames });
        }
        Ok(Fingerprint { landmarks, frames })
    }
}

/// Bytes that are not a stored fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not an earshot fingerprint (version 1)")]
    NotAFingerprint,
    #[error("fingerprint body of {bytes} bytes is truncated")]
    Truncated { bytes: usize },
    #[error("landmark {landmark} has hash {hash:#x}, outside the 21-bit hash space")]
    HashOutOfRange { landmark: usize, hash: u32 },
    #[error(
        "{frames} frames, or a landmark past them: longer than any recording ({MAX_FRAMES} frames, 48 h)"
    )]
    Length { frames: u32 },
}

/// The most frames a fingerprint may span: 48 hours (`limits.max_duration_secs` may not be set
/// higher). Matching allocates in proportion to a query's and a reference's length, so a stored
/// fingerprint or print claiming more is refused as damaged.
pub const MAX_FRAMES: u32 = 48 * 3600 * SAMPLE_RATE / HOP as u32;

/// The bits of a landmark hash (and so the size of the reference index's table).
pub(crate) const HASH_BITS: u32 = 21;
/// Every hash [`pack`] makes is below this.
const HASH_SPACE: u32 = 1 << HASH_BITS;

/// Packs a pair of peaks into a hash: f1 (8 bits), f2 − f1 + 64 (7 bits), Δt (6 bits).
pub(crate) fn pack(f1: u32, df: i32, dt: u32) -> u32 {
    debug_assert!(f1 < 256 && (-63..=63).contains(&df) && dt < 64);
    (f1 << 13) | (((df + 64) as u32) << 6) | dt
}

pub(crate) fn dt_of(hash: u32) -> u32 {
    hash & 0x3f
}

#[derive(Debug, Clone, Copy)]
struct Peak {
    frame: u32,
    bin: u16,
}

/// Streaming fingerprinter: push mono PCM chunks, then [`Fingerprinter::finish`].
pub struct Fingerprinter {
    resampler: Option<Resampler>,
    resampled: Vec<f32>,
    /// 8 kHz samples not yet consumed by a full frame.
    pending: Vec<f32>,
    fft: Arc<dyn Fft<f32>>,
    window: Vec<f32>,
    scratch: Vec<Complex32>,
    buffer: Vec<Complex32>,
    /// The last 2 × PEAK_FRAMES + 1 frames: log power, and its max over ±PEAK_BINS.
    frames: VecDeque<(Vec<f32>, Vec<f32>, f32)>,
    frame_count: u32,
    /// Peaks not yet old enough to have all their pair partners.
    peaks: VecDeque<Peak>,
    landmarks: Vec<Landmark>,
}

impl Default for Fingerprinter {
    fn default() -> Self {
        Self::new()
    }
}

impl Fingerprinter {
    pub fn new() -> Fingerprinter {
        let fft = FftPlanner::new().plan_fft_forward(FFT_SIZE);
        let window = (0..FFT_SIZE)
            .map(|i| {
                let x = std::f32::consts::PI * 2.0 * i as f32 / FFT_SIZE as f32;
                0.5 - 0.5 * x.cos()
            })
            .collect();
        Fingerprinter {
            scratch: vec![Complex32::default(); fft.get_inplace_scratch_len()],
            buffer: vec![Complex32::default(); FFT_SIZE],
            fft,
            window,
            resampler: None,
            resampled: Vec::new(),
            pending: Vec::new(),
            frames: VecDeque::new(),
            frame_count: 0,
            peaks: VecDeque::new(),
            landmarks: Vec::new(),
        }
    }

    /// Adds mono samples at `rate` Hz. The rate must not change within one recording.
    pub fn push(&mut self, samples: &[f32], rate: u32) {
        let resampler = self
            .resampler
            .get_or_insert_with(|| Resampler::new(rate, SAMPLE_RATE));
        self.resampled.clear();
        resampler.process(samples, &mut self.resampled);
        self.pending.extend_from_slice(&self.resampled);
        let mut start = 0;
        while self.pending.len() - start >= FFT_SIZE {
            self.analyse_frame(start);
            start += HOP;
        }
        self.pending.drain(..start);
    }

    /// Flushes and returns the fingerprint.
    pub fn finish(mut self) -> Fingerprint {
        // Pad so the last samples form a frame, then let trailing frames become peak centres.
        if !self.pending.is_empty() {
            self.pending.resize(FFT_SIZE, 0.0);
            self.analyse_frame(0);
        }
        for _ in 0..PEAK_FRAMES {
            self.add_frame(vec![f32::MIN; BINS], f32::MAX);
        }
        self.emit_landmarks(u32::MAX);
        self.landmarks.sort_by_key(|l| (l.frame, l.hash));
        Fingerprint {
            landmarks: self.landmarks,
            frames: self.frame_count.saturating_sub(PEAK_FRAMES as u32),
        }
    }

    fn analyse_frame(&mut self, start: usize) {
        for (i, slot) in self.buffer.iter_mut().enumerate() {
            *slot = Complex32::new(self.pending[start + i] * self.window[i], 0.0);
        }
        self.fft
            .process_with_scratch(&mut self.buffer, &mut self.scratch);
        let power: Vec<f32> = self.buffer[MIN_BIN..=MAX_BIN]
            .iter()
            .map(|c| (c.norm_sqr() + 1e-9).ln())
            .collect();
        let mean = power.iter().sum::<f32>() / BINS as f32;
        self.add_frame(power, mean);
    }

    fn add_frame(&mut self, power: Vec<f32>, mean: f32) {
        let band_max = sliding_max(&power, PEAK_BINS);
        self.frames.push_back((power, band_max, mean));
        self.frame_count += 1;
        if self.frames.len() > 2 * PEAK_FRAMES + 1 {
            self.frames.pop_front();
        }
        if self.frames.len() == 2 * PEAK_FRAMES + 1 {
            let centre_frame = self.frame_count - 1 - PEAK_FRAMES as u32;
            let (power, band_max, mean) = &self.frames[PEAK_FRAMES];
            let floor = mean + PEAK_MIN_ABOVE_MEAN;
            for bin in 0..BINS {
                let value = power[bin];
                if value < floor || value < band_max[bin] {
                    continue;
                }
                // Ties (a steady tone) go to the earliest frame.
                let is_peak = self
                    .frames
                    .iter()
                    .enumerate()
                    .all(|(i, (_, other_max, _))| match i.cmp(&PEAK_FRAMES) {
                        std::cmp::Ordering::Less => other_max[bin] < value,
                        std::cmp::Ordering::Equal => true,
                        std::cmp::Ordering::Greater => other_max[bin] <= value,
                    });
                if is_peak {
                    self.peaks.push_back(Peak {
                        frame: centre_frame,
                        bin: (bin + MIN_BIN) as u16,
                    });
                }
            }
            self.emit_landmarks(centre_frame);
        }
    }

    /// Pairs every anchor whose target zone is complete (all peaks up to `now` are known).
    fn emit_landmarks(&mut self, now: u32) {
        while let Some(anchor) = self.peaks.front().copied() {
            if now != u32::MAX && anchor.frame + MAX_DT > now {
                break;
            }
            self.peaks.pop_front();
            let mut paired = 0;
            for target in &self.peaks {
                let dt = target.frame - anchor.frame;
                if dt == 0 {
                    continue;
                }
                if dt > MAX_DT {
                    break;
                }
                let df = i32::from(target.bin) - i32::from(anchor.bin);
                if df.abs() > MAX_DF {
                    continue;
                }
                self.landmarks.push(Landmark {
                    hash: pack(u32::from(anchor.bin), df, dt),
                    frame: anchor.frame,
                });
                paired += 1;
                if paired == FANOUT {
                    break;
                }
            }
        }
    }
}

/// The maximum of `values` over a window of ±`half` around each position.
fn sliding_max(values: &[f32], half: usize) -> Vec<f32> {
    let n = values.len();
    let mut out = vec![f32::MIN; n];
    // Monotonic deque of indices, for an O(n) pass.
    let mut deque: VecDeque<usize> = VecDeque::new();
    let mut next = 0;
    for (i, slot) in out.iter_mut().enumerate() {
        let hi = (i + half).min(n - 1);
        while next <= hi {
            while deque.back().is_some_and(|&j| values[j] <= values[next]) {
                deque.pop_back();
            }
            deque.push_back(next);
            next += 1;
        }
        let lo = i.saturating_sub(half);
        while deque.front().is_some_and(|&j| j < lo) {
            deque.pop_front();
        }
        *slot = values[*deque.front().expect("the window is never empty")];
    }
    out
}

/// Fingerprints a whole in-memory mono signal (tests and small inputs).
pub fn fingerprint(samples: &[f32], rate: u32) -> Fingerprint {
    let mut fingerprinter = Fingerprinter::new();
    for chunk in samples.chunks(4096) {
        fingerprinter.push(chunk, rate);
    }
    fingerprinter.finish()
}

/// Decodes a file and fingerprints it in one streaming pass.
///
/// # Errors
/// The file cannot be decoded (see [`crate::audio::AudioError`]).
pub fn fingerprint_file(
    path: &std::path::Path,
    suffix: Option<&str>,
    limits: crate::audio::DecodeLimits,
) -> Result<(crate::audio::AudioInfo, Fingerprint), crate::audio::AudioError> {
    fingerprint_file_and(path, suffix, limits, &mut |_, _| {})
}

/// [`fingerprint_file`], handing every decoded packet to `also` too (the same pass serves
/// another consumer of the PCM, such as the speech engine's gate).
///
/// # Errors
/// The file cannot be decoded (see [`crate::audio::AudioError`]).
pub fn fingerprint_file_and(
    path: &std::path::Path,
    suffix: Option<&str>,
    limits: crate::audio::DecodeLimits,
    also: &mut dyn FnMut(&[f32], u32),
) -> Result<(crate::audio::AudioInfo, Fingerprint), crate::audio::AudioError> {
    let mut fingerprinter = Fingerprinter::new();
    let info = crate::audio::decode_file(path, suffix, limits, &mut |samples, rate| {
        fingerprinter.push(samples, rate);
        also(samples, rate);
    })?;
    Ok((info, fingerprinter.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chirps(secs: f32, rate: u32, seed: u32) -> Vec<f32> {
        // A melody of short tones whose pitches come from `seed`: peaky, like music.
        let mut state = seed.max(1);
        let mut out = Vec::new();
        let note = (rate as f32 * 0.125) as usize;
        while out.len() < (secs * rate as f32) as usize {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let freq = 400.0 + (state % 2400) as f32;
            for i in 0..note {
                let t = i as f32 / rate as f32;
                out.push((2.0 * std::f32::consts::PI * freq * t).sin() * 0.5);
            }
        }
        out
    }

    #[test]
    fn sliding_max_matches_the_naive_one() {
        let values: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32).collect();
        let fast = sliding_max(&values, 3);
        for (i, got) in fast.iter().enumerate() {
            let lo = i.saturating_sub(3);
            let hi = (i + 3).min(values.len() - 1);
            let naive = values[lo..=hi].iter().cloned().fold(f32::MIN, f32::max);
            assert_eq!(*got, naive, "{i}");
        }
    }

    #[test]
    fn hashes_pack_and_unpack() {
        let hash = pack(218, -60, 48);
        assert!(hash < 1 << 21);
        assert_eq!(dt_of(hash), 48);
        assert_ne!(pack(20, 5, 3), pack(20, 5, 4));
    }

    #[test]
    fn a_fingerprint_round_trips_through_bytes() {
        let fp = fingerprint(&chirps(5.0, 8000, 3), 8000);
        assert!(fp.landmarks.len() > 50, "{} landmarks", fp.landmarks.len());
        assert_eq!(Fingerprint::from_bytes(&fp.to_bytes()), Ok(fp));
        assert!(Fingerprint::from_bytes(b"nope").is_err());
    }

    #[test]
    fn a_stored_fingerprint_with_a_hash_beyond_the_index_is_refused_not_a_panic() {
        // Found by the `prints` fuzz target: a library entry whose landmark hash lies outside
        // the hash space made the index build index past its table.
        let found = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/fuzz/prints-fingerprint-hash-beyond-the-index.bin"
        ))
        .expect("the fixture");
        assert!(matches!(
            Fingerprint::from_bytes(&found),
            Err(FormatError::HashOutOfRange { .. })
        ));
        assert!(pack(255, 63, 63) < HASH_SPACE);
    }

    #[test]
    fn silence_has_no_landmarks_and_length_is_counted() {
        let fp = fingerprint(&vec![0.0; 8000 * 3], 8000);
        assert!(fp.landmarks.is_empty());
        assert!(
            (fp.duration_secs() - 3.0).abs() < 0.1,
            "{}",
            fp.duration_secs()
        );
    }

    #[test]
    fn the_same_audio_at_another_rate_matches() {
        let at_8k = chirps(10.0, 8000, 9);
        let at_44k: Vec<f32> = {
            // Linear upsampling is enough for tones well below 4 kHz.
            let n = (at_8k.len() as f64 * 44_100.0 / 8000.0) as usize;
            (0..n)
                .map(|i| {
                    let x = i as f64 * 8000.0 / 44_100.0;
                    let j = x as usize;
                    let f = (x - j as f64) as f32;
                    let a = at_8k[j.min(at_8k.len() - 1)];
                    let b = at_8k[(j + 1).min(at_8k.len() - 1)];
                    a + (b - a) * f
                })
                .collect()
        };
        let reference = fingerprint(&at_8k, 8000);
        let total = reference.landmarks.len() as u32;
        let index = Index::build(vec![("r".to_owned(), reference)]);
        let found = index.query(&fingerprint(&at_44k, 44_100));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].hits * 2 > total,
            "{} of {total} landmarks agree",
            found[0].hits
        );
        assert!(found[0].segment.query_offset_secs < 0.5, "{found:?}");
    }
}
