//! Lark's `/regex/flags` literals are Python `re` patterns; the lexer speaks
//! `regex-syntax`. This module rewrites the few constructs that differ and
//! rejects the ones no finite automaton can match, naming them.
//!
//! Rewritten: `\/` (Lark's escaped slash), `\<` and `\>` (plain characters in
//! Python, word boundaries in regex-syntax), `\Z`, `\0` and octal escapes,
//! `{,n}`, `{}` and a `{` that is not a repetition, a stray `}`, and inside
//! classes the characters regex-syntax would read as nested classes or set
//! operations (`[`, `&&`, `--`, `~~`), `\b` (backspace) and, with the `x`
//! flag, whitespace and `#` (significant inside a Python class).
//!
//! Rejected: look-around, word boundaries (both look at text outside the
//! terminal), backreferences, atomic groups and conditionals.

/// Translates a Python `re` pattern to `regex-syntax` syntax. `verbose` is
/// whether the `x` flag applies. Errors describe the construct.
pub(super) fn translate(raw: &str, verbose: bool) -> Result<String, String> {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return Err("the pattern ends with a lone `\\`".into());
                };
                i += 2;
                match e {
                    '1'..='9' => return Err(format!("backreferences (`\\{e}`) are not supported")),
                    '0' => i = push_octal(&chars, i - 1, &mut out),
                    'Z' => out.push_str("\\z"),
                    'b' | 'B' => {
                        return Err(format!(
                            "word boundaries (`\\{e}`) look at the text around the terminal and are not supported"
                        ))
                    }
                    // Python reads `\<` and `\>` as the plain characters;
                    // regex-syntax as word boundaries.
                    '/' | '<' | '>' => out.push(e),
                    _ => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '[' => i = translate_class(&chars, i, verbose, &mut out)?,
            '(' if chars.get(i + 1) == Some(&'?') => {
                let next: String = chars[i + 2..].iter().take(2).collect();
                if next.starts_with('=') || next.starts_with('!') || next == "<=" || next == "<!" {
                    return Err("look-around (`(?=`, `(?!`, `(?<=`, `(?<!`) is not supported".into());
                }
                if next == "P=" {
                    return Err("backreferences (`(?P=name)`) are not supported".into());
                }
                if next.starts_with('>') {
                    return Err("atomic groups (`(?>...)`) are not supported".into());
                }
                if next.starts_with('(') {
                    return Err("conditionals (`(?(...)...)`) are not supported".into());
                }
                if next.starts_with('#') {
                    // A `(?#...)` comment: dropped.
                    match chars[i..].iter().position(|&c| c == ')') {
                        Some(p) => i += p + 1,
                        None => return Err("unterminated `(?#` comment".into()),
                    }
                    continue;
                }
                out.push('(');
                i += 1;
            }
            '{' => {
                // A repetition `{m}`, `{m,}`, `{,n}`, `{m,n}` (also `{}` and
                // `{,}`, both meaning `{0,}` in Python), else a literal `{`.
                let mut j = i + 1;
                let lo: String = chars[j..].iter().take_while(|c| c.is_ascii_digit()).collect();
                j += lo.len();
                let comma = chars.get(j) == Some(&',');
                let hi: String = if comma {
                    j += 1;
                    let hi: String = chars[j..].iter().take_while(|c| c.is_ascii_digit()).collect();
                    j += hi.len();
                    hi
                } else {
                    lo.clone()
                };
                if chars.get(j) == Some(&'}') {
                    let lo = if lo.is_empty() { "0" } else { lo.as_str() };
                    if comma || !hi.is_empty() {
                        out.push_str(&format!("{{{lo},{hi}}}"));
                    } else {
                        out.push_str(&format!("{{{lo},}}"));
                    }
                    i = j + 1;
                } else {
                    out.push_str("\\{");
                    i += 1;
                }
            }
            '}' => {
                out.push_str("\\}");
                i += 1;
            }
            '#' if verbose => {
                // A verbose-mode comment runs to the end of the line; copy it
                // so that brackets in it are not read as classes.
                while i < chars.len() && chars[i] != '\n' {
                    out.push(chars[i]);
                    i += 1;
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Translates the class starting at `chars[start] == '['`; returns the index
/// after its closing `]`.
fn translate_class(chars: &[char], start: usize, verbose: bool, out: &mut String) -> Result<usize, String> {
    out.push('[');
    let mut i = start + 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let first = i;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("unterminated character class".into());
        };
        match c {
            ']' if i == first => {
                // A `]` right after `[` or `[^` is literal in Python.
                out.push_str("\\]");
                i += 1;
            }
            ']' => {
                out.push(']');
                return Ok(i + 1);
            }
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return Err("the pattern ends with a lone `\\`".into());
                };
                match e {
                    '0'..='7' => i = push_octal(chars, i + 1, out),
                    'b' => {
                        out.push_str("\\x08");
                        i += 2;
                    }
                    '/' | '<' | '>' => {
                        out.push(e);
                        i += 2;
                    }
                    _ => {
                        out.push('\\');
                        out.push(e);
                        i += 2;
                    }
                }
            }
            '[' | '&' | '~' | '#' => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                out.push_str("\\-");
                i += 1;
            }
            c if verbose && c.is_whitespace() => {
                out.push_str(&format!("\\x{{{:x}}}", c as u32));
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// Pushes the octal escape whose first digit is at `chars[at]` (up to three
/// digits) as `\x{..}`; returns the index after it.
fn push_octal(chars: &[char], at: usize, out: &mut String) -> usize {
    let mut value = 0u32;
    let mut i = at;
    while i < at + 3 && chars.get(i).is_some_and(|c| ('0'..='7').contains(c)) {
        value = value * 8 + (chars[i] as u32 - '0' as u32);
        i += 1;
    }
    out.push_str(&format!("\\x{{{value:x}}}"));
    i
}

/// Checks that `pattern` is valid regex-syntax that the lexer can compile
/// (the same syntax configuration as the lexer's).
pub(super) fn validate(pattern: &str) -> Result<(), String> {
    use regex_syntax::ast::ErrorKind as AstKind;
    let mut parser = regex_syntax::ParserBuilder::new().utf8(true).unicode(true).nest_limit(200).build();
    match parser.parse(pattern) {
        Ok(_) => Ok(()),
        Err(regex_syntax::Error::Parse(e)) => Err(match e.kind() {
            AstKind::UnsupportedLookAround => "look-around is not supported".to_string(),
            AstKind::UnsupportedBackreference => "backreferences are not supported".to_string(),
            kind => kind.to_string(),
        }),
        Err(regex_syntax::Error::Translate(e)) => Err(e.kind().to_string()),
        Err(e) => Err(e.to_string()),
    }
}
