//! What the command line reads and parses before anything runs: request files (or stdin as `-`)
//! read up to a size limit, and numeric flags held to the range they can mean.

use std::io::Read;
use std::path::Path;

use runbridge_core::request::MAX_REQUEST_BYTES;

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file (or stdin) could not be read.
    #[error("{name}: cannot read: {source}")]
    Io {
        /// The path as given (`-` for stdin).
        name: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The input is larger than any request may be; reading stopped at the limit.
    #[error("{name}: larger than the {limit}-byte limit for a request (stopped reading at {limit} bytes)")]
    TooLarge {
        /// The path as given.
        name: String,
        /// The limit in bytes.
        limit: usize,
    },
}

/// Reads a request from `path`, or from stdin when it is `-`, never more than
/// [`MAX_REQUEST_BYTES`] plus one byte (so `/dev/zero` or a huge file fails fast, naming the
/// limit).
pub fn read_request(path: &Path) -> Result<Vec<u8>, InputError> {
    let name = path.display().to_string();
    let limit = MAX_REQUEST_BYTES;
    let io = |source| InputError::Io {
        name: name.clone(),
        source,
    };
    let reader: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).map_err(io)?)
    };
    let mut body = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut body)
        .map_err(io)?;
    if body.len() > limit {
        return Err(InputError::TooLarge { name, limit });
    }
    Ok(body)
}

/// The largest `--speed` accepted: a million simulated seconds per real second already runs a
/// week-long run in under a second.
pub const MAX_SPEED: f64 = 1_000_000.0;

/// The smallest `--speed` accepted: a thousandth of real time already makes one simulated second
/// last a quarter of an hour; below it a wait outgrows any clock (`1e-20` would be 10^12 years).
pub const MIN_SPEED: f64 = 0.001;

/// Parses `--speed`: a finite number of simulated seconds per real second, from [`MIN_SPEED`]
/// to [`MAX_SPEED`] (0 would never advance, a negative one runs time backwards, a tiny one waits
/// past any clock, `inf`/`nan` and `1e308` overflow the simulator's clock).
pub fn parse_speed(text: &str) -> Result<f64, String> {
    let speed: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if !speed.is_finite() || !(MIN_SPEED..=MAX_SPEED).contains(&speed) {
        return Err(format!(
            "`{text}` is out of range: give a number from {MIN_SPEED} to {MAX_SPEED}"
        ));
    }
    Ok(speed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_is_finite_positive_and_bounded() {
        for bad in [
            "0", "-0", "nan", "NaN", "inf", "-inf", "1e308", "-1", "", "x", "1e7", "1e-20",
            "0.0009", "5e-324",
        ] {
            assert!(parse_speed(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["1", "0.5", "200", "1e6", "0.001"] {
            assert!(parse_speed(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn a_file_over_the_limit_names_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_REQUEST_BYTES + 10]).unwrap();
        let e = read_request(&big).unwrap_err().to_string();
        assert!(e.contains(&MAX_REQUEST_BYTES.to_string()), "{e}");
        let ok = dir.path().join("ok.json");
        std::fs::write(&ok, b"{}").unwrap();
        assert_eq!(read_request(&ok).unwrap(), b"{}");
    }
}
