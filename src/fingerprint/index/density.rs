//! How many landmarks each reference has where: per reference, a count per block of
//! [`DENSITY_FRAMES`] frames. It answers what share of a reference's landmarks in a stretch a
//! query reproduces (its coverage, see [`super::Weigh::ByCoverage`]) without the references'
//! fingerprints: 2 bytes per half second of reference.

use super::super::Fingerprint;

/// Frames per block (0.5 s).
const DENSITY_FRAMES: u32 = 32;

/// Blocks of a reference of `frames` frames (a landmark may sit on its last frame).
pub(super) fn blocks_of(frames: u32) -> usize {
    (frames / DENSITY_FRAMES) as usize + 1
}

/// The blocks of one fingerprint, appended to `table`.
pub(super) fn push_blocks(table: &mut Vec<u16>, fp: &Fingerprint) {
    let start = table.len();
    table.resize(start + blocks_of(fp.frames), 0);
    let last = table.len() - 1;
    for landmark in &fp.landmarks {
        let slot = &mut table[(start + (landmark.frame / DENSITY_FRAMES) as usize).min(last)];
        *slot = slot.saturating_add(1);
    }
}

/// Where each reference's blocks start in the table, given every reference's frames.
pub(super) fn starts(frames: &[u32]) -> Vec<usize> {
    let mut at = 0;
    frames
        .iter()
        .map(|&f| {
            let start = at;
            at += blocks_of(f);
            start
        })
        .collect()
}

/// Landmarks of the reference whose blocks are `blocks` with anchors in frames `from..=to`,
/// the blocks at either end counted in proportion to the part of them inside.
pub(super) fn landmarks_between(blocks: &[u16], from: u32, to: u32) -> f64 {
    if blocks.is_empty() || to < from {
        return 0.0;
    }
    let (first, last) = (from / DENSITY_FRAMES, to / DENSITY_FRAMES);
    let mut sum = 0.0;
    for block in first..=last {
        let Some(&count) = blocks.get(block as usize) else {
            break;
        };
        let low = (block * DENSITY_FRAMES).max(from);
        let high = ((block + 1) * DENSITY_FRAMES - 1).min(to);
        let inside = f64::from(high - low + 1) / f64::from(DENSITY_FRAMES);
        sum += f64::from(count) * inside;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::super::super::Landmark;
    use super::*;

    #[test]
    fn counts_landmarks_by_stretch_with_partial_blocks_in_proportion() {
        let landmarks = (0..200)
            .map(|frame| Landmark { hash: 1, frame })
            .chain([Landmark {
                hash: 2,
                frame: 199,
            }])
            .collect();
        let fp = Fingerprint {
            landmarks,
            frames: 200,
        };
        let mut table = vec![7u16];
        push_blocks(&mut table, &fp);
        assert_eq!(table.len(), 1 + blocks_of(200));
        let own = &table[1..];
        assert_eq!(landmarks_between(own, 0, 191), 192.0);
        assert_eq!(landmarks_between(own, 192, 223), 9.0);
        assert_eq!(landmarks_between(own, 192, 400), 9.0);
        assert_eq!(landmarks_between(own, 32, 63), 32.0);
        assert_eq!(landmarks_between(own, 16, 47), 32.0);
        assert_eq!(landmarks_between(own, 50, 40), 0.0);
        assert_eq!(starts(&[200, 31, 32]), vec![0, 7, 8]);
    }
}
