//! `format` values as regular expressions over decoded characters.
//!
//! Where it sits: `format` -> [`format_regex`] (an ECMA-262 pattern, matched
//! in full) -> `pattern.rs` translates it to the JSON-escaped encoding -> one
//! part of a string lexeme's intersection.
//!
//! Enforced: `date-time`, `date`, `time`, `duration`, `email`, `hostname`
//! (at most 127 characters, a narrowing of RFC 1123's 253; no `xn--`
//! A-labels),
//! `ipv4`, `ipv6`, `uuid`, `uri`, `uri-reference`, `iri`, `iri-reference`,
//! `json-pointer`, `relative-json-pointer`; refused: `idn-email`,
//! `idn-hostname`, `uri-template`, `regex`. Dates are
//! exact (month lengths, February 29 in leap years); a leap second (`:60`) is
//! accepted at `23:59:60` UTC (offset `Z` or `±00:00`), other offsets with
//! `:60` are refused by the regex (a documented narrowing). Any other format
//! is an annotation (JSON Schema 2019-09 and later make every format an
//! annotation by default) and is ignored: see `docs/json-schema.md`.

const DIGIT: &str = "[0-9]";

fn year() -> String {
    format!("{DIGIT}{{4}}")
}

/// Years divisible by 4, except centuries not divisible by 400.
fn leap_year() -> &'static str {
    "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
}

fn full_date() -> String {
    let y = year();
    format!(
        "(?:{y}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|{}-02-29)",
        leap_year()
    )
}

fn full_time() -> String {
    let frac = "(?:\\.[0-9]+)?";
    let offset = "(?:[zZ]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";
    format!("(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]{frac}{offset}|23:59:60{frac}(?:[zZ]|[+-]00:00))")
}

fn duration() -> &'static str {
    // RFC 3339 appendix A: dur-year = nY [dur-month], dur-month = nM [dur-day],
    // dur-hour = nH [dur-minute], dur-minute = nM [dur-second]
    "P(?:[0-9]+W|(?:[0-9]+Y(?:[0-9]+M(?:[0-9]+D)?)?|[0-9]+M(?:[0-9]+D)?|[0-9]+D)(?:T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S))?|T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S))"
}

fn dec_octet() -> &'static str {
    "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
}

fn ipv4() -> String {
    let o = dec_octet();
    format!("(?:{o}\\.{o}\\.{o}\\.{o})")
}

fn ipv6() -> String {
    let h = "[0-9a-fA-F]{1,4}";
    let ls32 = format!("(?:{h}:{h}|{})", ipv4());
    let alts = [
        format!("(?:{h}:){{6}}{ls32}"),
        format!("::(?:{h}:){{5}}{ls32}"),
        format!("(?:{h})?::(?:{h}:){{4}}{ls32}"),
        format!("(?:(?:{h}:){{0,1}}{h})?::(?:{h}:){{3}}{ls32}"),
        format!("(?:(?:{h}:){{0,2}}{h})?::(?:{h}:){{2}}{ls32}"),
        format!("(?:(?:{h}:){{0,3}}{h})?::{h}:{ls32}"),
        format!("(?:(?:{h}:){{0,4}}{h})?::{ls32}"),
        format!("(?:(?:{h}:){{0,5}}{h})?::{h}"),
        format!("(?:(?:{h}:){{0,6}}{h})?::"),
    ];
    format!("(?:{})", alts.join("|"))
}

fn label() -> &'static str {
    // letters, digits, hyphens; no hyphen at either end; at most 63; not
    // `--` in the 3rd and 4th positions (RFC 5891 reserves those labels for
    // IDNA A-labels, `xn--...`, whose punycode a regex cannot check: they
    // are not generated, a documented narrowing)
    "[A-Za-z0-9](?:[A-Za-z0-9]|[A-Za-z0-9-][A-Za-z0-9]|[A-Za-z0-9-](?:[A-Za-z0-9][A-Za-z0-9]|-[A-Za-z0-9])|[A-Za-z0-9-](?:[A-Za-z0-9][A-Za-z0-9-]|-[A-Za-z0-9])[A-Za-z0-9-]{0,58}[A-Za-z0-9])?"
}

fn hostname() -> String {
    let l = label();
    format!("(?:{l}(?:\\.{l})*)")
}

fn email() -> String {
    let atext = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
    let local = format!("(?:{atext}+(?:\\.{atext}+)*|\"(?:[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\x20-\\x7e])*\")");
    let domain = format!("(?:{}|\\[{}\\]|\\[IPv6:{}\\])", hostname(), ipv4(), ipv6());
    format!("{local}@{domain}")
}

fn uri_parts(iri: bool) -> (String, String, String, String) {
    // RFC 3987: IRIs also allow `ucschar` (non-ASCII) where URIs allow unreserved
    let unreserved = if iri {
        "A-Za-z0-9\\-._~\\u{A0}-\\u{D7FF}\\u{F900}-\\u{FDCF}\\u{FDF0}-\\u{FFEF}\\u{10000}-\\u{EFFFD}"
    } else {
        "A-Za-z0-9\\-._~"
    };
    let sub_delims = "!$&'()*+,;=";
    let pct = "%[0-9a-fA-F]{2}";
    let pchar = format!("(?:[{unreserved}{sub_delims}:@]|{pct})");
    let userinfo = format!("(?:[{unreserved}{sub_delims}:]|{pct})*");
    let reg_name = format!("(?:[{unreserved}{sub_delims}]|{pct})*");
    let ip_literal = format!("\\[(?:{}|[vV][0-9a-fA-F]+\\.[{unreserved}{sub_delims}:]+)\\]", ipv6());
    let host = format!("(?:{ip_literal}|{}|{reg_name})", ipv4());
    let authority = format!("(?:{userinfo}@)?{host}(?::[0-9]*)?");
    let segment = format!("{pchar}*");
    let segment_nz = format!("{pchar}+");
    let segment_nz_nc = format!("(?:[{unreserved}{sub_delims}@]|{pct})+");
    let path_abempty = format!("(?:/{segment})*");
    let path_absolute = format!("/(?:{segment_nz}(?:/{segment})*)?");
    let path_rootless = format!("{segment_nz}(?:/{segment})*");
    let path_noscheme = format!("{segment_nz_nc}(?:/{segment})*");
    // IRIs also allow `iprivate` in the query
    let private = if iri { "\\u{E000}-\\u{F8FF}\\u{F0000}-\\u{FFFFD}\\u{100000}-\\u{10FFFD}" } else { "" };
    let query = format!("(?:\\?(?:{pchar}|[/?{private}])*)?(?:#(?:{pchar}|[/?])*)?");
    let hier = format!("(?://{authority}{path_abempty}|{path_absolute}|{path_rootless}|)");
    let relative = format!("(?://{authority}{path_abempty}|{path_absolute}|{path_noscheme}|)");
    (hier, relative, query, String::from("[A-Za-z][A-Za-z0-9+\\-.]*"))
}

fn uri(iri: bool) -> String {
    let (hier, _, query, scheme) = uri_parts(iri);
    format!("{scheme}:{hier}{query}")
}

fn uri_reference(iri: bool) -> String {
    let (_, relative, query, _) = uri_parts(iri);
    format!("(?:{}|{relative}{query})", uri(iri))
}

/// The regex (ECMA-262 syntax, to be matched in full) of a format, or
/// `None` for a format that is only an annotation here.
pub(crate) fn format_regex(format: &str) -> Option<String> {
    Some(match format {
        "date-time" => format!("{}[tT]{}", full_date(), full_time()),
        "date" => full_date(),
        "time" => full_time(),
        "duration" => duration().to_string(),
        "email" => email(),
        "hostname" => hostname(),
        "ipv4" => ipv4(),
        "ipv6" => ipv6(),
        "uuid" => "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}".to_string(),
        "uri" => uri(false),
        "uri-reference" => uri_reference(false),
        "iri" => uri(true),
        "iri-reference" => uri_reference(true),
        "json-pointer" => "(?:/(?:[^~/]|~[01])*)*".to_string(),
        "relative-json-pointer" => "(?:0|[1-9][0-9]*)(?:#|(?:/(?:[^~/]|~[01])*)*)".to_string(),
        _ => return None,
    })
}

/// Formats JSON Schema defines that are not enforced here: refused (ignoring
/// them would let invalid values through validators that assert formats).
pub(crate) const UNSUPPORTED_FORMATS: &[&str] = &["idn-email", "idn-hostname", "uri-template", "regex"];

/// Longest hostname the grammar allows (a documented narrowing of 253).
pub(crate) const HOSTNAME_MAX_LEN: u64 = 127;

/// An extra length bound some formats carry (in characters).
pub(crate) fn format_max_len(format: &str) -> Option<u64> {
    match format {
        // RFC 1123 allows 253; the exact automaton (label position times
        // total length) needs about 30,000 states, over the default lexeme
        // limit, so the grammar narrows hostnames to 127 characters.
        "hostname" => Some(HOSTNAME_MAX_LEN),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json_schema::pattern::{encode_str, full_regex};
    use crate::lexer::dfa::Dfa;

    fn m(f: &str, s: &str) -> bool {
        let re = full_regex(&format_regex(f).unwrap()).unwrap();
        Dfa::from_regex(&re, 200_000).unwrap().matches(encode_str(s).as_bytes())
    }

    #[test]
    fn formats() {
        assert!(m("date", "2024-02-29"));
        assert!(!m("date", "2023-02-29"));
        assert!(!m("date", "1900-02-29"));
        assert!(m("date", "2000-02-29"));
        assert!(!m("date", "2020-04-31"));
        assert!(m("date-time", "1963-06-19T08:30:06.283185Z"));
        assert!(!m("date-time", "1963-06-19T08:30:06"));
        assert!(m("time", "23:59:60Z"));
        assert!(m("duration", "P4DT12H30M5S"));
        assert!(!m("duration", "PT"));
        assert!(m("email", "joe.bloggs@example.com"));
        assert!(!m("email", "joe..bloggs@example.com"));
        assert!(m("ipv4", "192.168.0.1"));
        assert!(!m("ipv4", "192.168.0.01"));
        assert!(m("ipv6", "::1"));
        assert!(m("ipv6", "1:2:3:4:5:6:7:8"));
        assert!(!m("ipv6", "1:2:3:4:5:6:7:8:9"));
        assert!(m("uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d16380"));
        assert!(m("uri", "http://example.com/a?b#c"));
        assert!(!m("uri", "//example.com"));
        assert!(m("uri-reference", "//example.com"));
        assert!(m("hostname", "www.example.com"));
        assert!(!m("hostname", "-a.com"));
    }
}
