//! Which JSON field each generated token chose: per-field confidence and
//! partial values while streaming.
//!
//! [`JsonTracker`] reads the output bytes as they are generated (JSON that
//! the grammar guarantees is valid so far) and knows, for every byte, which
//! value it belongs to, named by its JSON pointer (RFC 6901). A token's
//! log-probability under the constrained distribution is added to every
//! value whose bytes (or whose key, for a property) it touched, and to all
//! of their ancestors, so:
//!
//! - a leaf's confidence is the probability of the tokens that spelled it
//!   and its key (`/category` of `{"category": "billing"}`);
//! - a container's confidence includes its children's and the structural
//!   choices (how many items, which keys, where it closes);
//! - the root's (`""`) is the probability of the whole value.
//!
//! Tokens fast-forwarded by the grammar have probability 1 and add nothing.
//! Whitespace and `:` belong to no value.

use std::collections::HashMap;

/// One value's confidence.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldConfidence {
    /// JSON pointer of the value (`""` for the whole output, `/items/0/id`).
    pub pointer: String,
    /// Product of the constrained probabilities of the sampled tokens that
    /// chose this value (its key, its bytes, its children's).
    pub confidence: f32,
    /// How many sampled tokens touched the value.
    pub tokens: u32,
}

#[derive(Clone, Debug)]
enum Frame {
    /// An object: `key` is the property whose value is current (or was
    /// last), `pending` the log-probability spent on the key being written.
    Object { key: Option<String>, key_buf: Vec<u8>, pending: f64, pending_tokens: u32 },
    /// An array and the index of its current (or next) item.
    Array { index: usize, started: bool },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Before a value (top level, after `:`, after `[` or `,` in an array).
    Value,
    /// Inside a string value; `escape` after a backslash.
    StringValue { escape: bool },
    /// Inside a number or literal.
    Scalar,
    /// After a complete value.
    AfterValue,
    /// In an object, before a key (after `{` or `,`).
    Key,
    /// Inside a key string.
    KeyString { escape: bool },
    /// After a key, before `:`.
    AfterKey,
}

/// Streams output bytes and attributes token log-probabilities to JSON
/// values. See the module docs.
#[derive(Clone, Debug)]
pub(crate) struct JsonTracker {
    frames: Vec<Frame>,
    mode: Mode,
    ids: HashMap<String, usize>,
    fields: Vec<(String, f64, u32)>,
    /// Output so far, and the last prefix that closes into valid JSON with
    /// `safe_closers` appended.
    text: Vec<u8>,
    safe_len: usize,
    safe_closers: String,
    /// Whether the output stopped being JSON we can follow (free text).
    lost: bool,
    /// Pointers touched by the token being read (indices into `fields`),
    /// and objects whose pending key it touched (indices into `frames`).
    touched: Vec<usize>,
    touched_keys: Vec<usize>,
}

impl JsonTracker {
    pub(crate) fn new() -> JsonTracker {
        JsonTracker {
            frames: Vec::new(),
            mode: Mode::Value,
            ids: HashMap::new(),
            fields: Vec::new(),
            text: Vec::new(),
            safe_len: 0,
            safe_closers: String::new(),
            lost: false,
            touched: Vec::new(),
            touched_keys: Vec::new(),
        }
    }

    /// Reads one token's bytes and adds `logprob` (natural log, `<= 0`) to
    /// the values it touched. Fast-forwarded tokens pass `None`.
    pub(crate) fn push_token(&mut self, bytes: &[u8], logprob: Option<f64>) {
        self.touched.clear();
        self.touched_keys.clear();
        for &b in bytes {
            if !self.lost {
                self.push_byte(b);
            }
            self.text.push(b);
        }
        let Some(lp) = logprob else { return };
        self.touched.sort_unstable();
        self.touched.dedup();
        for &id in &self.touched {
            self.fields[id].1 += lp;
            self.fields[id].2 += 1;
        }
        self.touched_keys.sort_unstable();
        self.touched_keys.dedup();
        for &f in &self.touched_keys {
            if let Some(Frame::Object { pending, pending_tokens, .. }) = self.frames.get_mut(f) {
                *pending += lp;
                *pending_tokens += 1;
            }
        }
    }

    /// Confidence of every value seen, in order of first appearance.
    pub(crate) fn fields(&self) -> Vec<FieldConfidence> {
        self.fields
            .iter()
            .map(|(p, lp, n)| FieldConfidence { pointer: p.clone(), confidence: lp.exp() as f32, tokens: *n })
            .collect()
    }

    /// The output so far closed into a JSON value: an unfinished string
    /// value is closed where it stands, unfinished containers are closed,
    /// an unfinished key or number is left out. `None` before the first
    /// complete piece or when the output is not JSON.
    pub(crate) fn partial_value(&self) -> Option<serde_json::Value> {
        if self.lost {
            return None;
        }
        if let Mode::StringValue { escape: false } = self.mode {
            let mut s = self.text.clone();
            s.push(b'"');
            s.extend_from_slice(self.closers().as_bytes());
            if let Ok(v) = serde_json::from_slice(&s) {
                return Some(v);
            }
        }
        if self.mode == Mode::AfterValue {
            let mut s = self.text.clone();
            s.extend_from_slice(self.closers().as_bytes());
            if let Ok(v) = serde_json::from_slice(&s) {
                return Some(v);
            }
        }
        let mut s = self.text[..self.safe_len].to_vec();
        if s.is_empty() {
            return None;
        }
        s.extend_from_slice(self.safe_closers.as_bytes());
        serde_json::from_slice(&s).ok()
    }

    fn closers(&self) -> String {
        self.frames.iter().rev().map(|f| if matches!(f, Frame::Object { .. }) { '}' } else { ']' }).collect()
    }

    fn pointer(&self) -> String {
        let mut p = String::new();
        for f in &self.frames {
            match f {
                Frame::Object { key: Some(k), .. } => {
                    p.push('/');
                    p.push_str(&k.replace('~', "~0").replace('/', "~1"));
                }
                Frame::Object { key: None, .. } => {}
                Frame::Array { index, .. } => {
                    p.push('/');
                    p.push_str(&index.to_string());
                }
            }
        }
        p
    }

    fn id(&mut self, pointer: String) -> usize {
        if let Some(&id) = self.ids.get(&pointer) {
            return id;
        }
        let id = self.fields.len();
        self.ids.insert(pointer.clone(), id);
        self.fields.push((pointer, 0.0, 0));
        id
    }

    /// Marks the current value and its ancestors as touched; `depth` frames
    /// of the path count (the current value is at `frames.len()`).
    fn touch(&mut self, depth: usize) {
        let mut p = String::new();
        let root = self.id(String::new());
        self.touched.push(root);
        for i in 0..depth.min(self.frames.len()) {
            match &self.frames[i] {
                Frame::Object { key: Some(k), .. } => {
                    p.push('/');
                    p.push_str(&k.replace('~', "~0").replace('/', "~1"));
                }
                Frame::Object { key: None, .. } => break,
                Frame::Array { index, .. } => {
                    p.push('/');
                    p.push_str(&index.to_string());
                }
            }
            let id = self.id(p.clone());
            self.touched.push(id);
        }
    }

    /// Records a safe point after the byte being read (`with_current`) or
    /// before it (`push_byte` runs before the byte joins `text`).
    fn mark_safe(&mut self, with_current: bool) {
        self.safe_len = self.text.len() + usize::from(with_current);
        self.safe_closers = self.closers();
    }

    fn push_byte(&mut self, b: u8) {
        let ws = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        match self.mode {
            Mode::Value => {
                if ws {
                    return;
                }
                let depth = self.frames.len();
                if let Some(Frame::Array { started, .. }) = self.frames.last_mut() {
                    *started = true;
                }
                if b == b']' {
                    // An empty array closes where an item could start.
                    self.close(b']');
                    return;
                }
                self.touch(depth);
                match b {
                    b'{' => {
                        self.frames.push(Frame::Object {
                            key: None,
                            key_buf: Vec::new(),
                            pending: 0.0,
                            pending_tokens: 0,
                        });
                        self.mode = Mode::Key;
                        self.mark_safe(true);
                    }
                    b'[' => {
                        self.frames.push(Frame::Array { index: 0, started: false });
                        self.mode = Mode::Value;
                        self.mark_safe(true);
                    }
                    b'"' => self.mode = Mode::StringValue { escape: false },
                    b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => self.mode = Mode::Scalar,
                    _ => self.lost = true,
                }
            }
            Mode::StringValue { escape } => {
                self.touch(self.frames.len());
                if escape {
                    self.mode = Mode::StringValue { escape: false };
                } else if b == b'\\' {
                    self.mode = Mode::StringValue { escape: true };
                } else if b == b'"' {
                    self.end_value(true);
                }
            }
            Mode::Scalar => {
                if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+') {
                    self.touch(self.frames.len());
                } else {
                    self.end_value(false);
                    self.push_byte(b);
                }
            }
            Mode::AfterValue => {
                if ws {
                    return;
                }
                match (b, self.frames.last()) {
                    (b',', Some(Frame::Object { .. })) => {
                        let depth = self.frames.len() - 1;
                        self.touch(depth);
                        self.mode = Mode::Key;
                    }
                    (b',', Some(Frame::Array { .. })) => {
                        let depth = self.frames.len() - 1;
                        self.touch(depth);
                        if let Some(Frame::Array { index, .. }) = self.frames.last_mut() {
                            *index += 1;
                        }
                        self.mode = Mode::Value;
                    }
                    (b'}' | b']', Some(_)) => self.close(b),
                    _ => self.lost = true,
                }
            }
            Mode::Key => {
                if ws {
                    return;
                }
                match b {
                    b'"' => {
                        self.touch_key();
                        if let Some(Frame::Object { key_buf, .. }) = self.frames.last_mut() {
                            key_buf.clear();
                        }
                        self.mode = Mode::KeyString { escape: false };
                    }
                    b'}' => self.close(b'}'),
                    _ => self.lost = true,
                }
            }
            Mode::KeyString { escape } => {
                self.touch_key();
                if let Some(Frame::Object { key_buf, .. }) = self.frames.last_mut() {
                    key_buf.push(b);
                }
                if escape {
                    self.mode = Mode::KeyString { escape: false };
                } else if b == b'\\' {
                    self.mode = Mode::KeyString { escape: true };
                } else if b == b'"' {
                    self.end_key();
                }
            }
            Mode::AfterKey => {
                if b == b':' {
                    self.mode = Mode::Value;
                } else if !ws {
                    self.lost = true;
                }
            }
        }
    }

    /// The key being written belongs to the innermost object (whose
    /// `key` is still the previous property).
    fn touch_key(&mut self) {
        let depth = self.frames.len() - 1;
        self.touch(depth);
        let f = self.frames.len() - 1;
        self.touched_keys.push(f);
    }

    fn end_key(&mut self) {
        let Some(Frame::Object { key, key_buf, pending, pending_tokens }) = self.frames.last_mut() else {
            self.lost = true;
            return;
        };
        // `key_buf` holds the key's JSON text after the opening quote,
        // closing quote included.
        let mut quoted = Vec::with_capacity(key_buf.len() + 1);
        quoted.push(b'"');
        quoted.extend_from_slice(key_buf);
        let (lp, n) = (std::mem::take(pending), std::mem::take(pending_tokens));
        match serde_json::from_slice::<String>(&quoted) {
            Ok(k) => *key = Some(k),
            Err(_) => {
                self.lost = true;
                return;
            }
        }
        // The tokens that spelled the key chose this property.
        let p = self.pointer();
        let id = self.id(p);
        self.fields[id].1 += lp;
        self.fields[id].2 += n;
        // The token that closed the key also touches the new property.
        self.touched.push(id);
        self.mode = Mode::AfterKey;
    }

    fn end_value(&mut self, with_current: bool) {
        self.mode = Mode::AfterValue;
        self.mark_safe(with_current);
    }

    fn close(&mut self, b: u8) {
        let ok =
            matches!((b, self.frames.last()), (b'}', Some(Frame::Object { .. })) | (b']', Some(Frame::Array { .. })));
        if !ok {
            self.lost = true;
            return;
        }
        let depth = self.frames.len() - 1;
        // The closing bracket is a choice of the container itself.
        if let Some(Frame::Object { key, .. }) = self.frames.last_mut() {
            *key = None;
        }
        self.touch(depth);
        self.frames.pop();
        self.end_value(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(t: &JsonTracker, p: &str) -> Option<f32> {
        t.fields().into_iter().find(|f| f.pointer == p).map(|f| f.confidence)
    }

    #[test]
    fn leaves_keys_and_ancestors() {
        let mut t = JsonTracker::new();
        let half = 0.5f64.ln();
        t.push_token(b"{\"", None);
        t.push_token(b"category", Some(half)); // key: chooses /category
        t.push_token(b"\": \"", None);
        t.push_token(b"billing", Some(half));
        t.push_token(b"\", \"urgency\": ", None);
        t.push_token(b"3", Some(0.25f64.ln()));
        t.push_token(b"}", Some(0.9f64.ln()));
        let close = |a: f32, b: f64| assert!((f64::from(a) - b).abs() < 1e-6, "{a} vs {b}");
        close(conf(&t, "/category").unwrap(), 0.25);
        close(conf(&t, "/urgency").unwrap(), 0.25);
        close(conf(&t, "").unwrap(), 0.5 * 0.5 * 0.25 * 0.9);
        assert_eq!(t.partial_value(), Some(serde_json::json!({"category": "billing", "urgency": 3})));
    }

    #[test]
    fn arrays_nested_and_escapes() {
        let mut t = JsonTracker::new();
        let lp = 0.5f64.ln();
        for tok in [&b"{\"a/b\": ["[..], b"1", b", ", b"{\"x\\\"\"", b": \"q\\\"", b"\"}", b"]}"] {
            t.push_token(tok, Some(lp));
        }
        let ptrs: Vec<String> = t.fields().into_iter().map(|f| f.pointer).collect();
        assert!(ptrs.contains(&"/a~1b/0".to_string()), "{ptrs:?}");
        assert!(ptrs.contains(&"/a~1b/1/x\"".to_string()), "{ptrs:?}");
        assert_eq!(t.partial_value(), Some(serde_json::json!({"a/b": [1, {"x\"": "q\""}]})));
        // The root saw every token once.
        assert!((conf(&t, "").unwrap() - 0.5f32.powi(7)).abs() < 1e-6);
    }

    #[test]
    fn partial_values_while_streaming() {
        let mut t = JsonTracker::new();
        t.push_token(b"{\"name\": \"Ad", Some(0.0));
        assert_eq!(t.partial_value(), Some(serde_json::json!({"name": "Ad"})));
        t.push_token(b"a\", \"tags\": [\"x\", 1", Some(0.0));
        // The number might continue: left out.
        assert_eq!(t.partial_value(), Some(serde_json::json!({"name": "Ada", "tags": ["x"]})));
        t.push_token(b"2], \"ag", Some(0.0));
        assert_eq!(t.partial_value(), Some(serde_json::json!({"name": "Ada", "tags": ["x", 12]})));
        let mut t = JsonTracker::new();
        t.push_token(b"Hello", Some(0.0));
        assert_eq!(t.partial_value(), None);
    }
}
