//! How unlikely a match is by chance (its significance) and the score that says so.

use super::{FINE_BAND, Index, RATIOS};

/// Landmarks per independent chance agreement (see [`Index::significance`]). Measured on 498
/// queries outside the test library (tests/it/fingerprint.rs, 1,435 chance matches): counted one
/// by one, chance agreements reached a significance of 11.7, far beyond what 498 queries should
/// show (about log₁₀ 498 = 2.7); in clumps of 2 they reached 4.0, of 2.5 about 2.7, of 3 1.7. 3
/// errs on the side of calling agreement chance; true 8 s excerpts keep a significance of 37+.
const CLUMP: f64 = 3.0;
/// Significance (−log₁₀ false-alarm probability) at which a match becomes suspicious (61) and
/// sensitive (91).
pub const SUSPICIOUS_AT: f64 = 4.0;
pub const SENSITIVE_AT: f64 = 12.0;

impl Index {
    /// −log₁₀ of the probability that chance alone puts `hits` agreeing landmarks in one
    /// alignment of some reference, for a query of `query_frames` frames whose lookups hit each
    /// reference `totals` times in all.
    ///
    /// Chance hits of reference r spread over every offset the query can take against it
    /// (`range` = its frames + the query's), so one alignment window of 2 × [`FINE_BAND`] frames
    /// expects λ = hits × window ÷ range of them, Poisson-distributed; the matcher tries
    /// range ÷ [`FINE_BAND`] windows at each of the [`RATIOS`]. Summed over the library:
    /// FA = Σ windows × P(Poisson(λ) ≥ k). Hits come in clumps (an anchor peak that lines up by
    /// chance often brings its paired peaks along, and one query landmark is looked up under three
    /// Δt), so counts are taken in units of [`CLUMP`] landmarks. A reference sharing many hashes
    /// with the query (one composer's instruments, a short or band-limited query whose few
    /// landmarks are common ones) thus needs proportionally more agreeing landmarks.
    ///
    /// With `own` = (reference, agreeing landmarks at its strongest other alignment), the
    /// matched reference's λ is also read off its own other alignments
    /// ([`super::Weigh::AgainstOwnAlignments`]). Two pieces that share a loop, a sample or a steady timbre agree at many
    /// alignments, far more than hashes spread evenly would give; the strongest of those is what
    /// chance reaches over this pair's windows, so λ is at least the rate at which the largest of
    /// its windows reaches it ([`rate_whose_largest_reaches`]). One recording agrees best at one
    /// place, well above its other alignments; a shared loop agrees about as well at each.
    pub(super) fn significance(
        &self,
        totals: &[(u32, u32)],
        query_frames: u32,
        hits: f64,
        own: Option<(u32, u32)>,
    ) -> f64 {
        let query = f64::from(query_frames.max(1));
        let k = hits / CLUMP;
        let mut log_terms: Vec<f64> = Vec::with_capacity(totals.len());
        for &(reference, total) in totals {
            let range = (f64::from(self.frames[reference as usize]) + query).max(1.0);
            let mut lambda = f64::from(total) / CLUMP * (2.0 * FINE_BAND) / range;
            let alignments = (range / FINE_BAND).max(1.0);
            if let Some((matched, runner_up)) = own
                && matched == reference
            {
                let reached = rate_whose_largest_reaches(f64::from(runner_up) / CLUMP, alignments);
                lambda = lambda.max(reached);
            }
            let windows = alignments * RATIOS.len() as f64;
            log_terms.push(windows.ln() + ln_poisson_tail(lambda, k));
        }
        let Some(top) = log_terms.iter().copied().reduce(f64::max) else {
            return f64::INFINITY;
        };
        let sum: f64 = log_terms.iter().map(|t| (t - top).exp()).sum();
        let ln_false_alarm = (top + sum.ln()).min(0.0);
        // (+ 0.0: no false alarm probability of 1 reads as −0.)
        -ln_false_alarm / std::f64::consts::LN_10 + 0.0
    }
}

/// The Poisson rate λ at which the largest of `windows` independent counts is expected to reach
/// `k`: windows × P(Poisson(λ) ≥ k) = 1 (0 when k is 0 or fewer windows than one).
fn rate_whose_largest_reaches(k: f64, windows: f64) -> f64 {
    if k <= 0.0 {
        return 0.0;
    }
    let target = -windows.max(1.0).ln();
    let (mut low, mut high) = (0.0f64, k.ceil());
    for _ in 0..60 {
        let mid = 0.5 * (low + high);
        if ln_poisson_tail(mid, k) < target {
            low = mid;
        } else {
            high = mid;
        }
    }
    0.5 * (low + high)
}

/// ln P(X ≥ k) for X ~ Poisson(λ), for real k ≥ 0 (the sum starts at ⌈k⌉).
fn ln_poisson_tail(lambda: f64, k: f64) -> f64 {
    let k = k.ceil();
    if k <= 0.0 {
        return 0.0;
    }
    if lambda <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if lambda >= k {
        return 0.0;
    }
    // ln pmf(k), then the terms after it relative to it: pmf(j + 1) = pmf(j) × λ / (j + 1).
    let ln_pmf = k * lambda.ln() - lambda - ln_factorial(k);
    let (mut term, mut sum, mut j) = (1.0f64, 1.0f64, k);
    while term > 1e-12 * sum && j < k + 10_000.0 {
        j += 1.0;
        term *= lambda / j;
        sum += term;
    }
    (ln_pmf + sum.ln()).min(0.0)
}

/// ln n! (exact below 20, Stirling's series above).
fn ln_factorial(n: f64) -> f64 {
    if n < 20.0 {
        return (2..=n as u64).map(|i| (i as f64).ln()).sum();
    }
    n * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI * n).ln() + 1.0 / (12.0 * n)
        - 1.0 / (360.0 * n.powi(3))
}

/// Maps a match's significance (−log₁₀ of its false-alarm probability) to COS's 0–100 scale:
/// under [`SUSPICIOUS_AT`] normal (0–59, rising with it), from it to [`SENSITIVE_AT`] suspicious
/// (61–90), above that sensitive (91–100, 100 from [`SENSITIVE_AT`] + 10).
pub fn score_of(significance: f64) -> u8 {
    if !significance.is_finite() || significance <= 0.0 {
        return if significance.is_infinite() && significance > 0.0 {
            100
        } else {
            0
        };
    }
    if significance < SUSPICIOUS_AT {
        return (59.0 * significance / SUSPICIOUS_AT).floor() as u8;
    }
    if significance < SENSITIVE_AT {
        let t = (significance - SUSPICIOUS_AT) / (SENSITIVE_AT - SUSPICIOUS_AT);
        return (61.0 + t * 29.0).round() as u8;
    }
    let t = ((significance - SENSITIVE_AT) / 10.0).min(1.0);
    (91.0 + t * 9.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::super::tests::synthetic;
    use super::*;
    use crate::fingerprint::Fingerprint;

    #[test]
    fn significance_maps_onto_the_documented_bands() {
        // (significance, lowest, highest)
        let table = [
            (f64::NEG_INFINITY, 0, 0),
            (0.0, 0, 0),
            (1.7, 20, 30),
            (SUSPICIOUS_AT - 0.01, 55, 59),
            (SUSPICIOUS_AT, 61, 61),
            ((SUSPICIOUS_AT + SENSITIVE_AT) / 2.0, 74, 77),
            (SENSITIVE_AT - 0.01, 90, 90),
            (SENSITIVE_AT, 91, 91),
            (SENSITIVE_AT + 5.0, 95, 96),
            (SENSITIVE_AT + 10.0, 100, 100),
            (900.0, 100, 100),
            (f64::INFINITY, 100, 100),
        ];
        for (significance, low, high) in table {
            let score = score_of(significance);
            assert!(
                (low..=high).contains(&score),
                "{significance} → {score}, want {low}–{high}"
            );
        }
    }

    #[test]
    fn poisson_tails_match_direct_sums() {
        for (lambda, k) in [(0.1f64, 1u32), (0.5, 3), (2.0, 7), (0.03, 25), (4.0, 60)] {
            let mut pmf = (-lambda).exp();
            let mut below = 0.0;
            for j in 0..k {
                below += pmf;
                pmf *= lambda / f64::from(j + 1);
            }
            let mut direct = 0.0;
            let mut term = pmf;
            for j in k..k + 200 {
                direct += term;
                term *= lambda / f64::from(j + 1);
            }
            let got = ln_poisson_tail(lambda, f64::from(k));
            let want = if direct > 1e-300 {
                direct.ln()
            } else {
                (1.0 - below).ln()
            };
            assert!(
                (got - want).abs() < 1e-6 * want.abs().max(1.0),
                "λ {lambda}, k {k}: {got} vs {want}"
            );
        }
        assert_eq!(ln_poisson_tail(3.0, 0.0), 0.0);
        assert_eq!(ln_poisson_tail(5.0, 2.0), 0.0);
    }

    #[test]
    fn agreement_is_weighed_against_what_chance_gives_this_query_and_library() {
        let refs: Vec<(String, Fingerprint)> = (0..20)
            .map(|i| (format!("ref{i}"), synthetic(i + 1, 3000)))
            .collect();
        let index = Index::build(refs);
        let quiet = [(0u32, 50u32)];
        let busy = [(0u32, 2000u32)];
        let library: Vec<(u32, u32)> = (0..20).map(|r| (r, 2000)).collect();
        // The same 30 agreeing landmarks mean less when the query shares many hashes with the
        // reference (a short or band-limited query of common landmarks, one composer's sound)…
        let against_quiet = index.significance(&quiet, 500, 30.0, None);
        let against_busy = index.significance(&busy, 500, 30.0, None);
        assert!(
            against_quiet > against_busy + 3.0,
            "{against_quiet} vs {against_busy}"
        );
        // …and when many references could have given them by chance.
        let against_library = index.significance(&library, 500, 30.0, None);
        assert!(
            against_busy > against_library + 1.0,
            "{against_busy} vs {against_library}"
        );
        // More agreement is always more significant.
        assert!(index.significance(&busy, 500, 60.0, None) > against_busy + 3.0);
    }

    #[test]
    fn agreement_a_pair_reaches_at_other_alignments_is_not_evidence() {
        let refs: Vec<(String, Fingerprint)> = (0..20)
            .map(|i| (format!("ref{i}"), synthetic(i + 1, 10_000)))
            .collect();
        let index = Index::build(refs);
        let library: Vec<(u32, u32)> = (0..20).map(|r| (r, 400)).collect();
        let (query, hits) = (10_000, 190.0);
        let evenly = index.significance(&library, query, hits, None);
        let own = |runner_up| index.significance(&library, query, hits, Some((3, runner_up)));
        // A loop two pieces share: as much agreement at another alignment as at the best.
        assert!(evenly > 50.0, "{evenly}");
        assert!(own(188) < 1.0, "{}", own(188));
        // One recording: its other alignments agree no better than chance spread evenly would.
        assert_eq!(own(6), evenly);
        // In between, the more the best stands out from the rest, the stronger.
        assert!(own(60) > own(100) + 5.0 && own(100) > own(150) + 5.0);
    }

    #[test]
    fn the_rate_whose_largest_window_reaches_a_count() {
        for (k, windows) in [(5.0, 100.0), (20.0, 3000.0), (60.0, 1e5)] {
            let lambda = rate_whose_largest_reaches(k, windows);
            let expected = windows * ln_poisson_tail(lambda, k).exp();
            assert!((expected - 1.0).abs() < 1e-6, "k {k}: {expected}");
        }
        assert_eq!(rate_whose_largest_reaches(0.0, 100.0), 0.0);
    }
}
