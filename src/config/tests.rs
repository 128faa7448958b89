//! Config tables parsed, defaulted, validated and redacted, each error naming its key.

use super::*;

const BASE: &str = r#"
        [[rules]]
        id = "podcasts"
        bucket = "media"
        prefix = "audio/"
        suffixes = ["MP3", "wav"]
        callback = { url = "http://127.0.0.1:9000/hook", seed = "s3cret" }
    "#;

#[test]
fn a_minimal_rule_gets_the_documented_defaults() {
    let config = Config::from_toml_str(BASE).expect("valid");
    let rule = &config.rules[0];
    assert_eq!(rule.engine, "local");
    assert_eq!(rule.scenes, vec![Scene::Porn, Scene::Ads, Scene::Illegal]);
    assert_eq!(rule.block.min_score, 90);
    assert_eq!(rule.block.mode, BlockMode::AclPrivate);
    assert_eq!(config.limits.max_object_bytes, 629_145_600);
    assert_eq!(config.limits.max_duration_secs, 10_800);
}

#[test]
fn errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        (
            "[[rules]]\nid='a'\nbucket='b'\nblock={min_score=50}",
            "rules.0.block.min_score",
        ),
        (
            "[[rules]]\nid='a'\nbucket='b'\nblock={min_score=101}",
            "rules.0.block.min_score",
        ),
        (
            "[[rules]]\nid='a'\nbucket='b'\nsuffixes=['mp4']",
            "rules.0.suffixes",
        ),
        (
            "[[rules]]\nid='a'\nbucket='b'\nscenes=['violence']",
            "scenes",
        ),
        (
            "[[rules]]\nid='a'\nbucket='b'\nengine='ams'",
            "rules.0.engine",
        ),
        ("[[rules]]\nid='a'\nbucket='b'\ncolour='red'", "colour"),
        ("[limits]\nmax_object_bytes=0", "limits.max_object_bytes"),
        (
            "[[rules]]\nid='a'\nbucket='b'\n[[rules]]\nid='c'\nbucket='b'\nprefix='x/'",
            "rules.1.prefix",
        ),
        (
            "[[rules]]\nid='a'\nbucket='b'\nprefix='users/*/voice/'\n[[rules]]\nid='c'\nbucket='b'\nprefix='users/7/'",
            "rules.1.prefix",
        ),
        (
            "[[rules]]\nid='a'\nbucket='b'\nexclude=['kids/*/']\n[[rules]]\nid='c'\nbucket='b'\nprefix='kids/'",
            "rules.1.prefix",
        ),
        (
            "[[rules]]\nid='a'\nbucket='b'\nexclude=['']",
            "rules.0.exclude.0",
        ),
    ];
    for (text, key) in cases {
        let error = Config::from_toml_str(text).expect_err(text).to_string();
        assert!(
            error.contains(key),
            "{text:?}: {error:?} does not name {key}"
        );
    }
}

#[test]
fn rules_that_differ_in_scope_exclusion_or_suffix_do_not_overlap() {
    let text = r#"
            [[rules]]
            id = "a"
            bucket = "media"
            prefix = "audio/"
            suffixes = ["mp3"]
            [[rules]]
            id = "b"
            bucket = "media"
            prefix = "audio/"
            suffixes = ["wav"]
            [[rules]]
            id = "c"
            bucket = "media"
            prefix = "voice/"
            exclude = ["voice/kids/"]
            [[rules]]
            id = "kids"
            bucket = "media"
            prefix = "voice/kids/"
            [[rules]]
            id = "user-voice"
            bucket = "media"
            prefix = "users/*/voice/"
            [[rules]]
            id = "user-music"
            bucket = "media"
            prefix = "users/*/music/"
        "#;
    Config::from_toml_str(text).expect("no overlap");
}

#[test]
fn redaction_hides_seeds_and_keys() {
    let text = format!(
        "{BASE}\n[sources.webhook]\nlisten = \"127.0.0.1:8080\"\n\
             [sources.webhook.minio]\nauth_token = \"minio-token-0123456789\"\n"
    );
    let mut config = Config::from_toml_str(&text).expect("valid");
    config.s3.secret_access_key = Some("hunter2".to_owned());
    let printed = toml::to_string(&config.redacted()).expect("serialises");
    assert!(!printed.contains("s3cret"));
    assert!(!printed.contains("hunter2"));
    assert!(!printed.contains("minio-token-0123456789"));
    assert!(printed.contains(REDACTED));
}

const CLOUD: &str = r#"
        [[rules]]
        id = "voice"
        bucket = "media"
        engine = ["local", "ams", "sm", "mine"]
        on_engine_error = "review"

        [engines.local]
        type = "local"
        library = "./library"

        [engines.ams]
        type = "tencent_ams"
        secret_id = "AKIDsecretid"
        secret_key = "tc-secret-key"
        seed = "ams-seed-value"
        callback_base_url = "https://earshot.example.com"

        [engines.sm]
        type = "shumei"
        access_key = "shumei-access-key"
        app_id = "default"
        event_id = "audio"
        callback_base_url = "https://earshot.example.com"

        [engines.mine]
        type = "http"
        url = "http://classifier.internal/judge"
        bearer_token = "classifier-bearer"

        [async_jobs]
        token_key = "token-key-0123456789abcdef0123456789"
    "#;

#[test]
fn cloud_engines_parse_with_their_defaults_and_print_redacted() {
    let config = Config::from_toml_str(CLOUD).expect("valid");
    let rule = &config.rules[0];
    assert_eq!(rule.engine.names(), ["local", "ams", "sm", "mine"]);
    assert_eq!(rule.on_engine_error, OnEngineError::Review);
    let Some(EngineConfig::TencentAms(ams)) = config.engines.get("ams") else {
        panic!("ams engine");
    };
    assert_eq!(
        (ams.rate_per_sec, ams.max_concurrent, ams.max_batch),
        (20.0, 10, 10)
    );
    assert_eq!(ams.endpoint, "https://ams.tencentcloudapi.com");
    let printed = toml::to_string(&config.redacted()).expect("serialises");
    for secret in [
        "AKIDsecretid",
        "tc-secret-key",
        "ams-seed-value",
        "shumei-access-key",
        "classifier-bearer",
        "token-key-0123456789abcdef0123456789",
    ] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
}

#[test]
fn cloud_engine_errors_name_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "token_key = \"token-key-0123456789abcdef0123456789\"",
            "token_key = \"short\"",
            "async_jobs.token_key",
        ),
        (
            "callback_base_url = \"https://earshot.example.com\"\n\n        [engines.sm]",
            "callback_base_url = \"earshot\"\n\n        [engines.sm]",
            "engines.ams.callback_base_url",
        ),
        (
            "type = \"shumei\"",
            "type = \"shumei\"\n        region = \"mars\"",
            "engines.sm.region",
        ),
        (
            "engine = [\"local\", \"ams\", \"sm\", \"mine\"]",
            "engine = [\"local\", \"local\"]",
            "rules.0.engine",
        ),
        (
            "seed = \"ams-seed-value\"",
            "seed = \"ams-seed-value\"\n        max_batch = 11",
            "engines.ams.max_batch",
        ),
    ];
    for (from, to, key) in cases {
        assert!(CLOUD.contains(from), "{from}");
        let text = CLOUD.replacen(from, to, 1);
        let error = Config::from_toml_str(&text).expect_err(key).to_string();
        assert!(error.contains(key), "{error:?} does not name {key}");
    }
}

#[test]
fn the_shipped_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_PATH);
    let text = std::fs::read_to_string(path).expect("config/earshot.toml exists");
    Config::from_toml_str(&text).expect("config/earshot.toml is valid");
}
