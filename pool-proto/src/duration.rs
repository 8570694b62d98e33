//! Durations as people write them: `500ms`, `3s`, `1m`, `2h`, and their
//! serde form ([`Dur`]) used by config and tree files.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// Parses `500ms`, `3s`, `1.5s`, `1m`, `2h`, `250us` (a unit is required).
///
/// ```
/// use std::time::Duration;
/// use pool_proto::parse_duration;
/// assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
/// assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
/// assert!(parse_duration("5").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, Error> {
    let bad = || Error::InvalidDuration {
        input: input.to_owned(),
    };
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let unit_ns: u64 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return Err(bad()),
    };
    if !num.contains('.') {
        // Whole numbers in integer arithmetic, so that every text
        // `format_duration` writes reads back exactly (a float product is
        // off by a nanosecond for large millisecond counts).
        const NANOS_PER_SEC: u128 = 1_000_000_000;
        let n: u128 = num.parse().map_err(|_| bad())?;
        let nanos = n.checked_mul(u128::from(unit_ns)).ok_or_else(bad)?;
        let secs = u64::try_from(nanos / NANOS_PER_SEC).map_err(|_| bad())?;
        return Ok(Duration::new(secs, (nanos % NANOS_PER_SEC) as u32));
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(value * (unit_ns as f64 / 1e9)).map_err(|_| bad())
}

/// Formats a duration in the largest unit that keeps it exact: `500ms`,
/// `3s`, `1m`; sub-millisecond values in `us` or `ns`.
///
/// ```
/// use std::time::Duration;
/// use pool_proto::format_duration;
/// assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
/// assert_eq!(format_duration(Duration::from_secs(120)), "2m");
/// ```
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    let units: [(u128, &str); 5] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
    ];
    for (scale, unit) in units {
        if ns >= scale && ns.is_multiple_of(scale) {
            return format!("{}{unit}", ns / scale);
        }
    }
    if ns == 0 {
        return "0s".to_owned();
    }
    format!("{ns}ns")
}

/// A [`Duration`] that serialises as text (`"5s"`) and deserialises from
/// text or from an integer number of milliseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {
    /// `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Dur(Duration::from_millis(ms))
    }

    /// `s` seconds.
    pub const fn from_secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }
}

impl From<Duration> for Dur {
    fn from(d: Duration) -> Self {
        Dur(d)
    }
}

impl From<Dur> for Duration {
    fn from(d: Dur) -> Self {
        d.0
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl fmt::Debug for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dur({self})")
    }
}

impl FromStr for Dur {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        parse_duration(s).map(Dur)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"500ms\", \"5s\" or \"1m\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur::from_millis(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(Dur::from_millis)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_refuses_bare_numbers() {
        assert_eq!(parse_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration(" 10ms ").unwrap(), Duration::from_millis(10));
        for bad in [
            "",
            "5",
            "s",
            "-1s",
            "1.s",
            ".5s",
            "5 parsecs",
            "1e3s",
            "nan s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn format_parse_round_trip() {
        for ms in [0u64, 1, 499, 500, 1000, 1500, 60_000, 3_600_000, 90_000] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }

    #[test]
    fn dur_accepts_text_and_millis() {
        #[derive(Deserialize)]
        struct T {
            a: Dur,
            b: Dur,
        }
        let t: T = serde_json::from_str(r#"{"a":"5s","b":250}"#).unwrap();
        assert_eq!(t.a.0, Duration::from_secs(5));
        assert_eq!(t.b.0, Duration::from_millis(250));
    }
}
