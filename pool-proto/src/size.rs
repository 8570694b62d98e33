//! Byte sizes as people write them: `65536`, `64KiB`, `16MiB`, `1GiB`, and
//! their serde form ([`Size`]) used by config files.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// Parses a number of bytes with an optional binary unit: `B`, `KiB`,
/// `MiB`, `GiB` (`K`, `M`, `G`, `KB`, `MB`, `GB` mean the same 1024-based
/// units; case does not matter).
///
/// ```
/// use pool_proto::parse_size;
/// assert_eq!(parse_size("65536").unwrap(), 65536);
/// assert_eq!(parse_size("64KiB").unwrap(), 64 * 1024);
/// assert_eq!(parse_size("16 MiB").unwrap(), 16 << 20);
/// assert!(parse_size("lots").is_err());
/// ```
pub fn parse_size(input: &str) -> Result<u64, Error> {
    let bad = || Error::InvalidSize {
        input: input.to_owned(),
    };
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(scale).ok_or_else(bad)
}

/// Formats a size in the largest binary unit that keeps it exact.
///
/// ```
/// use pool_proto::format_size;
/// assert_eq!(format_size(16 << 20), "16MiB");
/// assert_eq!(format_size(1000), "1000B");
/// ```
pub fn format_size(n: u64) -> String {
    for (scale, unit) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if n >= scale && n.is_multiple_of(scale) {
            return format!("{}{unit}", n / scale);
        }
    }
    format!("{n}B")
}

/// A byte size that serialises as text (`"16MiB"`) and deserialises from
/// text or from an integer number of bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_size(self.0))
    }
}

impl fmt::Debug for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Size({self})")
    }
}

impl FromStr for Size {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        parse_size(s).map(Size)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 65536, \"64KiB\" or \"16MiB\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_refuses_junk() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("1k").unwrap(), 1024);
        assert_eq!(parse_size("2MB").unwrap(), 2 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size(" 10 b ").unwrap(), 10);
        for bad in [
            "",
            "MiB",
            "-1",
            "1.5MiB",
            "1TiB",
            "99999999999999999999",
            "1e6",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse_size("17179869184GiB").is_err(), "overflow");
    }

    #[test]
    fn format_parse_round_trip() {
        for n in [0u64, 1, 1000, 1024, 65536, 16 << 20, 3 << 30, (1 << 20) + 1] {
            assert_eq!(parse_size(&format_size(n)).unwrap(), n);
        }
    }

    #[test]
    fn size_accepts_text_and_numbers() {
        #[derive(Deserialize)]
        struct T {
            a: Size,
            b: Size,
        }
        let t: T = serde_json::from_str(r#"{"a":"64KiB","b":1000}"#).unwrap();
        assert_eq!((t.a.0, t.b.0), (65536, 1000));
    }
}
