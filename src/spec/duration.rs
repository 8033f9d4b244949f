//! Durations written as strings in YAML (`500ms`, `5s`, `1m`, `1h`, `1h 30m`).

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// A duration from a YAML string, held in whole milliseconds.
///
/// Accepts humantime's syntax (`ms`, `s`, `m`, `h`, `d` and combinations);
/// a bare number is rejected because its unit would be a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct DurationMs(pub u64);

impl DurationMs {
    /// The duration as a `std::time::Duration`.
    pub fn as_duration(self) -> Duration {
        Duration::from_millis(self.0)
    }
}

/// Parses `5s`-style text into milliseconds.
///
/// # Errors
/// A message ending in `(expected …)` when the text is not a duration.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    humantime::parse_duration(s.trim())
        .map(|d| d.as_millis() as u64)
        .map_err(|_| {
            format!(
                "`{s}` is not a duration (expected a number with a unit, like 500ms, 5s, 1m, 1h)"
            )
        })
}

impl<'de> Deserialize<'de> for DurationMs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        let s = match &v {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => {
                return Err(serde::de::Error::custom(format!(
                    "`{n}` has no unit (expected a duration string like 5s or 500ms)"
                )))
            }
            _ => {
                return Err(serde::de::Error::custom(
                    "not a duration (expected a string like 5s or 500ms)",
                ))
            }
        };
        parse_duration_ms(&s)
            .map(DurationMs)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_units() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("5s"), Ok(5_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("1h 30m"), Ok(5_400_000));
        assert_eq!(
            parse_duration_ms("5x"),
            Err(
                "`5x` is not a duration (expected a number with a unit, like 500ms, 5s, 1m, 1h)"
                    .into()
            )
        );
    }
}
