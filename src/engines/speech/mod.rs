//! The `speech` engine: hears what is said, offline. The upload's speech, gathered by the
//! voice-activity [`gate`] while it is decoded, is transcribed by whisper.cpp (through whisper-rs)
//! with word times, and the transcript is matched against the [`dictionary`] files of the
//! engine's `dictionaries` location. Nothing leaves the user's servers.
//!
//! The model is a ggml file the user names with its SHA-256 (checked when the config loads); the
//! dictionaries are reloaded when they change, like the local engine's library.

pub mod abuse;
pub mod dictionary;
pub mod gate;
pub mod matcher;
pub mod meaning;
pub mod normalise;
pub mod transcript;

use std::sync::{Arc, Mutex, RwLock};

use whisper_rs::{
    DtwMode, DtwParameters, FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters,
};

use self::dictionary::DictionaryStore;
use self::gate::{RATE, Speech};
use self::matcher::Matcher;
use self::transcript::{Transcript, Word};
use super::{Analyser, Clip, EngineError};
use crate::config::SpeechEngineConfig;
use crate::model::{Scene, Verdict};

/// Silence put between stretches of speech when they are transcribed as one.
const JOIN_SILENCE_SECS: f64 = 0.5;
/// Characters of dictionary terms given to the recogniser as its prompt (well within Whisper's
/// 224 prompt tokens).
const PROMPT_CHARS: usize = 600;

pub struct SpeechEngine {
    name: String,
    config: SpeechEngineConfig,
    context: Arc<WhisperContext>,
    store: DictionaryStore,
    matcher: RwLock<Arc<Matcher>>,
    signature: Mutex<Vec<String>>,
    /// Transcriptions at once (each uses `threads` cores).
    slots: tokio::sync::Semaphore,
    /// The last transcript, so that `earshot moderate --transcript` transcribes once.
    last: Mutex<Option<([u8; 32], Arc<Transcript>)>>,
    /// The abuse classifier, when configured and enabled.
    abuse: Option<abuse::AbuseModel>,
    /// The sentence embedder for phrases by meaning, when configured and enabled …
    embedder: Option<Arc<meaning::Embedder>>,
    /// … and the dictionaries' example sentences, embedded.
    examples: RwLock<Arc<meaning::Examples>>,
}

impl SpeechEngine {
    /// Loads the model and the dictionaries.
    ///
    /// # Errors
    /// The model cannot be loaded (or is English-only and the language is not), or the
    /// dictionaries cannot be read.
    pub async fn load(
        name: &str,
        config: &SpeechEngineConfig,
        s3: &aws_sdk_s3::Client,
    ) -> Result<SpeechEngine, EngineError> {
        whisper_rs::install_logging_hooks();
        let path = config.model.clone();
        let context = tokio::task::spawn_blocking(move || {
            // Word times by dynamic time warping on the top text layers' attention: any model,
            // and right even where the gate let music through before the speech.
            let mut params = WhisperContextParameters::default();
            params.dtw_parameters(DtwParameters {
                mode: DtwMode::TopMost { n_top: 2 },
                ..DtwParameters::default()
            });
            WhisperContext::new_with_params(&path, params)
        })
        .await
        .map_err(|e| EngineError::failed(name, e))?
        .map_err(|e| EngineError::failed(name, format!("model {}: {e}", config.model)))?;
        if !context.is_multilingual() && config.language != "en" {
            return Err(EngineError::failed(
                name,
                format!(
                    "model {} is English-only; language {:?} needs a multilingual model",
                    config.model, config.language
                ),
            ));
        }
        let abuse = match config.abuse.as_ref().filter(|a| a.enabled) {
            Some(abuse) => {
                let model = abuse::AbuseModel::load(std::path::Path::new(&abuse.model))
                    .map_err(|e| EngineError::failed(name, format!("abuse.model: {e}")))?;
                tracing::info!(engine = %name, words = model.words(), "Abuse classifier loaded.");
                Some(model)
            }
            None => None,
        };
        let embedder = match config.meaning.as_ref().filter(|m| m.enabled) {
            Some(meaning) => {
                let (model, tokenizer) = (meaning.model.clone(), meaning.tokenizer.clone());
                let embedder = tokio::task::spawn_blocking(move || {
                    meaning::Embedder::load(model.as_ref(), tokenizer.as_ref())
                })
                .await
                .map_err(|e| EngineError::failed(name, e))?
                .map_err(|e| EngineError::failed(name, format!("meaning: {e}")))?;
                tracing::info!(engine = %name, "Sentence embedder loaded.");
                Some(Arc::new(embedder))
            }
            None => None,
        };
        let store = DictionaryStore::open(&config.dictionaries, s3);
        let engine = SpeechEngine {
            name: name.to_owned(),
            config: config.clone(),
            context: Arc::new(context),
            store,
            matcher: RwLock::new(Arc::new(Matcher::build(&[]))),
            signature: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(config.max_concurrent.max(1)),
            last: Mutex::new(None),
            abuse,
            embedder,
            examples: RwLock::new(Arc::default()),
        };
        engine.reload("Dictionaries loaded.").await?;
        Ok(engine)
    }

    fn matcher(&self) -> Arc<Matcher> {
        self.matcher.read().expect("never poisoned").clone()
    }

    /// Re-reads the dictionaries when their listing changed (logging `what`); true when it did.
    async fn reload(&self, what: &str) -> Result<bool, EngineError> {
        let failed = |e: dictionary::DictionaryError| EngineError::failed(&self.name, e);
        let signature = self.store.signature().await.map_err(failed)?;
        if *self.signature.lock().expect("never poisoned") == signature {
            return Ok(false);
        }
        let dictionaries = self.store.list().await.map_err(failed)?;
        let matcher = Matcher::build(&dictionaries);
        let examples = match &self.embedder {
            Some(embedder) => {
                let embedder = embedder.clone();
                let dictionaries = dictionaries.clone();
                let known = self.examples.read().expect("never poisoned").clone();
                tokio::task::spawn_blocking(move || {
                    meaning::Examples::build(&embedder, &dictionaries, &known)
                })
                .await
                .map_err(|e| EngineError::failed(&self.name, e))?
            }
            None => meaning::Examples::default(),
        };
        tracing::info!(
            engine = %self.name,
            dictionaries = dictionaries.len(),
            terms = matcher.term_count(),
            examples = examples.len(),
            location = %self.store.location(),
            "{what}"
        );
        *self.matcher.write().expect("never poisoned") = Arc::new(matcher);
        *self.examples.write().expect("never poisoned") = Arc::new(examples);
        *self.signature.lock().expect("never poisoned") = signature;
        Ok(true)
    }

    /// What was said in the clip (its gathered speech), transcribed once per upload.
    ///
    /// # Errors
    /// The clip carries no speech (decoded without this engine in mind), or the recogniser
    /// failed.
    pub async fn transcribe(&self, clip: &Clip) -> Result<Arc<Transcript>, EngineError> {
        if let Some((sha, transcript)) = &*self.last.lock().expect("never poisoned")
            && *sha == clip.sha256
        {
            return Ok(transcript.clone());
        }
        let Some(speech) = clip.speech.clone() else {
            return Err(EngineError::failed(
                &self.name,
                "the upload was decoded without gathering its speech",
            ));
        };
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| EngineError::failed(&self.name, e))?;
        let context = self.context.clone();
        let config = self.config.clone();
        let prompt = if config.prompt_terms {
            self.matcher().prompt(PROMPT_CHARS)
        } else {
            String::new()
        };
        let transcript =
            tokio::task::spawn_blocking(move || recognise(&context, &config, &prompt, &speech))
                .await
                .map_err(|e| EngineError::failed(&self.name, e))?
                .map_err(|e| EngineError::failed(&self.name, e))?;
        let transcript = Arc::new(transcript);
        *self.last.lock().expect("never poisoned") = Some((clip.sha256, transcript.clone()));
        Ok(transcript)
    }
}

#[async_trait::async_trait]
impl Analyser for SpeechEngine {
    fn name(&self) -> &str {
        &self.name
    }

    fn speech_cap_secs(&self) -> Option<u64> {
        Some(self.config.max_speech_secs)
    }

    async fn moderate(&self, clip: &Clip, scenes: &[Scene]) -> Result<Verdict, EngineError> {
        let transcript = self.transcribe(clip).await?;
        let mut verdict = self.matcher().verdict(&transcript, scenes);
        if let (Some(model), Some(settings)) = (&self.abuse, &self.config.abuse)
            && scenes.contains(&settings.scene)
        {
            abuse::judge(model, settings, &transcript, &mut verdict);
        }
        if let (Some(embedder), Some(settings)) = (&self.embedder, &self.config.meaning) {
            let examples = self.examples.read().expect("never poisoned").clone();
            let (embedder, threshold) = (embedder.clone(), settings.threshold);
            let (heard, scenes) = (transcript.clone(), scenes.to_vec());
            verdict = tokio::task::spawn_blocking(move || {
                meaning::judge(
                    &embedder,
                    &examples,
                    threshold,
                    &heard,
                    &scenes,
                    &mut verdict,
                );
                verdict
            })
            .await
            .map_err(|e| EngineError::failed(&self.name, e))?;
        }
        tracing::debug!(
            engine = %self.name,
            words = transcript.words.len(),
            speech_secs = transcript.speech_secs,
            "Transcribed."
        );
        Ok(verdict)
    }

    async fn refresh(&self) -> Result<bool, EngineError> {
        self.reload("Dictionaries changed; reloaded.").await
    }

    async fn learn(&self, _: &Clip, _: Scene, _: &str, _: &str) -> Result<bool, EngineError> {
        Ok(false)
    }

    async fn transcript(&self, clip: &Clip) -> Option<Result<Arc<Transcript>, EngineError>> {
        Some(self.transcribe(clip).await)
    }
}

/// Longest audio the recogniser is given at once: within Whisper's 30 s window, so each call
/// decodes one window from a fresh start with the prompt, and no word falls across a window's edge.
/// (Given a long recording whole, whisper.cpp's own seeking lost whole windows of speech: on 40
/// sentences read as one recording, recall fell from 78 % to 50 % of the same sentences read as
/// separate messages; bench/README.md, "The speech engine".)
const WINDOW_SECS: f64 = 28.0;
/// A long stretch is cut at its quietest 100 ms between this far and [`WINDOW_SECS`] into it.
const MIN_PIECE_SECS: f64 = 12.0;

/// The pieces the recogniser hears, each with where it starts in the upload: every stretch, long
/// ones cut at their quietest moment (a breath, the pause between sentences) into pieces of at
/// most [`WINDOW_SECS`].
fn pieces(speech: &Speech) -> Vec<(f64, &[f32])> {
    let window = (WINDOW_SECS * RATE as f64) as usize;
    let shortest = (MIN_PIECE_SECS * RATE as f64) as usize;
    let frame = RATE / 10;
    let mut out = Vec::new();
    for (at, pcm) in &speech.stretches {
        let mut from = 0;
        while pcm.len() - from > window {
            let quietest = (from + shortest..from + window - frame)
                .step_by(frame)
                .map(|start| {
                    let energy: f32 = pcm[start..start + frame].iter().map(|x| x * x).sum();
                    (energy, start)
                })
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map_or(from + window, |(_, start)| start + frame / 2);
            out.push((at + from as f64 / RATE as f64, &pcm[from..quietest]));
            from = quietest;
        }
        out.push((at + from as f64 / RATE as f64, &pcm[from..]));
    }
    out
}

/// Transcribes the [`pieces`] of `speech`, consecutive ones together (apart by
/// [`JOIN_SILENCE_SECS`]) up to [`WINDOW_SECS`] at a time, and puts every word back at its time in
/// the upload.
fn recognise(
    context: &WhisperContext,
    config: &SpeechEngineConfig,
    prompt: &str,
    speech: &Speech,
) -> Result<Transcript, String> {
    let mut transcript = Transcript {
        language: config.language.clone(),
        speech_secs: speech.speech_secs(),
        audio_secs: speech.audio_secs,
        capped: speech.capped,
        words: Vec::new(),
    };
    if speech.stretches.is_empty() {
        return Ok(transcript);
    }
    tracing::debug!(
        stretches = ?speech.stretches.iter().map(|(at, pcm)| (*at, pcm.len() as f64 / RATE as f64)).collect::<Vec<_>>(),
        "Speech gathered."
    );
    let gap = (JOIN_SILENCE_SECS * RATE as f64) as usize;
    let window = (WINDOW_SECS * RATE as f64) as usize;
    let mut state = context.create_state().map_err(|e| e.to_string())?;
    let mut joined: Vec<f32> = Vec::new();
    // (where a piece starts in `joined`, its length, where it starts in the upload; seconds)
    let mut starts: Vec<(f64, f64, f64)> = Vec::new();
    let all = pieces(speech);
    for (i, (at, pcm)) in all.iter().enumerate() {
        starts.push((
            joined.len() as f64 / RATE as f64,
            pcm.len() as f64 / RATE as f64,
            *at,
        ));
        joined.extend_from_slice(pcm);
        let fits = all
            .get(i + 1)
            .is_some_and(|(_, next)| joined.len() + gap + next.len() <= window);
        if !fits {
            decode(
                &mut state,
                context,
                config,
                prompt,
                &joined,
                &starts,
                &mut transcript,
            )?;
            joined.clear();
            starts.clear();
        } else {
            joined.extend(std::iter::repeat_n(0.0, gap));
        }
    }
    Ok(transcript)
}

/// Decodes one window (`joined`, its pieces at `starts`) and adds its words to `transcript`.
fn decode(
    state: &mut whisper_rs::WhisperState,
    context: &WhisperContext,
    config: &SpeechEngineConfig,
    prompt: &str,
    joined: &[f32],
    starts: &[(f64, f64, f64)],
    transcript: &mut Transcript,
) -> Result<(), String> {
    // A time in the upload; None in the silence between pieces, where nothing was said.
    let to_upload = |secs: f64| {
        let i = starts
            .partition_point(|(s, _, _)| *s <= secs)
            .saturating_sub(1);
        let (joined_start, len, upload_start) = starts[i];
        let into = secs - joined_start;
        (into <= len + 0.1).then_some(upload_start + into.min(len))
    };
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(i32::try_from(config.threads.max(1)).unwrap_or(1));
    params.set_language(Some(config.language.as_str()));
    params.set_translate(false);
    params.set_token_timestamps(true);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    params.set_suppress_blank(true);
    params.set_suppress_nst(true);
    params.set_no_context(true);
    if !prompt.is_empty() {
        params.set_initial_prompt(prompt);
    }
    state.full(params, joined).map_err(|e| e.to_string())?;
    if config.language == "auto" {
        let id = state.full_lang_id_from_state();
        if let Some(code) = whisper_rs::get_lang_str(id) {
            transcript.language = code.to_owned();
        }
    }
    let eot = context.token_eot();
    let mut heard: Vec<Word> = Vec::new();
    for segment in state.as_iter() {
        tracing::debug!(
            text = %segment.to_str_lossy().unwrap_or_default(),
            no_speech = segment.no_speech_probability(),
            "Recognised."
        );
        // Whisper's own doubt that a stretch is speech at all (the gate let a sound through).
        if segment.no_speech_probability() > 0.6 {
            continue;
        }
        // A recogniser caught in a loop over music ("cash reward, loan, cash reward, cash
        // reward…", the prompt's terms said again and again) is not what anyone said.
        if repeats_itself(&segment.to_str_lossy().unwrap_or_default()) {
            tracing::debug!("The recogniser repeated itself; segment dropped.");
            continue;
        }
        let mut word: Option<(Vec<u8>, f64, f64, Vec<f32>)> = None;
        let mut finish = |word: &mut Option<(Vec<u8>, f64, f64, Vec<f32>)>| {
            if let Some((bytes, start, end, probs)) = word.take() {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                // Nothing to match: blanks, punctuation, the "♪" Whisper writes for music.
                if normalise::tokens(&text).is_empty() {
                    return;
                }
                let Some(start_secs) = to_upload(start) else {
                    return;
                };
                heard.push(Word {
                    text,
                    start_secs,
                    end_secs: to_upload(end.max(start))
                        .unwrap_or(start_secs)
                        .max(start_secs),
                    confidence: probs.iter().sum::<f32>() / probs.len().max(1) as f32,
                });
            }
        };
        for i in 0..segment.n_tokens() {
            let Some(token) = segment.get_token(i) else {
                continue;
            };
            let data = token.token_data();
            if data.id >= eot {
                continue;
            }
            let Ok(bytes) = token.to_bytes() else {
                continue;
            };
            // The DTW time of the token when there is one (centiseconds), else whisper's own.
            let (t0, t1) = if data.t_dtw >= 0 {
                let at = data.t_dtw as f64 / 100.0;
                (at, at + 0.1)
            } else {
                (data.t0 as f64 / 100.0, data.t1 as f64 / 100.0)
            };
            // A token starting with a space, or a Chinese character, starts a word.
            let starts_word = bytes.first() == Some(&b' ')
                || std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|s| s.chars().next())
                    .is_some_and(normalise::is_cjk);
            if starts_word || word.is_none() {
                finish(&mut word);
                word = Some((Vec::new(), t0, t1, Vec::new()));
            }
            if let Some((text, _, end, probs)) = word.as_mut() {
                text.extend_from_slice(bytes);
                *end = t1;
                probs.push(data.p);
            }
        }
        finish(&mut word);
    }
    let said: Vec<&str> = heard.iter().map(|w| w.text.as_str()).collect();
    if repeats_itself(&said.join(" ")) {
        tracing::debug!(
            words = heard.len(),
            "The recogniser repeated itself; window dropped."
        );
    } else {
        transcript.words.extend(heard);
    }
    Ok(())
}

/// Whether recognised text (a segment, or a whole window) is a recogniser's loop: some run of one
/// to three words said at least three times, making up 40 % or more of the text (of 6 words or
/// more). Speech, even a jingle's refrain, says more between its repeats.
fn repeats_itself(text: &str) -> bool {
    let tokens = normalise::tokens(text);
    if tokens.len() < 6 {
        return false;
    }
    (1..=3).any(|n| {
        let mut counts: std::collections::HashMap<&[String], usize> =
            std::collections::HashMap::new();
        for gram in tokens.windows(n) {
            *counts.entry(gram).or_default() += 1;
        }
        counts
            .values()
            .any(|&count| count >= 3 && count * n * 5 >= tokens.len() * 2)
    })
}

#[cfg(test)]
mod tests {
    use super::repeats_itself;

    #[test]
    fn a_recogniser_loop_is_told_from_speech() {
        assert!(repeats_itself(
            "$1.000 per year, cash reward, loan, cash reward, cash reward, cash"
        ));
        assert!(repeats_itself("la la la la la la la la la"));
        assert!(!repeats_itself(
            "Yesterday the man on the radio mentioned cash reward twice."
        ));
        assert!(!repeats_itself(
            "Call now, call now: cheap car insurance, the cheapest car insurance in town."
        ));
        assert!(!repeats_itself("cash reward cash reward"));
        assert!(!repeats_itself(
            "I think we should talk about the money, the house and the car before the weekend."
        ));
    }
}
