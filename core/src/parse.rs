//! Parsing and formatting primitives with Go's semantics (docs/behaviour.md Appendix A).
//!
//! Linkerd reads annotations with Go's `strconv` and `time` packages and renders numbers through
//! Go's formatter, so a value is valid here exactly when it is valid there. These functions are
//! deliberately small and free of any Kubernetes knowledge.

use std::fmt;

/// Go's `strconv.ParseBool`.
pub fn go_bool(s: &str) -> Option<bool> {
    if GO_TRUE.contains(&s) {
        Some(true)
    } else if GO_FALSE.contains(&s) {
        Some(false)
    } else {
        None
    }
}

/// What Go's `strconv.ParseBool` reads as true, and as false.
pub const GO_TRUE: &[&str] = &["1", "t", "T", "TRUE", "true", "True"];
pub const GO_FALSE: &[&str] = &["0", "f", "F", "FALSE", "false", "False"];

/// Go's `strconv.ParseInt(s, 10, 32)`. Rust's integer parser has the same grammar
/// (optional sign, ASCII digits, no spaces or underscores).
pub fn go_i32(s: &str) -> Option<i32> {
    s.parse().ok()
}

/// Go's `strconv.ParseInt(s, 10, 64)`.
pub fn go_i64(s: &str) -> Option<i64> {
    s.parse().ok()
}

/// Go's `strconv.ParseUint(s, 10, 64)`: digits only, no sign.
pub fn go_u64(s: &str) -> Option<u64> {
    if s.starts_with('+') {
        return None;
    }
    s.parse().ok()
}

/// Go's `strconv.ParseFloat(s, 64)`, except that NaN is refused (docs/differences.md Q-36: upstream
/// lets it through a range check and then fails to serialise it).
pub fn go_f64(s: &str) -> Option<f64> {
    let v: f64 = s.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

/// A Go `time.Duration`: signed nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duration(pub i64);

/// Go's `time.ParseDuration`.
pub fn go_duration(input: &str) -> Option<Duration> {
    let mut s = input;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Some(Duration(0));
    }
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        // Integer part.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, rest) = s.split_at(int_len);
        s = rest;
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map(|(i, _)| i)
            .unwrap_or(s.len());
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        let scale: u64 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int_val: u64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut v = int_val.checked_mul(scale)?;
        if !frac_part.is_empty() {
            // Go accumulates the fraction as a float: f = frac / 10^digits, then v += f * scale.
            let mut frac: u64 = 0;
            let mut div: f64 = 1.0;
            for b in frac_part.bytes() {
                if frac > (1 << 63) / 10 {
                    break; // further digits cannot change the result
                }
                frac = frac * 10 + u64::from(b - b'0');
                div *= 10.0;
            }
            let add = (frac as f64) * (scale as f64 / div);
            v = v.checked_add(add as u64)?;
        }
        total = total.checked_add(v)?;
    }
    if neg {
        if total > 1 << 63 {
            return None;
        }
        Some(Duration((total as i128).wrapping_neg() as i64))
    } else {
        i64::try_from(total).ok().map(Duration)
    }
}

impl Duration {
    /// Go's `Duration.Seconds()`.
    fn seconds_f64(self) -> f64 {
        let sec = self.0 / 1_000_000_000;
        let nsec = self.0 % 1_000_000_000;
        sec as f64 + nsec as f64 / 1e9
    }

    /// `<N>ms`, as Linkerd renders connect timeouts and grace periods (A.6, float truncation
    /// kept on purpose: `1.001s` → `1000ms`, docs/differences.md Q-37).
    pub fn millis_text(self) -> String {
        format!("{}ms", (self.seconds_f64() * 1000.0).trunc() as i64)
    }

    /// `<N>s`, as Linkerd renders discovery-cache timeouts (A.6).
    pub fn seconds_text(self) -> String {
        format!("{}s", self.whole_seconds())
    }

    /// Whole seconds, truncated towards zero.
    pub fn whole_seconds(self) -> i64 {
        self.seconds_f64().trunc() as i64
    }
}

/// Go's `Duration.String()` (A.7).
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let u = self.0.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u == 0 {
            return f.write_str("0s");
        }
        if u < 1_000_000_000 {
            let (unit, div) = if u < 1_000 {
                ("ns", 1)
            } else if u < 1_000_000 {
                ("\u{b5}s", 1_000)
            } else {
                ("ms", 1_000_000)
            };
            return write!(f, "{sign}{}{unit}", frac_text(u, div));
        }
        let h = u / 3_600_000_000_000;
        let rem = u % 3_600_000_000_000;
        let m = rem / 60_000_000_000;
        let s_ns = rem % 60_000_000_000;
        let secs = frac_text(s_ns, 1_000_000_000);
        if h > 0 {
            write!(f, "{sign}{h}h{m}m{secs}s")
        } else if m > 0 {
            write!(f, "{sign}{m}m{secs}s")
        } else {
            write!(f, "{sign}{secs}s")
        }
    }
}

/// `v / div` as a decimal with the fraction's trailing zeros trimmed.
fn frac_text(v: u64, div: u64) -> String {
    let whole = v / div;
    let frac = v % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A float as Go's `%v` prints it (A.8): the shortest digits that round-trip, in fixed notation
/// when the decimal exponent is in -4..=5 and in exponent notation with at least two exponent
/// digits otherwise (`0.1`, `0.25`, `5e-05`, `1.5e+06`).
pub fn go_float(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let sci = format!("{v:e}"); // shortest digits, e.g. "5e-5", "1.25e2"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// Snake-cases one key segment of a `proxy.inbound`/`proxy.outbound` params map (A.9).
pub fn snake_case(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c == '-' || c == ' ' {
            out.push('_');
            continue;
        }
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

// --- Kubernetes resource quantities (A.10) ----------------------------------------------------

/// A parsed resource quantity: `mantissa × 10^exp10 × 1024^binary`, plus how it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quantity {
    negative: bool,
    mantissa: u128,
    exp10: i32,
    binary: u32,
    format: QuantityFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QuantityFormat {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// Parses Kubernetes quantity syntax; `None` if it is not a quantity.
pub fn quantity(s: &str) -> Option<Quantity> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_len = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (num, suffix) = body.split_at(num_len);
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
        return None;
    }
    let (exp10, binary, format) = match suffix {
        "" => (0, 0, QuantityFormat::DecimalSi),
        "Ki" => (0, 1, QuantityFormat::BinarySi),
        "Mi" => (0, 2, QuantityFormat::BinarySi),
        "Gi" => (0, 3, QuantityFormat::BinarySi),
        "Ti" => (0, 4, QuantityFormat::BinarySi),
        "Pi" => (0, 5, QuantityFormat::BinarySi),
        "Ei" => (0, 6, QuantityFormat::BinarySi),
        "n" => (-9, 0, QuantityFormat::DecimalSi),
        "u" => (-6, 0, QuantityFormat::DecimalSi),
        "m" => (-3, 0, QuantityFormat::DecimalSi),
        "k" => (3, 0, QuantityFormat::DecimalSi),
        "M" => (6, 0, QuantityFormat::DecimalSi),
        "G" => (9, 0, QuantityFormat::DecimalSi),
        "T" => (12, 0, QuantityFormat::DecimalSi),
        "P" => (15, 0, QuantityFormat::DecimalSi),
        "E" => (18, 0, QuantityFormat::DecimalSi),
        other => {
            let e = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))?;
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (e.parse::<i32>().ok()?, 0, QuantityFormat::DecimalExponent)
        }
    };
    // Keep at most 30 significant digits: enough for any real quantity, and no overflow.
    let mut mantissa: u128 = 0;
    let mut exp = exp10;
    let mut significant = 0;
    for b in int_part.bytes() {
        if significant < 30 {
            mantissa = mantissa * 10 + u128::from(b - b'0');
            if mantissa > 0 {
                significant += 1;
            }
        } else {
            exp = exp.checked_add(1)?;
        }
    }
    for b in frac_part.bytes() {
        if significant < 30 {
            mantissa = mantissa * 10 + u128::from(b - b'0');
            if mantissa > 0 {
                significant += 1;
            }
            exp = exp.checked_sub(1)?;
        }
    }
    Some(Quantity {
        negative,
        mantissa,
        exp10: exp,
        binary,
        format,
    })
}

impl Quantity {
    /// The value rounded up to an integer, away from zero (`100m` → 1, `1500m` → 2).
    pub fn ceil(&self) -> Option<i64> {
        let (m, e) = self.decimal()?;
        let v: u128 = if e >= 0 {
            m.checked_mul(10u128.checked_pow(e as u32)?)?
        } else {
            let div = 10u128.checked_pow(e.unsigned_abs()).unwrap_or(u128::MAX);
            m.div_ceil(div)
        };
        let v = i64::try_from(v).ok()?;
        Some(if self.negative { -v } else { v })
    }

    /// The value as an exact decimal `m × 10^e` with the binary multiplier folded in.
    fn decimal(&self) -> Option<(u128, i32)> {
        let mut m = self.mantissa;
        for _ in 0..self.binary {
            m = m.checked_mul(1024)?;
        }
        Some((m, self.exp10))
    }

    /// The canonical text Kubernetes writes for this quantity (`0.5` → `500m`,
    /// `1.5Gi` → `1536Mi`); `None` if it is out of the range we can represent.
    pub fn canonical(&self) -> Option<String> {
        let (mut m, mut e) = self.decimal()?;
        if m == 0 {
            return Some("0".into());
        }
        while m % 10 == 0 {
            m /= 10;
            e += 1;
        }
        let sign = if self.negative { "-" } else { "" };
        if self.format == QuantityFormat::BinarySi && e >= 0 {
            let bytes = m.checked_mul(10u128.checked_pow(e as u32)?)?;
            if bytes >= 1024 {
                let mut k = 0;
                let mut v = bytes;
                while k < 6 && v % 1024 == 0 {
                    v /= 1024;
                    k += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][k];
                return Some(format!("{sign}{v}{suffix}"));
            }
        }
        if e < -9 {
            // Kubernetes keeps nano precision and rounds up beyond it.
            let div = 10u128.checked_pow((-9 - e) as u32).unwrap_or(u128::MAX);
            m = m.div_ceil(div);
            e = -9;
            while m % 10 == 0 {
                m /= 10;
                e += 1;
            }
        }
        let mut e3 = e.div_euclid(3) * 3;
        if e3 > 18 {
            e3 = 18;
        }
        let v = m.checked_mul(10u128.checked_pow((e - e3) as u32)?)?;
        if self.format == QuantityFormat::DecimalExponent {
            return Some(if e3 == 0 {
                format!("{sign}{v}")
            } else {
                format!("{sign}{v}e{e3}")
            });
        }
        let suffix = match e3 {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            _ => "E",
        };
        Some(format!("{sign}{v}{suffix}"))
    }
}

/// The canonical form of a quantity string, or the string itself when it does not parse.
pub fn canonical_quantity(s: &str) -> String {
    quantity(s)
        .and_then(|q| q.canonical())
        .unwrap_or_else(|| s.to_string())
}

#[cfg(test)]
mod tests;
