use super::{parse, parse_with_limits};
use crate::ir::LexemeSpec;
use crate::{ErrorKind, Limits, SyntaxError};

/// The IR of `text` in its stable text form.
fn ir(text: &str) -> String {
    match parse(text) {
        Ok(g) => g.to_string().trim_end().to_string(),
        Err(e) => panic!("{text:?} failed to parse:\n{e}"),
    }
}

/// The spec of the lexeme called `name`.
fn lexeme(text: &str, name: &str) -> LexemeSpec {
    let g = parse(text).unwrap_or_else(|e| panic!("{e}"));
    match g.lexemes().iter().find(|l| l.name == name) {
        Some(l) => l.spec.clone(),
        None => panic!("no lexeme {name} in\n{g}"),
    }
}

fn regex(text: &str, name: &str) -> String {
    match lexeme(text, name) {
        LexemeSpec::Regex(r) => r,
        other => panic!("{name} is not a regex: {other:?}"),
    }
}

fn syntax_error(text: &str) -> SyntaxError {
    match parse(text) {
        Ok(g) => panic!("{text:?} should fail, parsed as:\n{g}"),
        Err(e) => match e.kind() {
            ErrorKind::Syntax(s) => s.clone(),
            other => panic!("{text:?}: expected a syntax error, got {other:?}"),
        },
    }
}

/// Asserts a syntax error at `line`:`column` whose message contains `needle`.
fn assert_error(text: &str, line: usize, column: usize, needle: &str) {
    let e = syntax_error(text);
    assert_eq!((e.line, e.column), (line, column), "{text:?}: wrong position for error:\n{e}");
    assert!(e.message.contains(needle), "{text:?}: message {:?} lacks {needle:?}", e.message);
}

// ---- constructs ----

#[test]
fn rules_terminals_and_anonymous_strings() {
    assert_eq!(
        ir("start: \"a\" B C*\nB: /b+/\nC: \"c\"i"),
        "start: start\nstart ::= (\"a\" B C{0,})\nB := /b+/\nC := /(?i:c)/\n\"a\" := \"a\""
    );
}

#[test]
fn alternatives_on_following_lines() {
    let text = "start: \"a\"\n     | \"b\" // comment\n\n     | \"c\"\n";
    assert_eq!(
        ir(text),
        "start: start\nstart ::= (\"a\" | \"b\" | \"c\")\n\"a\" := \"a\"\n\"b\" := \"b\"\n\"c\" := \"c\""
    );
}

#[test]
fn empty_alternatives() {
    assert_eq!(ir("start: \"x\" |"), "start: start\nstart ::= (\"x\" | \"\")\n\"x\" := \"x\"");
    assert_eq!(ir("start:"), "start: start\nstart ::= \"\"");
    assert_eq!(ir("start: ()"), "start: start\nstart ::= \"\"");
}

#[test]
fn operators_in_rules() {
    let text = "start: x | y\nx: \"x\" ~ 2..3 \"v\" ~ 4\ny: [\"y\"] \"w\"{,2} \"u\"{3} \"t\"{1,} \"s\"? \"r\"+";
    let shown = ir(text);
    assert!(shown.contains("x ::= (\"x\"{2,3} \"v\"{4,4})"), "{shown}");
    assert!(shown.contains("y ::= (\"y\"{0,1} \"w\"{0,2} \"u\"{3,3} \"t\"{1,} \"s\"{0,1} \"r\"{1,})"), "{shown}");
}

#[test]
fn modifiers_priorities_and_aliases_do_not_change_the_language() {
    let text = "?start: item\n!item.3: \"a\" -> alias_a\n    | \"b\"\nT.2: \"t\"\n?!x: \"x\"";
    let shown = ir(text);
    assert!(shown.contains("start ::= item\nitem ::= (\"a\" | \"b\")\nx ::= \"x\""), "{shown}");
}

#[test]
fn rules_may_be_used_before_definition_and_recursively() {
    let shown = ir("start: list\nlist: list \",\" ITEM | ITEM\nITEM: /[a-z]+/");
    assert!(shown.contains("list ::= ((list \",\" ITEM) | ITEM)"), "{shown}");
}

#[test]
fn newlines_inside_brackets_are_ignored() {
    let shown = ir("start: (\"a\"\n  | \"b\"\n) [\n \"c\"\n]");
    assert!(shown.contains("start ::= ((\"a\" | \"b\") \"c\"{0,1})"), "{shown}");
}

#[test]
fn line_continuation() {
    let shown = ir("start: \"a\" \\\n   \"b\"");
    assert!(shown.contains("start ::= (\"a\" \"b\")"), "{shown}");
}

#[test]
fn terminals_compile_to_one_regex() {
    let text = "start: T\nT: (\"a\"..\"f\" | DIGIT)+ \"!\" | \"?\"\nDIGIT: \"0\"..\"9\"";
    assert_eq!(regex(text, "T"), r"(?:[a-f]|[0-9])+!|\?");
}

#[test]
fn literal_only_terminals_stay_literals() {
    let text = "start: T\nT: \"ab\" C \"d\"\nC: \"c\"";
    assert_eq!(lexeme(text, "T"), LexemeSpec::Literal("abcd".into()));
}

#[test]
fn user_regexes_are_grouped_when_combined() {
    // A user regex may hold inline flags or alternations: always grouped.
    let text = "start: T\nT: /a|b/ \"c\" /(?i)d/";
    assert_eq!(regex(text, "T"), "(?:a|b)c(?:(?i)d)");
}

#[test]
fn regex_flags_become_groups() {
    assert_eq!(regex("start: T\nT: /a.b/si", "T"), "(?si:a.b)");
    assert_eq!(regex("start: T\nT: /a b # c/x", "T"), "(?x:a b # c\n)");
    // `u` is Python's default and changes nothing.
    assert_eq!(regex("start: T\nT: /ab/u", "T"), "ab");
}

#[test]
fn python_regex_syntax_is_translated() {
    let t = |re: &str| regex(&format!("start: T\nT: /{re}/"), "T");
    assert_eq!(t(r"a\/b"), "a/b");
    assert_eq!(t(r"a\Z"), r"a\z");
    assert_eq!(t(r"a{,3}"), "a{0,3}");
    assert_eq!(t(r"a{2}"), "a{2,2}");
    assert_eq!(t(r"a{x"), r"a\{x");
    assert_eq!(t(r"[]a]"), r"[\]a]");
    assert_eq!(t(r"[[a]"), r"[\[a]");
    assert_eq!(t(r"[a&&b]"), r"[a\&\&b]");
    assert_eq!(t(r"[\b]"), r"[\x08]");
    assert_eq!(t(r"\0"), r"\x{0}");
    assert_eq!(t(r"a(?#comment)b"), "ab");
    assert_eq!(t(r"\<a\>[\<]"), "<a>[<]");
    assert_eq!(regex("start: T\nT: /[ #]/x", "T"), "(?x:[\\x{20}\\#]\n)");
}

#[test]
fn string_escapes_follow_lark() {
    let s = |lit: &str| lexeme(&format!("start: {lit}"), lit);
    assert_eq!(s(r#""a\tb\nc\rd\fe""#), LexemeSpec::Literal("a\tb\nc\rd\u{c}e".into()));
    assert_eq!(s(r#""\\ \"""#), LexemeSpec::Literal("\\ \"".into()));
    assert_eq!(s(r#""\x41\u00e9\U0001F600""#), LexemeSpec::Literal("Aé😀".into()));
    // Other escapes keep their backslash, as in Lark.
    assert_eq!(s(r#""\d\.""#), LexemeSpec::Literal("\\d\\.".into()));
}

#[test]
fn case_insensitive_strings() {
    assert_eq!(lexeme(r#"start: "Se.lect"i"#, r#""Se.lect"i"#), LexemeSpec::Regex(r"(?i:Se\.lect)".into()));
}

#[test]
fn ranges() {
    assert_eq!(regex(r#"start: "a".."z""#, r#""a".."z""#), "[a-z]");
    assert_eq!(regex(r#"start: "\t".."\n""#, r#""\t".."\n""#), r"[\x{9}-\x{a}]");
    assert_eq!(regex(r#"start: "-".."/""#, r#""-".."/""#), r"[\--/]");
}

#[test]
fn intersection_and_complement() {
    let text = "start: K\nK: /[a-z]+/ & ~(\"if\" | /x.*/) & L\nL: /.{0,8}/";
    assert_eq!(
        lexeme(text, "K"),
        LexemeSpec::And(vec![
            LexemeSpec::Regex("[a-z]+".into()),
            LexemeSpec::Not(Box::new(LexemeSpec::Regex("if|(?:x.*)".into()))),
            LexemeSpec::Regex(".{0,8}".into()),
        ])
    );
    // `&` binds looser than a sequence, `~` tighter than `+`.
    let text = "start: K\nK: \"a\" \"b\" & ~\"c\" \"d\"";
    assert_eq!(
        lexeme(text, "K"),
        LexemeSpec::And(vec![
            LexemeSpec::Literal("ab".into()),
            LexemeSpec::Concat(vec![
                LexemeSpec::Not(Box::new(LexemeSpec::Literal("c".into()))),
                LexemeSpec::Literal("d".into()),
            ]),
        ])
    );
}

#[test]
fn tilde_after_an_item_is_repetition_before_an_item_is_complement() {
    let text = "start: K\nK: \"a\" ~ 2 ~\"b\"";
    assert_eq!(
        lexeme(text, "K"),
        LexemeSpec::Concat(vec![
            LexemeSpec::Regex("a{2}".into()),
            LexemeSpec::Not(Box::new(LexemeSpec::Literal("b".into()))),
        ])
    );
}

#[test]
fn named_terminals_keep_their_names_when_shared() {
    let g = parse("start: \"+\" PLUS\nPLUS: \"+\"").unwrap();
    assert_eq!(g.lexemes().len(), 1);
    assert_eq!(g.lexemes()[0].name, "PLUS");
}

#[test]
fn unused_terminals_are_checked_but_not_emitted() {
    let g = parse("start: \"a\"\nUNUSED: /b/").unwrap();
    assert_eq!(g.lexemes().len(), 1);
    assert_error("start: \"a\"\nUNUSED: /(?=b)/", 2, 9, "look-around");
}

#[test]
fn ignore_follows_every_terminal() {
    let text = "start: x \"z\"\nx: \"x\"+ NAME\nNAME: /[a-z]+/\n%ignore \" \"";
    assert_eq!(
        ir(text),
        "start: start#3\n\
         ignore#0 ::= %ignore{0,}\n\
         start ::= (x (\"z\" ignore#0))\n\
         x ::= ((\"x\" ignore#0){1,} (NAME ignore#0))\n\
         start#3 ::= (ignore#0 start)\n\
         NAME := /[a-z]+/\n\
         %ignore := \" \"\n\
         \"z\" := \"z\"\n\
         \"x\" := \"x\""
    );
}

#[test]
fn several_ignores_share_one_rule() {
    let text = "start: \"a\"\nWS: /\\s+/\nCOMMENT: /#[^\\n]*/\n%ignore WS\n%ignore COMMENT";
    let shown = ir(text);
    assert!(shown.contains("ignore#0 ::= (WS | COMMENT){0,}"), "{shown}");
}

#[test]
fn loads_the_test_grammars() {
    for text in [
        include_str!("../../testdata/grammars/calc.lark"),
        include_str!("../../testdata/grammars/json.lark"),
        include_str!("../../testdata/grammars/config.lark"),
        include_str!("../../testdata/grammars/ident.lark"),
    ] {
        if let Err(e) = parse(text) {
            panic!("{e}");
        }
    }
}

// ---- errors ----

#[test]
fn error_empty_input() {
    for text in ["", "\n\n", "// only a comment\n"] {
        let e = parse(text).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Grammar(m) if m.contains("empty")), "{text:?}: {e}");
    }
}

#[test]
fn error_missing_start() {
    let e = parse("root: \"a\"").unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Grammar(m) if m.contains("`start`")), "{e}");
}

#[test]
fn error_undefined_names() {
    assert_error("start: a b\na: \"x\"", 1, 10, "undefined rule `b`");
    assert_error("start: \"x\" NUMBER", 1, 12, "undefined terminal `NUMBER`");
    assert_error("start: A\nA: B \"x\"", 2, 4, "undefined terminal `B`");
}

#[test]
fn error_duplicate_definitions() {
    assert_error("start: \"a\"\nstart: \"b\"", 2, 1, "rule `start` is already defined at line 1, column 1");
    assert_error("start: A\nA: \"a\"\nA: \"b\"", 3, 1, "terminal `A` is already defined at line 2");
}

#[test]
fn error_recursive_terminal() {
    assert_error("start: A\nA: \"a\" B\nB: A?", 3, 4, "terminal `A` is defined in terms of itself");
}

#[test]
fn error_terminal_refers_to_rule() {
    assert_error("start: A\nA: \"a\" b\nb: \"b\"", 2, 8, "refers to rule `b`");
    assert_error("start: \"a\"\n%ignore ws\nws: \" \"", 2, 9, "refers to rule `ws`");
}

#[test]
fn error_terminal_operators_in_rules() {
    assert_error("start: \"a\" & \"b\"", 1, 12, "`&` (intersection) is only allowed in terminal definitions");
    assert_error("start: ~\"a\"", 1, 8, "`~` (complement) is only allowed in terminal definitions");
}

#[test]
fn error_repeating_an_intersection() {
    assert_error("start: A\nA: (/a+/ & ~\"aa\")+", 2, 5, "repeating an expression that uses `&` or `~`");
}

#[test]
fn error_missing_colon() {
    assert_error("start \"a\"", 1, 7, "expected `:` after the name `start`");
    assert_error("start\n: \"a\"", 1, 6, "expected `:`");
}

#[test]
fn error_invalid_names() {
    assert_error("start: Abc", 1, 8, "invalid name `Abc`");
    assert_error("stArt: \"a\"", 1, 1, "invalid name");
}

#[test]
fn error_unterminated_string() {
    assert_error("start: \"abc", 1, 8, "unterminated string literal");
    assert_error("start: \"ab\ncd\"", 1, 8, "strings cannot contain line breaks");
}

#[test]
fn error_bad_string_escapes() {
    assert_error(r#"start: "\x4""#, 1, 9, "expected 2 hex digits after `\\x`");
    assert_error(r#"start: "\u00G0""#, 1, 9, "expected 4 hex digits");
    assert_error(r#"start: "\ud800""#, 1, 9, "not a Unicode scalar value");
}

#[test]
fn error_empty_string() {
    assert_error(r#"start: "a" """#, 1, 12, "empty strings are not allowed");
}

#[test]
fn error_unterminated_regex() {
    assert_error("start: /abc", 1, 8, "unterminated regex");
}

#[test]
fn error_newline_in_regex_without_x_flag() {
    assert_error("start: /a\nb/", 1, 10, "only with the `x` (verbose) flag");
}

#[test]
fn error_unsupported_regex_features_name_the_terminal() {
    let cases = [
        ("start: T\nT: /a(?=b)/", "terminal `T`: look-around"),
        ("start: T\nT: /a(?<!b)/", "terminal `T`: look-around"),
        ("start: T\nT: /(a)\\1/", "terminal `T`: backreferences"),
        ("start: T\nT: /(?P<x>a)(?P=x)/", "terminal `T`: backreferences"),
        ("start: T\nT: /(?>a)/", "terminal `T`: atomic groups"),
        ("start: T\nT: /a\\b/", "terminal `T`: word boundaries (`\\b`)"),
        ("start: T\nT: /\\Ba/", "terminal `T`: word boundaries (`\\B`)"),
        ("start: T\nT: /a{2,1}/", "invalid regex in terminal `T`"),
        ("start: T\nT: /\\p{Nope}/", "invalid regex in terminal `T`"),
        ("start: T\nT: /a/l", "`l` (locale)"),
    ];
    for (text, needle) in cases {
        assert_error(text, 2, 4, needle);
    }
    // An anonymous regex is named by its text.
    assert_error("start: /a(?=b)/", 1, 8, "terminal `/a(?=b)/`: look-around");
}

#[test]
fn error_bad_ranges() {
    assert_error(r#"start: "ab".."z""#, 1, 8, "two single-character strings");
    assert_error(r#"start: "z".."a""#, 1, 8, "reversed");
    assert_error(r#"start: "a"..B"#, 1, 13, "expected a string after `..`");
}

#[test]
fn error_bad_repetitions() {
    assert_error(r#"start: "a" ~ 3..2"#, 1, 14, "repetition range 3..2 is reversed");
    assert_error(r#"start: "a" ~ -1"#, 1, 14, "cannot be negative");
    assert_error(r#"start: "a"{3,2}"#, 1, 11, "minimum 3 is larger than its maximum 2");
    assert_error(r#"start: "a" ~ 100001"#, 1, 14, "larger than the maximum 100000");
    assert_error(r#"start: "a"{0,99999999999}"#, 1, 14, "larger than the maximum");
    assert_error(r#"start: ~ 2"#, 1, 8, "needs an item before it");
    assert_error(r#"start: "a"{2"#, 1, 13, "expected `}`");
}

#[test]
fn error_unbalanced_brackets() {
    assert_error("start: (\"a\"\n", 1, 8, "unclosed `(`: expected `)` before the end of the input");
    assert_error("start: (\"a\" :", 1, 13, "expected `)` to close the `(` at line 1, column 8");
    assert_error("start: [\"a\")", 1, 12, "expected `]` to close the `[`");
    assert_error("start: \"a\")", 1, 11, "unmatched `)`");
}

#[test]
fn error_two_definitions_on_one_line() {
    assert_error("start: a a: \"x\"", 1, 11, "each definition must start on a new line");
}

#[test]
fn error_pipe_at_the_start() {
    assert_error("| \"a\"", 1, 1, "`|` continues the previous definition");
}

#[test]
fn error_trailing_pipe_does_not_continue_on_the_next_line() {
    // As in Lark, `a |` ends with an empty alternative; the next line is a new item.
    assert_error("start: \"a\" |\n  \"b\"", 2, 3, "expected a rule or terminal definition");
}

#[test]
fn error_unsupported_directives() {
    assert_error(
        "%import common.WS\nstart: WS",
        1,
        1,
        "`%import` is not supported; define it in the grammar instead, e.g. `WS: ",
    );
    assert_error("%import common (INT, WORD)\nstart: \"a\"", 1, 1, "`%import` is not supported");
    assert_error("%declare X\nstart: \"a\"", 1, 1, "`%declare` is not supported");
    assert_error("%override start: \"b\"", 1, 1, "`%override` is not supported");
    assert_error("%json {}", 1, 1, "llguidance extension");
    assert_error("%frobnicate", 1, 1, "unknown directive `%frobnicate`");
}

#[test]
fn error_templates() {
    assert_error("start: _sep{x, \",\"}\nx: \"x\"", 1, 12, "templates");
    assert_error("_sep{x, sep}: x (sep x)*\nstart: \"a\"", 1, 5, "templates");
}

#[test]
fn error_special_tokens() {
    assert_error("start: <think> \"a\"", 1, 8, "special tokens");
    assert_error("start: @sub", 1, 8, "grammar references");
}

#[test]
fn error_misplaced_modifier() {
    assert_error("start: !x\nx: \"x\"", 1, 8, "only allowed at the start of a rule definition");
}

#[test]
fn error_unexpected_character() {
    assert_error("start: \"a\" $", 1, 12, "unexpected character `$`");
}

#[test]
fn error_deep_nesting() {
    let deep = format!("start: {}\"a\"{}", "(".repeat(500), ")".repeat(500));
    let e = parse(&deep).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Limit { limit: "max_nesting", value: 200, .. }), "{e}");
    let ok = format!("start: {}\"a\"{}", "(".repeat(150), ")".repeat(150));
    assert!(parse(&ok).is_ok());
    let limits = Limits { max_nesting: 3, ..Limits::default() };
    assert!(parse_with_limits("start: (((\"a\")))", &limits).is_ok());
    assert!(parse_with_limits("start: [[[[\"a\"]]]]", &limits).is_err());
}

#[test]
fn error_deeply_stacked_operators() {
    let text = format!("start: \"a\"{}", "?".repeat(10_000));
    let e = parse(&text).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Limit { limit: "max_nesting", .. }), "{e}");
    let text = format!("start: A\nA: {}\"a\"", "~".repeat(10_000));
    let e = parse(&text).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Limit { limit: "max_nesting", .. }), "{e}");
}

#[test]
fn long_terminal_chains_do_not_overflow_the_stack() {
    let mut text = String::from("start: T0\n");
    for i in 0..20_000 {
        text.push_str(&format!("T{i}: T{}\n", i + 1));
    }
    text.push_str("T20000: \"x\"\n");
    assert_eq!(lexeme(&text, "T0"), LexemeSpec::Literal("x".into()));
}

#[test]
fn exponential_terminals_hit_the_size_limit() {
    let mut text = String::from("start: T40\nT0: /ab/\n");
    for i in 1..=40 {
        text.push_str(&format!("T{i}: T{} T{}\n", i - 1, i - 1));
    }
    let e = parse(&text).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Limit { limit: "max_grammar_size", .. }), "{e}");
}

#[test]
fn error_display_shows_the_line_and_markers() {
    let e = parse("start: A\nA: /a(?=b)/\n").unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("Lark syntax error at line 2, column 4"), "{shown}");
    assert!(shown.contains("  | A: /a(?=b)/\n  |    ^^^^^^^^"), "{shown}");
}

#[test]
fn never_panics_on_odd_input() {
    let inputs = [
        "start: \"\\",
        "start: \"\\x",
        "start: /\\",
        "start: /a/\\",
        "start: \"a\"..",
        "start: \"a\"..\"",
        "start: (",
        "start: [",
        "start: \"a\" ~",
        "start: \"a\" ~ 1..",
        "start: \"a\"{",
        "start: \"a\"{,",
        "start: \"a\" ->",
        "start: \"a\" -> B",
        "?",
        "!",
        "?!",
        "%",
        "%ignore",
        "start.",
        "start.x: \"a\"",
        "A",
        "_: \"a\"",
        "start: é",
        "start: \"é\"..\"日\"",
        "start: /[/",
        "start: /[é-/",
        "start: /(?#/",
        "start: A\nA: /(?#x)/",
        "start: A\nA: ~/a/ & ~/b/",
        "\u{0}",
    ];
    for text in inputs {
        let _ = parse(text);
    }
}
