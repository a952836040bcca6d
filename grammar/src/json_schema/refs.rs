//! `$ref` resolution inside one schema document.
//!
//! Where it sits: before compiling, [`Index::new`] walks the document once
//! and records every schema resource (`$id`, or `id` in draft 4) and anchor
//! (`$anchor`, `$dynamicAnchor`, and the plain-name `$id: "#foo"` of drafts
//! 6/7) under its absolute URI. [`Index::resolve`] then turns a `$ref`, read
//! at a location with a base URI, into the JSON pointer (from the document
//! root) of its target. The compiler gives each target one grammar rule, so
//! recursive schemas become recursive rules.
//!
//! References to documents that are not part of this one (remote refs,
//! including the meta-schemas) are errors: nothing is fetched.

use std::collections::HashMap;

use serde_json::Value;

/// The base URI used when the root has no `$id`.
pub(crate) const DEFAULT_BASE: &str = "urn:formwork:schema";

pub(crate) use super::options::Draft;

impl Draft {
    /// The draft named by the root's `$schema`, else `default`.
    pub(crate) fn detect(root: &Value, default: Draft) -> Draft {
        let Some(s) = root.get("$schema").and_then(Value::as_str) else { return default };
        if s.contains("draft-04") || s.contains("draft-03") {
            Draft::Draft4
        } else if s.contains("draft-06") {
            Draft::Draft6
        } else if s.contains("draft-07") {
            Draft::Draft7
        } else if s.contains("2019-09") {
            Draft::Draft2019_09
        } else if s.contains("2020-12") {
            Draft::Draft2020_12
        } else {
            default
        }
    }
}

/// Splits a URI into (without fragment, fragment).
pub(crate) fn split_fragment(uri: &str) -> (&str, &str) {
    match uri.find('#') {
        Some(i) => (&uri[..i], &uri[i + 1..]),
        None => (uri, ""),
    }
}

struct Parts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

fn parse_uri(s: &str) -> Parts<'_> {
    let (s, _) = split_fragment(s);
    let (s, query) = match s.find('?') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (scheme, rest) = match s.find(':') {
        Some(i)
            if i > 0
                && s[..i].chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && s.as_bytes()[0].is_ascii_alphabetic() =>
        {
            (Some(&s[..i]), &s[i + 1..])
        }
        _ => (None, s),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(r) => match r.find('/') {
            Some(i) => (Some(&r[..i]), &r[i..]),
            None => (Some(r), ""),
        },
        None => (None, rest),
    };
    Parts { scheme, authority, path, query }
}

fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let absolute = path.starts_with('/');
    let segs: Vec<&str> = path.split('/').collect();
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        match *seg {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 || (out.len() == 1 && !absolute) {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut r = out.join("/");
    if absolute && !r.starts_with('/') {
        r.insert(0, '/');
    }
    r
}

/// Resolves a URI reference against a base (RFC 3986, section 5.2).
pub(crate) fn resolve_uri(base: &str, reference: &str) -> String {
    let (_, frag) = split_fragment(reference);
    let frag = if reference.contains('#') { format!("#{frag}") } else { String::new() };
    let r = parse_uri(reference);
    let b = parse_uri(base);
    let q = |q: Option<&str>| q.map(|q| format!("?{q}")).unwrap_or_default();
    let out = if let Some(scheme) = r.scheme {
        let auth = r.authority.map(|a| format!("//{a}")).unwrap_or_default();
        format!("{scheme}:{auth}{}{}", remove_dot_segments(r.path), q(r.query))
    } else {
        let scheme = b.scheme.map(|s| format!("{s}:")).unwrap_or_default();
        if let Some(a) = r.authority {
            format!("{scheme}//{a}{}{}", remove_dot_segments(r.path), q(r.query))
        } else {
            let auth = b.authority.map(|a| format!("//{a}")).unwrap_or_default();
            if r.path.is_empty() {
                let query = if r.query.is_some() { q(r.query) } else { q(b.query) };
                format!("{scheme}{auth}{}{query}", b.path)
            } else if r.path.starts_with('/') {
                format!("{scheme}{auth}{}{}", remove_dot_segments(r.path), q(r.query))
            } else {
                let merged = if b.authority.is_some() && b.path.is_empty() {
                    format!("/{}", r.path)
                } else {
                    match b.path.rfind('/') {
                        Some(i) => format!("{}{}", &b.path[..=i], r.path),
                        None => r.path.to_string(),
                    }
                };
                format!("{scheme}{auth}{}{}", remove_dot_segments(&merged), q(r.query))
            }
        }
    };
    format!("{out}{frag}")
}

/// Escapes a JSON pointer token.
pub(crate) fn escape_token(t: &str) -> String {
    t.replace('~', "~0").replace('/', "~1")
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && s.is_char_boundary(i + 1) && s.is_char_boundary(i + 3) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Looks up a JSON pointer (already unescaped per token) in `v`.
pub(crate) fn lookup<'v>(v: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(v);
    }
    v.pointer(pointer)
}

/// The schema resources and anchors of one document.
#[derive(Debug)]
pub(crate) struct Index {
    /// absolute URI (no fragment) -> pointer of the resource root
    resources: HashMap<String, String>,
    /// absolute URI with `#anchor` -> pointer
    anchors: HashMap<String, String>,
    /// pointer -> base URI in effect there
    bases: HashMap<String, String>,
}

/// Keywords whose value is a schema.
const SCHEMA_KEYS: &[&str] = &[
    "additionalProperties",
    "additionalItems",
    "items",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentSchema",
];
/// Keywords whose value is an array of schemas.
const SCHEMA_ARRAY_KEYS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems", "items"];
/// Keywords whose value is a map of schemas.
const SCHEMA_MAP_KEYS: &[&str] =
    &["properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"];

impl Index {
    pub(crate) fn new(root: &Value, draft: Draft) -> Index {
        let mut ix = Index { resources: HashMap::new(), anchors: HashMap::new(), bases: HashMap::new() };
        ix.resources.insert(DEFAULT_BASE.to_string(), String::new());
        let mut stack: Vec<(&Value, String, String, usize)> = vec![(root, String::new(), DEFAULT_BASE.to_string(), 0)];
        while let Some((v, ptr, base, depth)) = stack.pop() {
            let Value::Object(m) = v else { continue };
            if depth > 500 {
                continue;
            }
            let mut base = base;
            let id_key = if draft == Draft::Draft4 { "id" } else { "$id" };
            // draft <= 7: `$ref` siblings (including `$id`) are ignored
            let ref_overrides = draft <= Draft::Draft7 && m.contains_key("$ref");
            if let Some(id) = m.get(id_key).and_then(Value::as_str).filter(|_| !ref_overrides) {
                if let Some(name) = id.strip_prefix('#') {
                    // plain-name fragment (drafts 6/7)
                    let (b, _) = split_fragment(&base);
                    ix.anchors.insert(format!("{b}#{name}"), ptr.clone());
                } else {
                    let abs = resolve_uri(&base, id);
                    let (no_frag, frag) = split_fragment(&abs);
                    if !frag.is_empty() && draft <= Draft::Draft7 {
                        ix.anchors.insert(abs.clone(), ptr.clone());
                    }
                    ix.resources.insert(no_frag.to_string(), ptr.clone());
                    base = no_frag.to_string();
                }
            }
            for key in ["$anchor", "$dynamicAnchor"] {
                if let Some(a) = m.get(key).and_then(Value::as_str) {
                    let (b, _) = split_fragment(&base);
                    ix.anchors.insert(format!("{b}#{a}"), ptr.clone());
                }
            }
            ix.bases.insert(ptr.clone(), base.clone());
            for (k, sub) in m {
                let p = format!("{ptr}/{}", escape_token(k));
                if SCHEMA_KEYS.contains(&k.as_str()) {
                    stack.push((sub, p.clone(), base.clone(), depth + 1));
                }
                if SCHEMA_ARRAY_KEYS.contains(&k.as_str()) {
                    if let Value::Array(a) = sub {
                        for (i, x) in a.iter().enumerate() {
                            stack.push((x, format!("{p}/{i}"), base.clone(), depth + 1));
                        }
                    }
                }
                if SCHEMA_MAP_KEYS.contains(&k.as_str()) {
                    if let Value::Object(mm) = sub {
                        for (name, x) in mm {
                            stack.push((x, format!("{p}/{}", escape_token(name)), base.clone(), depth + 1));
                        }
                    }
                }
            }
        }
        ix
    }

    /// The base URI in effect at a schema location.
    pub(crate) fn base_at(&self, pointer: &str) -> &str {
        self.bases.get(pointer).map(String::as_str).unwrap_or(DEFAULT_BASE)
    }

    /// Resolves `reference` read at `pointer` to the pointer of its target.
    pub(crate) fn resolve(&self, pointer: &str, reference: &str) -> Result<String, String> {
        let abs = resolve_uri(self.base_at(pointer), reference);
        if let Some(p) = self.anchors.get(&abs) {
            return Ok(p.clone());
        }
        let (doc, frag) = split_fragment(&abs);
        let Some(root_ptr) = self.resources.get(doc) else {
            return Err(format!("remote reference `{reference}` (resolved to `{abs}`) is not supported"));
        };
        if frag.is_empty() {
            return Ok(root_ptr.clone());
        }
        if frag.starts_with('/') {
            return Ok(format!("{root_ptr}{}", percent_decode(frag)));
        }
        Err(format!("unknown anchor in reference `{reference}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_resolution() {
        assert_eq!(resolve_uri("http://a/b/c/d;p?q", "g"), "http://a/b/c/g");
        assert_eq!(resolve_uri("http://a/b/c/d;p?q", "../g"), "http://a/b/g");
        assert_eq!(resolve_uri("http://a/b/c/d;p?q", "#s"), "http://a/b/c/d;p?q#s");
        assert_eq!(resolve_uri("http://a/b/c/d;p?q", "/g"), "http://a/g");
        assert_eq!(resolve_uri("urn:formwork:schema", "#/definitions/a"), "urn:formwork:schema#/definitions/a");
        assert_eq!(resolve_uri("http://x.com/root.json", "item.json"), "http://x.com/item.json");
    }

    #[test]
    fn index_ids_and_anchors() {
        let v: Value = serde_json::json!({
            "$id": "http://example.com/root.json",
            "$defs": {
                "A": {"$id": "a.json", "$defs": {"B": {"$anchor": "bee"}}},
            }
        });
        let ix = Index::new(&v, Draft::Draft2020_12);
        assert_eq!(ix.resolve("", "a.json").unwrap(), "/$defs/A");
        assert_eq!(ix.resolve("", "a.json#bee").unwrap(), "/$defs/A/$defs/B");
        assert_eq!(ix.resolve("/$defs/A", "#/$defs/B").unwrap(), "/$defs/A/$defs/B");
        assert!(ix.resolve("", "http://other.com/x.json").is_err());
    }
}
