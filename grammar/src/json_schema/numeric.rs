//! Number lexemes: exact regexes for ranges and `multipleOf`.
//!
//! Where it sits: a number schema (integer flag, bounds, `multipleOf`,
//! excluded values) -> [`number_spec`] -> one [`LexemeSpec`].
//!
//! Bounds are exact for integers and for decimals: a bound is a finite
//! decimal (every JSON number is), and "at least `a`" over decimal numerals
//! is a regular language built digit by digit (longer integer part, or equal
//! prefix then a larger digit, or equal integer part and a fraction that is at
//! least `a`'s, comparing digit strings padded with zeros). Lower and upper
//! bounds are intersected (`LexemeSpec::And`).
//!
//! Spelling: with bounds or `multipleOf`, numbers are written without an
//! exponent (every finite decimal has such a spelling, so no value is lost);
//! integers may carry a zero fraction (`5.0`, as Python writes floats).
//! Without constraints a number is any JSON number.
//!
//! `multipleOf` is exact when the divisor is `m * 10^-d` with `m = 2^a 5^b`
//! (then divisibility depends on the last few digits: `2`, `5`, `10`, `0.01`,
//! `0.25`, ...) or when the bounds leave few enough multiples to list.

use crate::ir::LexemeSpec;

/// A finite decimal: sign, integer digits (no leading zeros, "0" for zero),
/// fraction digits (no trailing zeros).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dec {
    pub(crate) neg: bool,
    pub(crate) int: String,
    pub(crate) frac: String,
}

/// Largest exponent accepted when turning a number into digits.
const MAX_EXP: i64 = 400;

impl Dec {
    /// Parses a JSON number's text (`-1.5e3`).
    pub(crate) fn parse(text: &str) -> Option<Dec> {
        let (neg, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let (mant, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
            None => (rest, 0),
        };
        if exp.abs() > MAX_EXP {
            return None;
        }
        let (ip, fp) = match mant.find('.') {
            Some(i) => (&mant[..i], &mant[i + 1..]),
            None => (mant, ""),
        };
        if ip.is_empty() || !ip.bytes().all(|b| b.is_ascii_digit()) || !fp.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: String = format!("{ip}{fp}");
        // value = digits * 10^(exp - len(fp)); the point sits after `point` digits
        let point = ip.len() as i64 + exp;
        let (int, frac) = if point <= 0 {
            (String::from("0"), format!("{}{}", "0".repeat((-point) as usize), digits))
        } else if point as usize >= digits.len() {
            (format!("{}{}", digits, "0".repeat(point as usize - digits.len())), String::new())
        } else {
            (digits[..point as usize].to_string(), digits[point as usize..].to_string())
        };
        let int = int.trim_start_matches('0');
        let int = if int.is_empty() { "0".to_string() } else { int.to_string() };
        let frac = frac.trim_end_matches('0').to_string();
        let is_zero = int == "0" && frac.is_empty();
        Some(Dec { neg: neg && !is_zero, int, frac })
    }

    pub(crate) fn from_value(v: &serde_json::Number) -> Option<Dec> {
        Dec::parse(&v.to_string())
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.int == "0" && self.frac.is_empty()
    }

    pub(crate) fn is_integer(&self) -> bool {
        self.frac.is_empty()
    }

    /// The magnitude.
    pub(crate) fn abs(&self) -> Dec {
        Dec { neg: false, ..self.clone() }
    }

    /// Compares two decimals.
    pub(crate) fn cmp(&self, other: &Dec) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        match (self.neg, other.neg) {
            (false, true) => return Greater,
            (true, false) => return Less,
            _ => {}
        }
        let mag = (self.int.len().cmp(&other.int.len()))
            .then_with(|| self.int.cmp(&other.int))
            .then_with(|| self.frac.cmp(&other.frac));
        if self.neg {
            mag.reverse()
        } else {
            mag
        }
    }

    /// Whether `self` is a multiple of `k` (k > 0), exactly.
    pub(crate) fn is_multiple_of(&self, k: &Dec) -> Option<bool> {
        let scale = self.frac.len().max(k.frac.len());
        let a = scaled(self, scale)?;
        let b = scaled(k, scale)?;
        if b == 0 {
            return None;
        }
        Some(a % b == 0)
    }
}

fn scaled(d: &Dec, scale: usize) -> Option<u128> {
    let s = format!("{}{}{}", d.int, d.frac, "0".repeat(scale - d.frac.len()));
    s.parse::<u128>().ok()
}

const D: &str = "[0-9]";

fn digit_range(lo: u8, hi: u8) -> Option<String> {
    match lo.cmp(&hi) {
        std::cmp::Ordering::Greater => None,
        std::cmp::Ordering::Equal => Some(((b'0' + lo) as char).to_string()),
        std::cmp::Ordering::Less => Some(format!("[{}-{}]", lo, hi)),
    }
}

fn digits(s: &str) -> Vec<u8> {
    s.bytes().map(|b| b - b'0').collect()
}

/// Any fraction (or none).
const FRAC_ANY: &str = "(?:\\.[0-9]+)?";

/// Fraction digit strings `D` (non-empty) with `D >= F` (`strict`: `>`),
/// comparing with zero padding. `F` has no trailing zeros.
fn frac_ge(f: &str, strict: bool) -> String {
    let fd = digits(f);
    let mut alts = Vec::new();
    for i in 0..fd.len() {
        if let Some(r) = digit_range(fd[i] + 1, 9) {
            alts.push(format!("{}{}{D}*", &f[..i], r));
        }
    }
    if strict {
        alts.push(format!("{f}{D}*[1-9]{D}*"));
    } else if !f.is_empty() {
        alts.push(format!("{f}{D}*"));
    } else {
        alts.push(format!("{D}+"));
    }
    format!("(?:{})", alts.join("|"))
}

/// Fraction digit strings `D` (non-empty) with `D <= F` (`strict`: `<`).
/// `None` when no non-empty string qualifies.
fn frac_le(f: &str, strict: bool) -> Option<String> {
    let fd = digits(f);
    let mut alts = Vec::new();
    for i in 0..fd.len() {
        if fd[i] > 0 {
            if let Some(r) = digit_range(0, fd[i] - 1) {
                alts.push(format!("{}{}{D}*", &f[..i], r));
            }
        }
    }
    // D = a prefix of F followed by zeros
    let upto = if strict { fd.len().saturating_sub(1) } else { fd.len() };
    for k in 1..=upto {
        alts.push(format!("{}0*", &f[..k]));
    }
    if f.is_empty() && !strict {
        alts.push("0+".to_string());
    }
    if alts.is_empty() {
        None
    } else {
        Some(format!("(?:{})", alts.join("|")))
    }
}

/// Non-negative numerals `x >= a` (`strict`: `>`), `a >= 0`.
fn nonneg_ge(a: &Dec, strict: bool) -> String {
    let n = a.int.len();
    let id = digits(&a.int);
    let mut alts = Vec::new();
    // longer integer part
    if a.int == "0" {
        alts.push(format!("[1-9]{D}*{FRAC_ANY}"));
    } else {
        alts.push(format!("[1-9]{D}{{{n},}}{FRAC_ANY}"));
        // same length, larger at position i
        for (i, &d) in id.iter().enumerate() {
            if let Some(r) = digit_range(d + 1, 9) {
                alts.push(format!("{}{}{D}{{{}}}{FRAC_ANY}", &a.int[..i], r, n - i - 1));
            }
        }
    }
    // equal integer part
    if a.frac.is_empty() && !strict {
        alts.push(format!("{}{FRAC_ANY}", a.int));
    } else {
        alts.push(format!("{}\\.{}", a.int, frac_ge(&a.frac, strict)));
    }
    format!("(?:{})", alts.join("|"))
}

/// Non-negative numerals `x <= b` (`strict`: `<`), `b >= 0`. `None`: none.
fn nonneg_le(b: &Dec, strict: bool) -> Option<String> {
    let n = b.int.len();
    let id = digits(&b.int);
    let mut alts = Vec::new();
    if n >= 2 {
        alts.push(format!("(?:0|[1-9]{D}{{0,{}}}){FRAC_ANY}", n - 2));
    }
    for (i, &d) in id.iter().enumerate() {
        let lo = if i == 0 && n > 1 { 1 } else { 0 };
        if d > lo {
            if let Some(r) = digit_range(lo, d - 1) {
                alts.push(format!("{}{}{D}{{{}}}{FRAC_ANY}", &b.int[..i], r, n - i - 1));
            }
        }
    }
    // equal integer part
    match (b.frac.is_empty(), strict) {
        (true, true) => {}
        (true, false) => alts.push(format!("{}(?:\\.0+)?", b.int)),
        (false, _) => match frac_le(&b.frac, strict) {
            Some(f) => alts.push(format!("{}(?:\\.{f})?", b.int)),
            None => alts.push(b.int.clone()),
        },
    }
    if alts.is_empty() {
        None
    } else {
        Some(format!("(?:{})", alts.join("|")))
    }
}

/// Positive numerals (magnitude > 0).
const POS: &str = "(?:0\\.[0-9]*[1-9][0-9]*|[1-9][0-9]*(?:\\.[0-9]+)?)";
/// Non-negative numerals.
const NONNEG: &str = "(?:(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?)";

fn re(s: String) -> LexemeSpec {
    LexemeSpec::Regex(s)
}

fn neg_of(mag: LexemeSpec) -> LexemeSpec {
    LexemeSpec::Concat(vec![LexemeSpec::Literal("-".into()), LexemeSpec::And(vec![re(POS.into()), mag])])
}

/// Numerals `x >= a` (`strict`: `>`), no exponent.
fn ge(a: &Dec, strict: bool) -> LexemeSpec {
    if !a.neg {
        re(nonneg_ge(a, strict))
    } else {
        // negatives with |x| <= |a| (or <), and every non-negative
        let mag = match nonneg_le(&a.abs(), strict) {
            Some(r) => re(r),
            None => re("[a&&b]".into()),
        };
        LexemeSpec::Or(vec![re(NONNEG.into()), neg_of(mag)])
    }
}

/// Numerals `x <= b` (`strict`: `<`), no exponent.
fn le(b: &Dec, strict: bool) -> LexemeSpec {
    if !b.neg {
        let nonneg = match nonneg_le(b, strict) {
            Some(r) => re(r),
            None => re("[a&&b]".into()),
        };
        LexemeSpec::Or(vec![nonneg, LexemeSpec::Concat(vec![LexemeSpec::Literal("-".into()), re(POS.into())])])
    } else {
        neg_of(re(nonneg_ge(&b.abs(), strict)))
    }
}

/// A number schema's constraints.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct NumberSchema {
    pub(crate) integer: bool,
    /// Draft 4: an integer is written without a fraction (`1.0` is not one).
    pub(crate) strict_integer: bool,
    /// Lower bound and whether it is exclusive.
    pub(crate) min: Option<(Dec, bool)>,
    /// Upper bound and whether it is exclusive.
    pub(crate) max: Option<(Dec, bool)>,
    pub(crate) multiple_of: Vec<Dec>,
    /// Values excluded (from `not` with `const`/`enum`).
    pub(crate) exclude: Vec<Dec>,
    /// Only numbers with a non-zero fraction (from `not` + `type: integer`).
    pub(crate) non_integer: bool,
    /// Divisors the number must not be a multiple of (from `not` + `multipleOf`).
    pub(crate) not_multiple_of: Vec<Dec>,
}

impl NumberSchema {
    /// Whether the range is empty.
    pub(crate) fn is_empty(&self) -> bool {
        if let (Some((a, ea)), Some((b, eb))) = (&self.min, &self.max) {
            match a.cmp(b) {
                std::cmp::Ordering::Greater => return true,
                std::cmp::Ordering::Equal => return *ea || *eb || (self.integer && !a.is_integer()),
                _ => {}
            }
        }
        false
    }

    /// Whether `v` satisfies every constraint.
    pub(crate) fn accepts(&self, v: &Dec) -> Option<bool> {
        use std::cmp::Ordering::*;
        if self.integer && !v.is_integer() {
            return Some(false);
        }
        if self.non_integer && v.is_integer() {
            return Some(false);
        }
        for k in &self.not_multiple_of {
            if v.abs().is_multiple_of(k)? {
                return Some(false);
            }
        }
        if let Some((a, ex)) = &self.min {
            match v.cmp(a) {
                Less => return Some(false),
                Equal if *ex => return Some(false),
                _ => {}
            }
        }
        if let Some((b, ex)) = &self.max {
            match v.cmp(b) {
                Greater => return Some(false),
                Equal if *ex => return Some(false),
                _ => {}
            }
        }
        for k in &self.multiple_of {
            if !v.abs().is_multiple_of(k)? {
                return Some(false);
            }
        }
        Some(!self.exclude.iter().any(|x| x == v))
    }
}

/// Bound on the number of multiples listed when `multipleOf` has no
/// digit-suffix form.
const MAX_LISTED_MULTIPLES: u128 = 1000;

/// The lexeme of a number schema, or why it cannot be built exactly.
pub(crate) fn number_spec(s: &NumberSchema) -> Result<LexemeSpec, String> {
    let int_syntax = if s.strict_integer { "(?:0|-?[1-9][0-9]*)" } else { "(?:0|-?[1-9][0-9]*)(?:\\.0+)?" };
    if s.integer && s.non_integer {
        return Ok(re("[a&&b]".into()));
    }
    if s.min.is_none()
        && s.max.is_none()
        && s.multiple_of.is_empty()
        && s.exclude.is_empty()
        && !s.non_integer
        && s.not_multiple_of.is_empty()
    {
        return Ok(re(if s.integer {
            int_syntax.to_string()
        } else {
            "-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?".to_string()
        }));
    }
    let mut parts = Vec::new();
    parts.push(re(if s.integer {
        int_syntax.to_string()
    } else {
        "(?:0|-?(?:0|[1-9][0-9]*))(?:\\.[0-9]+)?".to_string()
    }));
    if let Some((a, ex)) = &s.min {
        parts.push(ge(a, *ex));
    }
    if let Some((b, ex)) = &s.max {
        parts.push(le(b, *ex));
    }
    for k in &s.multiple_of {
        parts.push(multiple_spec(k, s)?);
    }
    if s.non_integer {
        parts.push(re("-?(?:0|[1-9][0-9]*)\\.[0-9]*[1-9][0-9]*".into()));
    }
    for k in &s.not_multiple_of {
        parts.push(LexemeSpec::Not(Box::new(multiple_spec(k, s)?)));
    }
    if !s.exclude.is_empty() {
        let lits: Vec<LexemeSpec> = s.exclude.iter().map(|d| re(dec_regex(d))).collect();
        parts.push(LexemeSpec::Not(Box::new(LexemeSpec::Or(lits))));
    }
    Ok(if parts.len() == 1 { parts.remove(0) } else { LexemeSpec::And(parts) })
}

/// Every no-exponent numeral equal to `d`.
pub(crate) fn dec_regex(d: &Dec) -> String {
    let sign = if d.neg { "-" } else { "" };
    if d.frac.is_empty() {
        format!("{sign}{}(?:\\.0+)?", d.int)
    } else {
        format!("{sign}{}\\.{}0*", d.int, d.frac)
    }
}

/// Numerals that are multiples of `k`.
fn multiple_spec(k: &Dec, s: &NumberSchema) -> Result<LexemeSpec, String> {
    if k.neg || k.is_zero() {
        return Err("multipleOf must be positive".into());
    }
    // k = m * 10^-d with m an integer
    let d = k.frac.len();
    let m_str = format!("{}{}", k.int, k.frac);
    let m: u128 = m_str.trim_start_matches('0').parse().map_err(|_| "multipleOf is too large".to_string())?;
    let (mut a, mut b, mut r) = (0u32, 0u32, m);
    while r % 2 == 0 {
        r /= 2;
        a += 1;
    }
    while r % 5 == 0 {
        r /= 5;
        b += 1;
    }
    if r == 1 {
        // divisible iff the numeral, scaled by 10^d, has its last j digits
        // divisible by m, where j = max(a, b).
        let j = a.max(b) as usize;
        if j > 3 {
            return list_multiples(k, s);
        }
        // numeral = INT (. FRAC)? with FRAC of at most d significant digits,
        // then a fixed-width tail condition on the last j digits of
        // INT ++ FRAC[..d] (zero-padded).
        let modulus = 10u128.pow(j as u32);
        let endings: Vec<String> = if j == 0 {
            vec![String::new()]
        } else {
            (0..modulus).filter(|x| x % m == 0).map(|x| format!("{x:0j$}")).collect()
        };
        // Over the digit string T = INT ++ FRAC padded to d digits: T ends
        // with one of `endings` (INT left-padded with zeros when short).
        let mut alts = Vec::new();
        for e in &endings {
            let (ei, frac_re) = if j >= d {
                let (ei, ef) = e.split_at(j - d);
                let t = ef.trim_end_matches('0');
                (ei, if t.is_empty() { "(?:\\.0+)?".to_string() } else { format!("\\.{t}0*") })
            } else {
                // the fraction's first d - j digits are free, then e
                let free = d - j;
                let t = e.trim_end_matches('0');
                let f = if t.is_empty() {
                    format!("(?:\\.[0-9]{{1,{free}}}0*)?")
                } else {
                    format!("\\.[0-9]{{{free}}}{t}0*")
                };
                ("", f)
            };
            let int_re = if ei.is_empty() {
                "(?:0|[1-9][0-9]*)".to_string()
            } else {
                let trimmed = ei.trim_start_matches('0');
                let short = if trimmed.is_empty() { "0" } else { trimmed };
                format!("(?:{short}|[1-9][0-9]*{ei})")
            };
            alts.push(format!("{int_re}{frac_re}"));
        }
        return Ok(re(format!("-?(?:{})", alts.join("|"))));
    }
    list_multiples(k, s)
}

/// Lists the multiples of `k` inside the schema's bounds, when few.
fn list_multiples(k: &Dec, s: &NumberSchema) -> Result<LexemeSpec, String> {
    let (Some((lo, _)), Some((hi, _))) = (&s.min, &s.max) else {
        return Err(format!(
            "multipleOf {}{}{} is only supported for 2^a*5^b*10^-d divisors or bounded ranges",
            k.int,
            if k.frac.is_empty() { "" } else { "." },
            k.frac
        ));
    };
    let scale = k.frac.len();
    let kk = scaled(k, scale).ok_or("multipleOf is too large")? as i128;
    let to_scaled = |d: &Dec| -> Option<i128> {
        // floor/ceil by scale: only exact when d has at most `scale` fraction digits; else round outward
        let fl = d.frac.len().min(scale);
        let s = format!("{}{}{}", d.int, &d.frac[..fl], "0".repeat(scale - fl));
        let v: i128 = s.parse().ok()?;
        Some(if d.neg { -v } else { v })
    };
    let (a, b) = (to_scaled(lo).ok_or("bound too large")? - 1, to_scaled(hi).ok_or("bound too large")? + 1);
    let first = a.div_euclid(kk) * kk;
    let count = ((b - first) / kk).max(0) as u128;
    if count > MAX_LISTED_MULTIPLES {
        return Err("multipleOf with too many multiples in range to list".into());
    }
    let mut lits = Vec::new();
    let mut x = first;
    while x <= b {
        let neg = x < 0;
        let mag = x.unsigned_abs();
        let st = format!("{:0w$}", mag, w = scale + 1);
        let (ip, fp) = st.split_at(st.len() - scale);
        let d = Dec::parse(&format!("{}{}{}{}", if neg { "-" } else { "" }, ip, if scale > 0 { "." } else { "" }, fp));
        if let Some(d) = d {
            if s.accepts_bounds(&d) {
                lits.push(dec_regex(&d));
            }
        }
        x += kk;
    }
    if lits.is_empty() {
        return Ok(re("[a&&b]".into()));
    }
    Ok(re(format!("(?:{})", lits.join("|"))))
}

impl NumberSchema {
    fn accepts_bounds(&self, v: &Dec) -> bool {
        let s = NumberSchema { integer: false, min: self.min.clone(), max: self.max.clone(), ..Default::default() };
        s.accepts(v).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::spec::compile_spec;

    fn check(s: &NumberSchema, yes: &[&str], no: &[&str]) {
        let spec = number_spec(s).unwrap();
        let d = compile_spec(&spec, 100_000).unwrap();
        for y in yes {
            assert!(d.matches(y.as_bytes()), "{y} should match {s:?}");
        }
        for n in no {
            assert!(!d.matches(n.as_bytes()), "{n} should not match {s:?}");
        }
    }

    fn dec(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    #[test]
    fn parse_decimals() {
        assert_eq!(dec("1e-3"), Dec { neg: false, int: "0".into(), frac: "001".into() });
        assert_eq!(dec("-12.50"), Dec { neg: true, int: "12".into(), frac: "5".into() });
        assert_eq!(dec("1.5e2"), Dec { neg: false, int: "150".into(), frac: "".into() });
        assert_eq!(dec("-0"), Dec { neg: false, int: "0".into(), frac: "".into() });
    }

    #[test]
    fn integer_ranges_exhaustive() {
        for (lo, hi) in [(-13, 7), (0, 100), (5, 5), (-100, -7), (1, 12), (99, 1001)] {
            let s = NumberSchema {
                integer: true,
                min: Some((dec(&lo.to_string()), false)),
                max: Some((dec(&hi.to_string()), false)),
                ..Default::default()
            };
            let d = compile_spec(&number_spec(&s).unwrap(), 100_000).unwrap();
            for x in -1200..1200 {
                assert_eq!(d.matches(x.to_string().as_bytes()), lo <= x && x <= hi, "{x} in [{lo},{hi}]");
            }
            assert!(!d.matches(b"-0"));
        }
    }

    #[test]
    fn decimal_bounds() {
        let s = NumberSchema { min: Some((dec("0"), true)), max: Some((dec("1"), false)), ..Default::default() };
        check(&s, &["0.5", "1", "1.0", "0.0001", "0.999"], &["0", "0.0", "-0.5", "1.0001", "2", "-0"]);
        let s = NumberSchema { min: Some((dec("-2.5"), false)), max: Some((dec("-0.5"), true)), ..Default::default() };
        check(&s, &["-2.5", "-2.49", "-1", "-0.51"], &["-2.51", "-0.5", "-0.50", "0", "1", "-3"]);
        let s = NumberSchema { min: Some((dec("10.25"), false)), ..Default::default() };
        check(&s, &["10.25", "10.3", "11", "100.1", "10.250"], &["10.24", "10.2", "9.99", "10", "-11"]);
    }

    #[test]
    fn multiples() {
        let s = NumberSchema { integer: true, multiple_of: vec![dec("5")], ..Default::default() };
        check(&s, &["0", "5", "10", "-15", "1005"], &["1", "7", "-3", "51"]);
        let s = NumberSchema { multiple_of: vec![dec("0.01")], ..Default::default() };
        check(&s, &["0", "1.5", "1.25", "-3.10", "7"], &["1.255", "0.001"]);
        let s = NumberSchema { integer: true, multiple_of: vec![dec("4")], ..Default::default() };
        check(&s, &["0", "4", "8", "12", "100", "1004", "-16"], &["2", "6", "10", "102"]);
        let s = NumberSchema {
            integer: true,
            multiple_of: vec![dec("3")],
            min: Some((dec("0"), false)),
            max: Some((dec("20"), false)),
            ..Default::default()
        };
        check(&s, &["0", "3", "18"], &["1", "20", "21", "-3"]);
    }
}
