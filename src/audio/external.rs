//! The fallback for codecs with no sound pure-Rust decoder (AMR-NB, AMR-WB, WMA, and AMR inside
//! 3GP): `ffmpeg` as a subprocess, decoding to 16 kHz mono 32-bit float on its stdout, read chunk by
//! chunk. Without ffmpeg on the PATH these formats are refused as unsupported, by name.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{AudioError, AudioInfo, Output};

/// The rate ffmpeg is asked for: above AMR-WB's 8 kHz band, plenty for fingerprints.
const RATE: u32 = 16_000;

pub(super) fn decode(
    path: &Path,
    what: &str,
    output: &mut Output<'_>,
) -> Result<AudioInfo, AudioError> {
    let mut child = match Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-vn", "-ac", "1", "-ar", "16000", "-f", "f32le", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AudioError::UnsupportedCodec(format!(
                "{what} (decoding it needs ffmpeg, which is not installed)"
            )));
        }
        Err(e) => return Err(AudioError::Io(e)),
    };
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut bytes = vec![0u8; 64 * 1024];
    let mut carry = 0usize;
    let mut mono = Vec::with_capacity(bytes.len() / 4);
    let result = loop {
        let n = match stdout.read(&mut bytes[carry..]) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) => break Err(AudioError::Io(e)),
        };
        let filled = carry + n;
        let whole = filled / 4 * 4;
        mono.clear();
        mono.extend(
            bytes[..whole]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        bytes.copy_within(whole..filled, 0);
        carry = filled - whole;
        if let Err(e) = output.emit(&mono, RATE) {
            break Err(e);
        }
    };
    if result.is_err() {
        let _ = child.kill();
    }
    let status = child.wait()?;
    let stderr = errors.join().unwrap_or_default();
    result?;
    if !status.success() || output.frames() == 0 {
        let reason = stderr
            .lines()
            .last()
            .unwrap_or("no audio decoded")
            .trim()
            .to_owned();
        return Err(AudioError::Corrupt(format!(
            "{what}: ffmpeg could not decode it: {reason}"
        )));
    }
    Ok(output.info("ffmpeg", what, RATE, 1, None, false))
}
