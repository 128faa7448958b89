//! The deployment files are checked, not just written: the AWS template passes `cfn-lint`, the
//! systemd unit passes `systemd-analyze verify` without a warning, the MinIO example config
//! passes `earshot check-config`, and the http engine's contract (`openapi/http-engine.yaml`) is
//! valid OpenAPI whose examples match its schemas.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tool(path: &Path, install: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing; install it with `{install}` (scripts/test.sh does)",
        path.display()
    );
    path.to_owned()
}

#[test]
fn aws_template_passes_cfn_lint() {
    let cfn_lint = tool(&root().join(".venv/bin/cfn-lint"), "localstack/install.sh");
    let out = Command::new(cfn_lint)
        .arg(root().join("infra/aws/template.yaml"))
        .output()
        .expect("cfn-lint runs");
    assert!(
        out.status.success(),
        "cfn-lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn http_engine_contract_is_valid_openapi_and_its_examples_match_it() {
    let python = tool(&root().join(".venv/bin/python"), "localstack/install.sh");
    let out = Command::new(python)
        .arg(root().join("tests/tools/check_openapi.py"))
        .arg(root().join("openapi/http-engine.yaml"))
        .output()
        .expect("check_openapi.py runs");
    assert!(
        out.status.success(),
        "openapi/http-engine.yaml:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let analyze = tool(
        Path::new("/usr/bin/systemd-analyze"),
        "scripts/install-deps.sh",
    );
    // `verify` checks that ExecStart's binary exists: point it at the one cargo built, and change
    // nothing else.
    let unit = std::fs::read_to_string(root().join("infra/minio/earshot.service")).expect("unit");
    assert!(unit.contains("ExecStart=/usr/bin/earshot "));
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("earshot.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/bin/earshot", env!("CARGO_BIN_EXE_earshot")),
    )
    .expect("write unit");
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {:?}\n{stderr}",
        out.status
    );
    for hardening in [
        "User=earshot",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(hardening), "unit lacks {hardening:?}");
    }
}

#[test]
fn minio_example_config_is_valid_with_its_token_from_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_earshot"))
        .arg("--config")
        .arg(root().join("infra/minio/earshot.toml"))
        .arg("check-config")
        .env(
            "EARSHOT_SOURCES__WEBHOOK__MINIO__AUTH_TOKEN",
            "token-from-secrets-env-0123456789",
        )
        .output()
        .expect("earshot runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check-config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("[sources.webhook.minio]"));
    assert!(!stdout.contains("token-from-secrets-env"), "token redacted");
}

/// The config the template gives the function (its `EARSHOT_*` variables, with the parameters'
/// defaults and sample values substituted as CloudFormation would) is one earshot accepts.
#[test]
fn the_config_the_aws_template_builds_is_valid() {
    let template =
        std::fs::read_to_string(root().join("infra/aws/template.yaml")).expect("template");
    let rules_line = template
        .lines()
        .skip_while(|line| !line.contains("EARSHOT_RULES: !Sub"))
        .nth(1)
        .expect("the line after EARSHOT_RULES");
    let rules = rules_line
        .trim()
        .trim_start_matches("- ")
        .trim_matches('\'')
        .replace("${BucketName}", "my-media")
        .replace("${Prefix}", "audio/")
        .replace("${List}", "mp3\",\"wav\",\"3gp")
        .replace("${BlockMode}", "move")
        .replace("${MinScore}", "90")
        .replace("${CallbackUrl}", "https://example.com/hook")
        .replace("${CallbackSeed}", "seed-value");
    assert!(!rules.contains("${"), "unsubstituted: {rules}");
    let out = Command::new(env!("CARGO_BIN_EXE_earshot"))
        .arg("check-config")
        .current_dir(std::env::temp_dir())
        .env("EARSHOT_RULES", &rules)
        .env(
            "EARSHOT_ENGINES__LOCAL__LIBRARY",
            "s3://my-media/audit_freeze_backup/earshot/library/",
        )
        .output()
        .expect("earshot runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check-config with {rules}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("bucket = \"my-media\""), "{stdout}");
    assert!(stdout.contains("\"3gp\""), "{stdout}");
    assert!(!stdout.contains("seed-value"), "seed redacted");
}

/// Lambda refuses a zip over 50 MiB uploaded directly.
const LAMBDA_MAX_ZIPPED: u64 = 50 * 1024 * 1024;

/// The function zip and the model layer that `scripts/lambda-package.sh` makes, from the
/// earshot-lambda these tests run (the release build is smaller still): each fits Lambda's
/// direct upload, the function runs from `bootstrap`, and the layer holds the pinned model.
#[test]
fn lambda_package_and_model_layer_fit_lambdas_upload_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(root().join("scripts/lambda-package.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_earshot-lambda"), "--out"])
        .arg(dir.path())
        .output()
        .expect("lambda-package.sh runs");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lambda-package.sh:\n{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut zips = std::collections::BTreeMap::new();
    for line in printed.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, zipped, _unzipped] = fields[..] else {
            panic!("unexpected line: {line}");
        };
        let zipped: u64 = zipped.parse().expect("a byte count");
        assert_eq!(
            std::fs::metadata(dir.path().join(name))
                .expect("the zip")
                .len(),
            zipped
        );
        assert!(zipped <= LAMBDA_MAX_ZIPPED, "{name}: {zipped} bytes");
        zips.insert(name.to_owned(), zipped);
    }
    assert_eq!(
        zips.keys().collect::<Vec<_>>(),
        ["earshot-lambda.zip", "earshot-speech-model.zip"]
    );
    // What is inside: an executable bootstrap; the model, byte for byte the pinned one.
    let listing = Command::new("python3")
        .arg("-c")
        .arg(
            "import hashlib, sys, zipfile\n\
             for path in sys.argv[1:]:\n\
             \x20   for info in zipfile.ZipFile(path).infolist():\n\
             \x20       data = zipfile.ZipFile(path).read(info)\n\
             \x20       print(info.filename, oct(info.external_attr >> 16), data[:4].hex(), hashlib.sha256(data).hexdigest())",
        )
        .arg(dir.path().join("earshot-lambda.zip"))
        .arg(dir.path().join("earshot-speech-model.zip"))
        .output()
        .expect("python3 runs");
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let pinned =
        std::fs::read_to_string(root().join("scripts/speech-model/ggml-tiny.en-q8_0.sha256"))
            .expect("the pinned hash");
    let pinned = pinned.split_whitespace().next().expect("a hash");
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 2, "{listing}");
    assert!(
        lines[0].starts_with("bootstrap 0o755 7f454c46 "),
        "{listing}"
    );
    assert!(
        lines[1].starts_with("earshot/models/ggml-tiny.en-q8_0.bin 0o644 ")
            && lines[1].ends_with(pinned),
        "{listing}"
    );
}
