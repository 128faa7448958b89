//! The Debian package, built by `scripts/deb.sh` from the binaries cargo built for the tests,
//! installed on this machine with `dpkg -i`, upgraded, removed and purged: its files, its system
//! user, its conffile (kept across an upgrade with the operator's edit), `systemd-analyze verify`
//! on the installed unit and `earshot check-config` on the installed config, run as the daemon's
//! user with the secrets the package made.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::succeeded as ok;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `program args…` as root (through `sudo -n` when the tests do not run as root).
fn as_root(program: &str, args: &[&str]) -> Output {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    let mut command = if is_root {
        Command::new(program)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", program]);
        sudo
    };
    command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"))
}

/// A file only root may read.
fn read(path: &str) -> String {
    ok(as_root("cat", &[path]), path)
}

fn status_of_package() -> String {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Status} ${Version}", "earshot"])
        .output()
        .expect("dpkg-query runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the package at `version` into `out` (`--fast`: the debug binaries stripped of their
/// line tables, lightly compressed).
fn build(version: &str, out: &Path) -> PathBuf {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_earshot"))
        .parent()
        .expect("the binaries' directory");
    let built = Command::new(root().join("scripts/deb.sh"))
        .arg("--bin-dir")
        .arg(bin_dir)
        .args(["--fast", "--version", version, "--out"])
        .arg(out)
        .output()
        .expect("scripts/deb.sh runs");
    let path = ok(built, "scripts/deb.sh");
    PathBuf::from(path.lines().last().expect("the package's path").trim())
}

/// Purges the package however the test ends.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = as_root("dpkg", &["--purge", "earshot"]);
    }
}

#[test]
fn the_debian_package_installs_upgrades_and_removes_cleanly() {
    let before = status_of_package();
    assert!(
        !before.contains("installed"),
        "an earshot package is already installed ({before}); this test installs and purges its \
         own: remove it first with `dpkg --purge earshot`"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let first = build("0.1.0", dir.path());
    let info = ok(
        Command::new("dpkg-deb")
            .arg("--info")
            .arg(&first)
            .output()
            .expect("dpkg-deb"),
        "dpkg-deb --info",
    );
    assert!(
        info.contains("Package: earshot") && info.contains("Version: 0.1.0"),
        "{info}"
    );

    let _purge = Purge;
    ok(
        as_root("dpkg", &["-i", first.to_str().expect("utf-8")]),
        "dpkg -i",
    );
    assert!(status_of_package().starts_with("install ok installed 0.1.0"));

    // The files.
    for file in [
        "/usr/bin/earshot",
        "/usr/bin/earshot-lambda",
        "/lib/systemd/system/earshot.service",
        "/etc/earshot/earshot.toml",
        "/etc/earshot/secrets.env",
        "/usr/share/man/man1/earshot.1.gz",
        "/usr/share/man/man1/earshot-serve.1.gz",
        "/usr/share/bash-completion/completions/earshot",
        "/usr/share/zsh/vendor-completions/_earshot",
        "/usr/share/fish/vendor_completions.d/earshot.fish",
        "/usr/share/earshot/monitoring/earshot-alerts.yml",
        "/usr/share/earshot/monitoring/earshot-dashboard.json",
        "/usr/share/doc/earshot/copyright",
    ] {
        assert!(Path::new(file).is_file(), "{file} not installed");
    }
    let conffiles = ok(
        Command::new("dpkg-query")
            .args(["-W", "-f=${Conffiles}", "earshot"])
            .output()
            .expect("dpkg-query"),
        "dpkg-query",
    );
    assert!(
        conffiles.contains("/etc/earshot/earshot.toml"),
        "{conffiles}"
    );

    // The system user and what it owns.
    let user = ok(
        Command::new("getent")
            .args(["passwd", "earshot"])
            .output()
            .expect("getent"),
        "the earshot user",
    );
    let fields: Vec<&str> = user.trim().split(':').collect();
    let uid: u32 = fields[2].parse().expect("a uid");
    assert!(uid < 1000, "a system user: {user}");
    assert_eq!(fields[5], "/var/lib/earshot", "{user}");
    assert!(fields[6].ends_with("nologin"), "{user}");
    for dir in [
        "/var/lib/earshot",
        "/var/lib/earshot/models",
        "/var/lib/earshot/library",
    ] {
        let owner = ok(
            Command::new("stat")
                .args(["-c", "%U:%G %a", dir])
                .output()
                .expect("stat"),
            dir,
        );
        assert_eq!(owner.trim(), "earshot:earshot 750", "{dir}");
    }
    let modes = |path: &str| {
        ok(
            Command::new("stat")
                .args(["-c", "%U:%G %a", path])
                .output()
                .expect("stat"),
            path,
        )
        .trim()
        .to_owned()
    };
    assert_eq!(modes("/etc/earshot/earshot.toml"), "root:earshot 640");
    assert_eq!(modes("/etc/earshot/secrets.env"), "root:root 600");
    let secrets = read("/etc/earshot/secrets.env");
    let token = secrets
        .lines()
        .find_map(|l| l.strip_prefix("EARSHOT_SOURCES__WEBHOOK__MINIO__AUTH_TOKEN="))
        .expect("a webhook token made at install")
        .to_owned();
    assert_eq!(token.len(), 64, "32 random bytes in hex: {token}");

    // systemd accepts the installed unit as it is.
    let verify = as_root(
        "systemd-analyze",
        &["verify", "/lib/systemd/system/earshot.service"],
    );
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {:?}\n{stderr}",
        verify.status
    );

    // The installed config passes check-config, read by the daemon's user with its secrets.
    let check = as_root(
        "runuser",
        &[
            "-u",
            "earshot",
            "--",
            "env",
            &format!("EARSHOT_SOURCES__WEBHOOK__MINIO__AUTH_TOKEN={token}"),
            "/usr/bin/earshot",
            "--config",
            "/etc/earshot/earshot.toml",
            "check-config",
        ],
    );
    ok(check, "earshot check-config as the earshot user");

    // Enabled as the README says (without `--now`: this machine's systemd may not be running).
    ok(
        as_root("systemctl", &["enable", "earshot.service"]),
        "systemctl enable",
    );
    let wanted = Path::new("/etc/systemd/system/multi-user.target.wants/earshot.service");
    assert!(wanted.exists(), "enabled");

    // An upgrade keeps the operator's edit of the config and the secrets.
    ok(
        as_root(
            "sh",
            &[
                "-c",
                "echo '# edited by the operator' >> /etc/earshot/earshot.toml",
            ],
        ),
        "edit the config",
    );
    let edited = read("/etc/earshot/earshot.toml");
    assert!(edited.ends_with("# edited by the operator\n"));
    let second = build("0.1.1", dir.path());
    ok(
        as_root("dpkg", &["-i", second.to_str().expect("utf-8")]),
        "dpkg -i (upgrade)",
    );
    assert!(status_of_package().starts_with("install ok installed 0.1.1"));
    assert_eq!(read("/etc/earshot/earshot.toml"), edited);
    assert_eq!(read("/etc/earshot/secrets.env"), secrets);
    assert_eq!(modes("/etc/earshot/earshot.toml"), "root:earshot 640");

    // Removed: the programs go, the config and state stay; purged: they go too.
    ok(as_root("dpkg", &["-r", "earshot"]), "dpkg -r");
    assert!(!Path::new("/usr/bin/earshot").exists());
    assert!(!Path::new("/lib/systemd/system/earshot.service").exists());
    assert!(Path::new("/etc/earshot/earshot.toml").exists());
    assert!(Path::new("/var/lib/earshot").exists());
    ok(as_root("dpkg", &["--purge", "earshot"]), "dpkg --purge");
    assert!(!Path::new("/etc/earshot").exists());
    assert!(!Path::new("/var/lib/earshot").exists());
    assert!(
        !wanted.exists() && wanted.symlink_metadata().is_err(),
        "still enabled"
    );
    assert!(!status_of_package().contains("installed"));
    // (`--list` exits 1 when there are no overrides at all.)
    let overrides = as_root("dpkg-statoverride", &["--list"]);
    let overrides = String::from_utf8_lossy(&overrides.stdout);
    assert!(!overrides.contains("/etc/earshot"), "{overrides}");
}
