//! Durations written as `30s`, `5m`, `1h` or combinations such as `1h30m`.

use std::fmt;
use std::str::FromStr;

use super::scalar::string_scalar;

/// A span of time in whole seconds, written in the spec as `30s`, `5m`, `1h` or `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    seconds: u64,
}

/// Why a string is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a duration: expected a number with a unit s, m or h (for example 30s, 5m, 1h30m)"
)]
pub struct DurationError {
    input: String,
}

impl Duration {
    /// A duration of `seconds` seconds.
    pub const fn from_secs(seconds: u64) -> Self {
        Self { seconds }
    }

    /// The length in seconds.
    pub const fn as_secs(self) -> u64 {
        self.seconds
    }

    /// The same length as a [`std::time::Duration`].
    pub const fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.seconds)
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = || DurationError {
            input: input.to_owned(),
        };
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut last_unit = u64::MAX;
        for c in input.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(error()),
            };
            // Units must be present, in decreasing order, each at most once.
            if digits.is_empty() || unit >= last_unit {
                return Err(error());
            }
            let value: u64 = digits.parse().map_err(|_| error())?;
            total = value
                .checked_mul(unit)
                .and_then(|part| total.checked_add(part))
                .ok_or_else(error)?;
            digits.clear();
            last_unit = unit;
        }
        if !digits.is_empty() || last_unit == u64::MAX {
            return Err(error());
        }
        Ok(Self { seconds: total })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (
            self.seconds / 3600,
            self.seconds / 60 % 60,
            self.seconds % 60,
        );
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || self.seconds == 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

string_scalar!(
    Duration,
    "Duration",
    "A duration such as 30s, 5m, 1h or 1h30m.",
    pattern = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        let cases = [
            ("30s", 30),
            ("5m", 300),
            ("1h", 3600),
            ("1h30m", 5400),
            ("2m5s", 125),
            ("0s", 0),
        ];
        for (text, seconds) in cases {
            assert_eq!(
                text.parse::<Duration>(),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
        }
    }

    #[test]
    fn prints_canonically() {
        assert_eq!(Duration::from_secs(5400).to_string(), "1h30m");
        assert_eq!(Duration::from_secs(300).to_string(), "5m");
        assert_eq!(Duration::from_secs(0).to_string(), "0s");
        assert_eq!(Duration::from_secs(3661).to_string(), "1h1m1s");
    }

    #[test]
    fn rejects_malformed() {
        for text in [
            "",
            "5",
            "m",
            "5x",
            "5m1h",
            "1m1m",
            "-5s",
            "5 m",
            "1.5h",
            "99999999999999999999h",
        ] {
            assert!(
                text.parse::<Duration>().is_err(),
                "{text:?} should be rejected"
            );
        }
    }
}
