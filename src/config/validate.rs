//! The checks serde cannot express (score range, suffix list, engine references, overlapping
//! rules, URLs, secrets), each naming the key and the file it came from.

use figment::Figment;

use crate::scope::Pattern;

use super::*;

impl Config {
    pub(super) fn validate(&self, figment: &Figment) -> Result<(), ConfigError> {
        let invalid = |key: String, message: String| {
            let source_name = figment
                .find_metadata(&key)
                .or_else(|| figment.find_metadata(key.split('.').next().unwrap_or(&key)))
                .map(|meta| match &meta.source {
                    Some(source) => format!("{} ({source})", meta.name),
                    None => meta.name.to_string(),
                })
                .unwrap_or_else(|| "the configuration".to_owned());
            ConfigError::Invalid {
                key,
                source_name,
                message,
            }
        };
        let mut seen_ids = std::collections::HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let key = |field: &str| format!("rules.{i}.{field}");
            if rule.id.is_empty() {
                return Err(invalid(key("id"), "must not be empty".to_owned()));
            }
            if !seen_ids.insert(rule.id.as_str()) {
                return Err(invalid(
                    key("id"),
                    format!("duplicate rule id {:?}", rule.id),
                ));
            }
            if rule.bucket.is_empty() {
                return Err(invalid(key("bucket"), "must not be empty".to_owned()));
            }
            for suffix in &rule.suffixes {
                if !SUPPORTED_SUFFIXES.contains(&bare_suffix(suffix).as_str()) {
                    return Err(invalid(
                        key("suffixes"),
                        format!(
                            "unknown suffix {suffix:?}; supported: {}",
                            SUPPORTED_SUFFIXES.join(" ")
                        ),
                    ));
                }
            }
            if rule.scenes.is_empty() {
                return Err(invalid(
                    key("scenes"),
                    "must name at least one scene".to_owned(),
                ));
            }
            let names = rule.engine.names();
            if names.is_empty() {
                return Err(invalid(
                    key("engine"),
                    "must name at least one engine".to_owned(),
                ));
            }
            for (n, name) in names.iter().enumerate() {
                if !self.engines.contains_key(name) {
                    return Err(invalid(
                        key("engine"),
                        format!("names engine {name:?}, which no [engines.{name}] section defines"),
                    ));
                }
                if names[..n].contains(name) {
                    return Err(invalid(
                        key("engine"),
                        format!("names engine {name:?} twice"),
                    ));
                }
            }
            if !(60..=100).contains(&rule.block.min_score) {
                return Err(invalid(
                    key("block.min_score"),
                    format!(
                        "must be an integer from 60 to 100, got {}",
                        rule.block.min_score
                    ),
                ));
            }
            if rule.block.review == Review::Human && rule.block.min_score > 90 {
                return Err(invalid(
                    key("block.min_score"),
                    format!(
                        "with review = \"human\", scores from min_score to 90 wait for a person \
                         and higher ones are blocked at once: {} leaves nothing to review",
                        rule.block.min_score
                    ),
                ));
            }
            if rule.block.review == Review::Human && rule.block.review_timeout_secs == 0 {
                return Err(invalid(
                    key("block.review_timeout_secs"),
                    "must be at least 1".to_owned(),
                ));
            }
            if rule.block.review == Review::Human && rule.block.review_lease_secs == 0 {
                return Err(invalid(
                    key("block.review_lease_secs"),
                    "must be at least 1".to_owned(),
                ));
            }
            if let Some(callback) = &rule.callback {
                let parsed = url::Url::parse(&callback.url);
                if !matches!(parsed.as_ref().map(|u| u.scheme()), Ok("http" | "https")) {
                    return Err(invalid(
                        key("callback.url"),
                        format!("must be an http(s) URL, got {:?}", callback.url),
                    ));
                }
                if callback.max_attempts == 0 {
                    return Err(invalid(
                        key("callback.max_attempts"),
                        "must be at least 1".to_owned(),
                    ));
                }
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.retro.auto && !rule.retro.keep {
                return Err(invalid(
                    format!("rules.{i}.retro.auto"),
                    "a retro-hunt searches kept fingerprints: set retro.keep = true as well"
                        .to_owned(),
                ));
            }
            if let Some(k) = rule.exclude.iter().position(String::is_empty) {
                return Err(invalid(
                    format!("rules.{i}.exclude.{k}"),
                    "an empty exclusion would exclude every key; remove it".to_owned(),
                ));
            }
        }
        for (i, a) in self.rules.iter().enumerate() {
            for (j, b) in self.rules.iter().enumerate().skip(i + 1) {
                if rules_overlap(a, b) {
                    return Err(invalid(
                        format!("rules.{j}.prefix"),
                        format!(
                            "rule {:?} overlaps rule {:?}: same bucket {:?}, scopes {:?} and {:?} \
                             can cover one key (give one an `exclude` for the other), and their \
                             suffixes share a format; a key must match one rule",
                            b.id, a.id, a.bucket, b.prefix, a.prefix
                        ),
                    ));
                }
            }
        }
        for (name, engine) in &self.engines {
            match engine {
                EngineConfig::Local(local) if local.library.is_empty() => {
                    return Err(invalid(
                        format!("engines.{name}.library"),
                        "must name a directory or an s3:// prefix".to_owned(),
                    ));
                }
                EngineConfig::Local(_) => {}
                EngineConfig::Speech(speech) => {
                    let key = |field: &str| format!("engines.{name}.{field}");
                    check_speech(speech).map_err(|(field, m)| invalid(key(field), m))?;
                }
                EngineConfig::TencentAms(ams) => {
                    let key = |field: &str| format!("engines.{name}.{field}");
                    for (field, value) in [
                        ("secret_id", &ams.secret_id),
                        ("secret_key", &ams.secret_key),
                        ("seed", &ams.seed),
                    ] {
                        if value.is_empty() {
                            return Err(invalid(key(field), "must not be empty".to_owned()));
                        }
                    }
                    check_http_url(&ams.endpoint).map_err(|m| invalid(key("endpoint"), m))?;
                    check_http_url(&ams.callback_base_url)
                        .map_err(|m| invalid(key("callback_base_url"), m))?;
                    if ams.biz_type.as_ref().is_some_and(|b| {
                        !(3..=32).contains(&b.len())
                            || !b.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    }) {
                        return Err(invalid(
                            key("biz_type"),
                            "must be 3–32 letters, digits or underscores".to_owned(),
                        ));
                    }
                    if !(1..=10).contains(&ams.max_batch) {
                        return Err(invalid(
                            key("max_batch"),
                            format!("AMS takes 1 to 10 tasks per call, got {}", ams.max_batch),
                        ));
                    }
                    check_async(
                        ams.rate_per_sec,
                        ams.max_concurrent,
                        ams.poll_after_secs,
                        ams.deadline_secs,
                    )
                    .map_err(|(field, m)| invalid(key(field), m))?;
                }
                EngineConfig::Shumei(shumei) => {
                    let key = |field: &str| format!("engines.{name}.{field}");
                    for (field, value) in [
                        ("access_key", &shumei.access_key),
                        ("app_id", &shumei.app_id),
                        ("event_id", &shumei.event_id),
                        ("risk_types", &shumei.risk_types),
                    ] {
                        if value.is_empty() {
                            return Err(invalid(key(field), "must not be empty".to_owned()));
                        }
                    }
                    match &shumei.endpoint {
                        Some(endpoint) => {
                            check_http_url(endpoint).map_err(|m| invalid(key("endpoint"), m))?;
                        }
                        None if !["sh", "xjp", "gg"].contains(&shumei.region.as_str()) => {
                            return Err(invalid(
                                key("region"),
                                format!(
                                    "must be sh, xjp or gg (or set endpoint), got {:?}",
                                    shumei.region
                                ),
                            ));
                        }
                        None => {}
                    }
                    check_http_url(&shumei.callback_base_url)
                        .map_err(|m| invalid(key("callback_base_url"), m))?;
                    check_async(
                        shumei.rate_per_sec,
                        shumei.max_concurrent,
                        shumei.poll_after_secs,
                        shumei.deadline_secs,
                    )
                    .map_err(|(field, m)| invalid(key(field), m))?;
                }
                EngineConfig::Http(http) => {
                    let key = |field: &str| format!("engines.{name}.{field}");
                    check_http_url(&http.url).map_err(|m| invalid(key("url"), m))?;
                    if http.timeout_secs == 0 || http.max_concurrent == 0 {
                        return Err(invalid(
                            key("timeout_secs"),
                            "timeout_secs and max_concurrent must be at least 1".to_owned(),
                        ));
                    }
                }
            }
        }
        let asynchronous = self
            .engines
            .values()
            .any(|e| matches!(e, EngineConfig::TencentAms(_) | EngineConfig::Shumei(_)));
        if asynchronous
            && self
                .async_jobs
                .token_key
                .as_ref()
                .is_none_or(|k| k.len() < 32)
        {
            return Err(invalid(
                "async_jobs.token_key".to_owned(),
                "an asynchronous engine (tencent_ams, shumei) needs a token key of at least 32 \
                 characters to sign its callback URLs"
                    .to_owned(),
            ));
        }
        if self.async_jobs.sweep_secs == 0 {
            return Err(invalid(
                "async_jobs.sweep_secs".to_owned(),
                "must be positive".to_owned(),
            ));
        }
        if self.limits.max_object_bytes == 0 {
            return Err(invalid(
                "limits.max_object_bytes".to_owned(),
                "must be positive".to_owned(),
            ));
        }
        if self.limits.max_duration_secs == 0 || self.limits.max_duration_secs > 48 * 3600 {
            return Err(invalid(
                "limits.max_duration_secs".to_owned(),
                "must be from 1 to 172800 (48 h)".to_owned(),
            ));
        }
        if self.limits.job_lease_secs < 3 {
            return Err(invalid(
                "limits.job_lease_secs".to_owned(),
                "must be at least 3 (it is renewed every third of it)".to_owned(),
            ));
        }
        if let Some(webhook) = &self.sources.webhook {
            if webhook.listen.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(
                    "sources.webhook.listen".to_owned(),
                    format!("`{}` is not an address like 127.0.0.1:8080", webhook.listen),
                ));
            }
            if webhook.max_concurrency == 0 || webhook.queue_capacity == 0 {
                return Err(invalid(
                    "sources.webhook".to_owned(),
                    "max_concurrency and queue_capacity must be at least 1".to_owned(),
                ));
            }
            if webhook.minio.is_none() && webhook.sns.is_none() {
                return Err(invalid(
                    "sources.webhook".to_owned(),
                    "enable [sources.webhook.minio] or [sources.webhook.sns] (or both)".to_owned(),
                ));
            }
            if webhook
                .minio
                .as_ref()
                .is_some_and(|m| m.auth_token.len() < 16)
            {
                return Err(invalid(
                    "sources.webhook.minio.auth_token".to_owned(),
                    "must be at least 16 characters".to_owned(),
                ));
            }
            for origin in webhook.sns.iter().flat_map(|s| &s.trusted_cert_origins) {
                let parsed = url::Url::parse(origin);
                if !parsed.is_ok_and(|u| u.path() == "/" && !origin.ends_with('/')) {
                    return Err(invalid(
                        "sources.webhook.sns.trusted_cert_origins".to_owned(),
                        format!("`{origin}` is not an origin like http://127.0.0.1:4566"),
                    ));
                }
            }
        }
        if let Some(listen) = &self.admin.listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(invalid(
                "admin.listen".to_owned(),
                format!("`{listen}` is not an address like 127.0.0.1:9090"),
            ));
        }
        if let Some(sqs) = &self.sources.sqs {
            if sqs.max_concurrency == 0 {
                return Err(invalid(
                    "sources.sqs.max_concurrency".to_owned(),
                    "must be at least 1".to_owned(),
                ));
            }
            if sqs.wait_time_secs > 20 {
                return Err(invalid(
                    "sources.sqs.wait_time_secs".to_owned(),
                    format!("SQS allows at most 20, got {}", sqs.wait_time_secs),
                ));
            }
            if !(10..=43_200).contains(&sqs.visibility_timeout_secs) {
                return Err(invalid(
                    "sources.sqs.visibility_timeout_secs".to_owned(),
                    format!(
                        "must be from 10 to 43200, got {}",
                        sqs.visibility_timeout_secs
                    ),
                ));
            }
        }
        if let Some(console) = &self.console {
            if console.listen.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(
                    "console.listen".to_owned(),
                    format!("`{}` is not an address like 127.0.0.1:8090", console.listen),
                ));
            }
            if console.session_key.chars().count() < 32 {
                return Err(invalid(
                    "console.session_key".to_owned(),
                    "must be at least 32 characters".to_owned(),
                ));
            }
            let mut names = std::collections::HashSet::new();
            for (i, user) in console.users.iter().enumerate() {
                if user.name.is_empty() || !names.insert(user.name.as_str()) {
                    return Err(invalid(
                        format!("console.users.{i}.name"),
                        format!("must be non-empty and unique, got {:?}", user.name),
                    ));
                }
                if let Some(hash) = &user.password_hash
                    && let Err(e) = argon2::PasswordHash::new(hash)
                {
                    return Err(invalid(
                        format!("console.users.{i}.password_hash"),
                        format!(
                            "not an argon2 PHC string ({e}); `earshot hash-password` prints one"
                        ),
                    ));
                }
            }
            if let Some(proxy) = &console.proxy
                && (proxy.header.trim().is_empty() || proxy.trusted_peers.is_empty())
            {
                return Err(invalid(
                    "console.proxy".to_owned(),
                    "needs a header and the proxy's addresses in trusted_peers".to_owned(),
                ));
            }
        }
        Ok(())
    }
}

fn check_http_url(text: &str) -> Result<(), String> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(()),
        _ => Err(format!("must be an http(s) URL, got {text:?}")),
    }
}

fn check_async(
    rate_per_sec: f64,
    max_concurrent: usize,
    poll_after_secs: u64,
    deadline_secs: u64,
) -> Result<(), (&'static str, String)> {
    if !(rate_per_sec > 0.0 && rate_per_sec.is_finite()) {
        return Err((
            "rate_per_sec",
            format!("must be positive, got {rate_per_sec}"),
        ));
    }
    if max_concurrent == 0 {
        return Err(("max_concurrent", "must be at least 1".to_owned()));
    }
    if poll_after_secs == 0 || poll_after_secs > deadline_secs {
        return Err((
            "poll_after_secs",
            format!("must be from 1 to deadline_secs ({deadline_secs}), got {poll_after_secs}"),
        ));
    }
    Ok(())
}

/// Two rules overlap when a key could match both: same bucket, their scopes can cover one key,
/// neither scope is carved out of the other by an exclusion, and their suffix sets intersect (an
/// empty set is all suffixes).
fn rules_overlap(a: &RuleConfig, b: &RuleConfig) -> bool {
    if a.bucket != b.bucket || a.suffix_set().is_disjoint(&b.suffix_set()) {
        return false;
    }
    let (scope_a, scope_b) = (Pattern::new(&a.prefix), Pattern::new(&b.prefix));
    scope_a.may_share_key(&scope_b) && !carved_out(a, &scope_b) && !carved_out(b, &scope_a)
}

/// Whether every key `scope` covers is excluded by `rule` (an exclusion without wildcards that
/// the scope's fixed beginning starts with).
fn carved_out(rule: &RuleConfig, scope: &Pattern) -> bool {
    let fixed = scope.literal_prefix();
    rule.exclude.iter().any(|e| {
        let e = Pattern::new(e);
        e.is_literal() && fixed.starts_with(e.as_str())
    })
}

/// The speech engine's settings, and its model files: there, and the ones named by their
/// SHA-256.
fn check_speech(speech: &SpeechEngineConfig) -> Result<(), (&'static str, String)> {
    if !matches!(speech.language.as_str(), "en" | "zh" | "auto") {
        return Err((
            "language",
            format!("{:?}: expected en, zh or auto", speech.language),
        ));
    }
    if speech.threads == 0 || speech.max_concurrent == 0 {
        return Err((
            "threads",
            "threads and max_concurrent must be at least 1".to_owned(),
        ));
    }
    if speech.max_speech_secs == 0 {
        return Err(("max_speech_secs", "must be at least 1".to_owned()));
    }
    if speech.dictionaries.is_empty() {
        return Err((
            "dictionaries",
            "must name a directory or an s3:// prefix".to_owned(),
        ));
    }
    check_sha256(
        &speech.model,
        &speech.model_sha256,
        ("model", "model_sha256"),
    )?;
    if let Some(abuse) = speech.abuse.as_ref().filter(|a| a.enabled) {
        let (low, high) = (abuse.suspicious_from, abuse.sensitive_from);
        if !(low > 0.0 && low < high && high < 1.0) {
            return Err((
                "abuse.suspicious_from",
                format!(
                    "{low} and sensitive_from {high}: expected 0 < suspicious_from < sensitive_from < 1"
                ),
            ));
        }
        check_sha256(
            &abuse.model,
            &abuse.model_sha256,
            ("abuse.model", "abuse.model_sha256"),
        )?;
    }
    if let Some(meaning) = speech.meaning.as_ref().filter(|m| m.enabled) {
        if !(meaning.threshold > 0.0 && meaning.threshold < 1.0) {
            return Err((
                "meaning.threshold",
                format!(
                    "{}: expected a cosine similarity between 0 and 1",
                    meaning.threshold
                ),
            ));
        }
        check_sha256(
            &meaning.model,
            &meaning.model_sha256,
            ("meaning.model", "meaning.model_sha256"),
        )?;
        check_sha256(
            &meaning.tokenizer,
            &meaning.tokenizer_sha256,
            ("meaning.tokenizer", "meaning.tokenizer_sha256"),
        )?;
    }
    Ok(())
}

/// A model file named with its SHA-256: there, and that one; `keys` name the two settings.
fn check_sha256(
    path: &str,
    sha256: &str,
    keys: (&'static str, &'static str),
) -> Result<(), (&'static str, String)> {
    let expected = sha256.to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err((
            keys.1,
            "must be the model file's SHA-256, 64 hex digits".to_owned(),
        ));
    }
    let actual = crate::signing::sha256_file(std::path::Path::new(path))
        .map(hex::encode)
        .map_err(|e| (keys.0, format!("{path}: {e}")))?;
    if actual != expected {
        return Err((
            keys.1,
            format!("{path} has SHA-256 {actual}, not {expected}: a different or damaged model"),
        ));
    }
    Ok(())
}
