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

    /// The command line's numeric options, whatever is typed: `--speed`, `--since`, `--from` /
    /// `--to` and the backfill windows between any two dates the calendar holds, in every step.
    /// Accepted or refused with a message, never a panic.
    #[test]
    fn numeric_options_never_panic() {
        use crate::ops::backfill::{parse_date, windows, Every};
        use crate::ops::commands::parse_duration;
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let number = prop_oneof![
            any::<f64>().prop_map(|f| f.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            "[0-9eE.+-]{0,24}",
            "\\PC{0,12}",
            prop::sample::select(vec!["1e-20", "5e-324", "1e400", "-0", "nan", "inf", "0x10"])
                .prop_map(str::to_owned),
        ];
        let unit = prop::sample::select(vec!["", "s", "m", "h", "d", "w", "é", "y"]);
        let date = prop_oneof![
            (-10_000i32..=10_000, 0u8..14, 0u8..33)
                .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
            "\\PC{0,12}",
        ];
        let mut runner = TestRunner::new(Config {
            cases: 1_000,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(
                &(number, unit, date.clone(), date, 0usize..3),
                |(n, unit, from, to, step)| {
                    if let Ok(speed) = parse_speed(&n) {
                        prop_assert!((MIN_SPEED..=MAX_SPEED).contains(&speed));
                    }
                    let _ = parse_duration(&format!("{n}{unit}"));
                    let every = [Every::Day, Every::Week, Every::Month][step];
                    if let (Ok(from), Ok(to)) =
                        (parse_date("--from", &from), parse_date("--to", &to))
                    {
                        let _ = windows(from, to, every);
                    }
                    Ok(())
                },
            )
            .unwrap();
        // Every pair of dates at the calendar's ends, as `parse_date` takes them.
        let ends = ["0001-01-01", "0001-01-31", "9999-12-01", "9999-12-31"];
        for from in ends {
            for to in ends {
                for every in [Every::Day, Every::Week, Every::Month] {
                    let (from, to) = (parse_date("--from", from), parse_date("--to", to));
                    let _ = windows(from.unwrap(), to.unwrap(), every);
                }
            }
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
