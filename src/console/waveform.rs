//! The upload's waveform for the item page: an SVG picture earshot draws from the decoded audio
//! (its peaks, column by column), with every segment the engines reported marked on it, so a
//! reviewer sees where to listen before pressing play.

use std::fmt::Write as _;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Peer, Shared, audio, failed};
use crate::audio::{DecodeLimits, decode_file};
use crate::fetch;
use crate::job::Job;
use crate::state::review::ReviewItem;

/// The picture's size in SVG units (it scales to the page's width).
const WIDTH: usize = 1000;
const HEIGHT: f32 = 120.0;

/// Peaks kept while decoding: at most this many blocks; when full, neighbours are merged and the
/// block doubles, so memory stays bounded whatever the length.
const MAX_BLOCKS: usize = 4096;

/// The lowest and highest sample of each block of `per_block` samples, in order.
#[derive(Debug)]
pub struct Peaks {
    per_block: u64,
    blocks: Vec<(f32, f32)>,
    current: Option<(f32, f32)>,
    in_current: u64,
}

impl Default for Peaks {
    fn default() -> Self {
        Peaks {
            per_block: 64,
            blocks: Vec::new(),
            current: None,
            in_current: 0,
        }
    }
}

impl Peaks {
    pub fn push(&mut self, samples: &[f32]) {
        for &sample in samples {
            let (low, high) = self.current.get_or_insert((sample, sample));
            *low = low.min(sample);
            *high = high.max(sample);
            self.in_current += 1;
            if self.in_current == self.per_block {
                self.close_block();
            }
        }
    }

    fn close_block(&mut self) {
        if let Some(block) = self.current.take() {
            self.blocks.push(block);
        }
        self.in_current = 0;
        if self.blocks.len() == MAX_BLOCKS {
            self.blocks = self.blocks.chunks(2).map(span).collect();
            self.per_block *= 2;
        }
    }

    /// The peaks of `columns` equal slices of the audio (fewer when it is shorter).
    pub fn columns(mut self, columns: usize) -> Vec<(f32, f32)> {
        if self.in_current > 0 {
            self.close_block();
        }
        if self.blocks.is_empty() || columns == 0 {
            return Vec::new();
        }
        let blocks = self.blocks.len();
        let columns = columns.min(blocks);
        (0..columns)
            .map(|i| span(&self.blocks[i * blocks / columns..(i + 1) * blocks / columns]))
            .collect()
    }
}

/// The lowest and highest sample of consecutive blocks, as one block.
fn span(blocks: &[(f32, f32)]) -> (f32, f32) {
    blocks.iter().fold((f32::MAX, f32::MIN), |(l, h), (a, b)| {
        (l.min(*a), h.max(*b))
    })
}

/// Colours of the segments, by scene.
fn colour(scene: crate::model::Scene) -> &'static str {
    match scene {
        crate::model::Scene::Porn => "#d6336c",
        crate::model::Scene::Ads => "#f08c00",
        crate::model::Scene::Illegal => "#7048e8",
        crate::model::Scene::Abuse => "#e03131",
    }
}

/// The picture: the waveform over `duration_secs`, and the item's segments as bands over it.
pub fn svg(peaks: Peaks, duration_secs: f64, item: &ReviewItem) -> String {
    let columns = peaks.columns(WIDTH);
    let mid = HEIGHT / 2.0;
    let step = WIDTH as f32 / columns.len().max(1) as f32;
    let mut wave = String::new();
    for (i, (low, high)) in columns.iter().enumerate() {
        let x = (i as f32 + 0.5) * step;
        let top = mid - high.clamp(-1.0, 1.0) * (mid - 2.0);
        let bottom = (mid - low.clamp(-1.0, 1.0) * (mid - 2.0)).max(top + 0.5);
        let _ = write!(wave, "M{x:.1} {top:.1}V{bottom:.1}");
    }
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {}\" \
         preserveAspectRatio=\"none\" data-duration=\"{duration_secs:.3}\" data-columns=\"{}\">\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#f8f9fa\"/>",
        HEIGHT + 16.0,
        columns.len(),
    );
    let at = |secs: f64| (secs / duration_secs.max(1e-3) * WIDTH as f64).clamp(0.0, WIDTH as f64);
    for (scene, score) in &item.scenes {
        for segment in &score.segments {
            let x = at(segment.offset_secs);
            let width = (at(segment.offset_secs + segment.duration_secs) - x).max(3.0);
            let _ = write!(
                out,
                "<rect class=\"segment\" data-scene=\"{}\" data-offset=\"{:.3}\" x=\"{x:.1}\" y=\"0\" \
                 width=\"{width:.1}\" height=\"{HEIGHT}\" fill=\"{}\" fill-opacity=\"0.25\" \
                 stroke=\"{}\"><title>{} {} at {:.1} s</title></rect>",
                scene.as_str(),
                segment.offset_secs,
                colour(*scene),
                colour(*scene),
                scene.as_str(),
                segment.score,
                segment.offset_secs,
            );
        }
    }
    let _ = write!(
        out,
        "<path d=\"{wave}\" stroke=\"#343a40\" stroke-width=\"{:.2}\" fill=\"none\"/>\
         <line x1=\"0\" y1=\"{mid}\" x2=\"{WIDTH}\" y2=\"{mid}\" stroke=\"#adb5bd\" stroke-width=\"0.5\"/>",
        step.max(1.0),
    );
    // Seconds along the bottom, about ten ticks.
    let tick = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|t| duration_secs / t <= 10.0)
    .unwrap_or(7200.0);
    let mut t = 0.0;
    while t <= duration_secs {
        let x = at(t);
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{}\" font-size=\"11\" font-family=\"sans-serif\" fill=\"#495057\">{t:.0} s</text>",
            HEIGHT + 13.0
        );
        t += tick;
    }
    out.push_str("</svg>");
    out
}

/// `GET /waveform/{id}`: the upload (wherever its bytes are now) fetched, decoded and drawn.
pub(super) async fn waveform(
    State(c): Shared,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let item = match audio::item_for_user(&c, &headers, peer, &id).await {
        Ok(item) => item,
        Err(answer) => return *answer,
    };
    let (key, version_id) = audio::whereabouts(&c.pipeline.s3, &item).await;
    let job = Job {
        version_id: version_id.map(str::to_owned),
        ..Job::new(item.bucket.clone(), key)
    };
    let limits = &c.pipeline.config.limits;
    let spooled = fetch::get(
        &c.pipeline.s3,
        &job,
        limits.max_object_bytes,
        &std::env::temp_dir(),
    )
    .await;
    let spooled = match spooled {
        Ok(spooled) => spooled,
        Err(e) => return failed(e),
    };
    let suffix = crate::rules::key_suffix(&item.key);
    let limits = DecodeLimits {
        max_duration_secs: limits.max_duration_secs,
    };
    let drawn = tokio::task::spawn_blocking(move || {
        let mut peaks = Peaks::default();
        let info = decode_file(
            spooled.file.path(),
            suffix.as_deref(),
            limits,
            &mut |samples, _| peaks.push(samples),
        )?;
        Ok::<_, crate::audio::AudioError>(svg(peaks, info.duration_secs(), &item))
    })
    .await;
    match drawn {
        Ok(Ok(picture)) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "private, max-age=3600"),
            ],
            picture,
        )
            .into_response(),
        Ok(Err(e)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("The upload cannot be decoded: {e}"),
        )
            .into_response(),
        Err(e) => failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_stay_bounded_and_keep_the_loudest_sample() {
        let mut peaks = Peaks::default();
        let mut samples = vec![0.1f32; 10_000_000];
        samples[7_654_321] = 0.9;
        samples[123] = -0.8;
        peaks.push(&samples);
        assert!(peaks.blocks.len() < MAX_BLOCKS);
        let columns = peaks.columns(1000);
        assert_eq!(columns.len(), 1000);
        let high = columns.iter().map(|c| c.1).fold(f32::MIN, f32::max);
        let low = columns.iter().map(|c| c.0).fold(f32::MAX, f32::min);
        assert_eq!((low, high), (-0.8, 0.9));
        // The loud sample is drawn where it is: 76.5 % of the way along.
        let loudest = columns.iter().position(|c| c.1 == 0.9).expect("drawn");
        let at = loudest as f64 / columns.len() as f64;
        assert!((at - 0.765).abs() < 0.01, "{at}");
    }
}
