use super::{parse, parse_with_limits};
use crate::ir::Expr;
use crate::{ErrorKind, Limits, SyntaxError};

/// The IR of `text` in its stable text form, without the `start:` line.
fn ir(text: &str) -> String {
    match parse(text) {
        Ok(g) => {
            let s = g.to_string();
            s.lines().skip(1).collect::<Vec<_>>().join("\n")
        }
        Err(e) => panic!("{text:?} failed to parse:\n{e}"),
    }
}

/// The syntax error `text` must produce.
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

fn root_body(text: &str) -> Expr {
    let g = parse(text).unwrap_or_else(|e| panic!("{e}"));
    g.rule(g.start()).body.clone()
}

#[test]
fn parses_a_literal() {
    assert_eq!(ir(r#"root ::= "abc""#), r#"root ::= "abc""#);
}

#[test]
fn parses_sequence_and_alternation() {
    assert_eq!(ir(r#"root ::= "a" "b" | "c""#), r#"root ::= (("a" "b") | "c")"#);
}

#[test]
fn parses_groups() {
    assert_eq!(ir(r#"root ::= ("a" | "b") "c""#), r#"root ::= (("a" | "b") "c")"#);
    assert_eq!(ir(r#"root ::= ()"#), r#"root ::= """#);
}

#[test]
fn parses_character_classes() {
    assert_eq!(ir(r#"root ::= [a-z0-9_]"#), r#"root ::= [a-z0-9_]"#);
    assert_eq!(root_body(r#"root ::= [^"\\]"#), Expr::Class { ranges: vec![('"', '"'), ('\\', '\\')], negated: true });
    // `-` is literal at either end; `^` is literal after the first position.
    assert_eq!(ir(r#"root ::= [-a-] [a^]"#), r#"root ::= ([-a-] [a^])"#);
    // `[` needs no escape inside a class.
    assert_eq!(root_body(r#"root ::= [[\]]"#), Expr::class(vec![('[', '['), (']', ']')]));
}

#[test]
fn dot_is_any_character() {
    assert_eq!(root_body("root ::= ."), Expr::Class { ranges: vec![], negated: true });
}

#[test]
fn parses_repetition_operators() {
    assert_eq!(ir(r#"root ::= "a"* "b"+ "c"?"#), r#"root ::= ("a"{0,} "b"{1,} "c"{0,1})"#);
    assert_eq!(ir(r#"root ::= "a"{3}"#), r#"root ::= "a"{3,3}"#);
    assert_eq!(ir(r#"root ::= "a"{2,}"#), r#"root ::= "a"{2,}"#);
    assert_eq!(ir(r#"root ::= "a"{2,5}"#), r#"root ::= "a"{2,5}"#);
    assert_eq!(ir(r#"root ::= "a"{ 2 , 5 }"#), r#"root ::= "a"{2,5}"#);
    assert_eq!(ir(r#"root ::= "a"{0}"#), r#"root ::= "a"{0,0}"#);
    // An operator applies to the whole literal, group or class before it.
    assert_eq!(ir(r#"root ::= "ab"+ ("c" "d")* [0-9]?"#), r#"root ::= ("ab"{1,} ("c" "d"){0,} [0-9]{0,1})"#);
    // Operators stack.
    assert_eq!(ir(r#"root ::= "a"*?"#), r#"root ::= "a"{0,}{0,1}"#);
    // Spaces are allowed before an operator.
    assert_eq!(ir(r#"root ::= "a" *"#), r#"root ::= "a"{0,}"#);
}

#[test]
fn parses_rule_references_before_definition() {
    assert_eq!(ir("root ::= item+\nitem ::= \"x\""), "root ::= item{1,}\nitem ::= \"x\"");
}

#[test]
fn rule_names_allow_letters_digits_dashes_and_underscores() {
    assert_eq!(ir("root ::= a-b_C9\na-b_C9 ::= \"x\""), "root ::= a-b_C9\na-b_C9 ::= \"x\"");
}

#[test]
fn recursion_is_allowed() {
    assert_eq!(
        ir("root ::= expr\nexpr ::= expr \"+\" [0-9] | [0-9]"),
        "root ::= expr\nexpr ::= ((expr \"+\" [0-9]) | [0-9])"
    );
}

#[test]
fn decodes_every_escape() {
    let cases = [
        (r#"\n"#, "\n"),
        (r#"\r"#, "\r"),
        (r#"\t"#, "\t"),
        (r#"\\"#, "\\"),
        (r#"\""#, "\""),
        (r#"\["#, "["),
        (r#"\]"#, "]"),
        (r#"\-"#, "-"),
        (r#"\x41"#, "A"),
        (r#"\xe9"#, "\u{e9}"),
        (r#"\u00E9"#, "\u{e9}"),
        (r#"\u3042"#, "\u{3042}"),
        (r#"\U0001F600"#, "\u{1F600}"),
    ];
    for (escape, want) in cases {
        let text = format!("root ::= \"{escape}\"");
        assert_eq!(root_body(&text), Expr::Literal(want.into()), "{escape}");
        let text = format!("root ::= [{escape}]");
        let c = want.chars().next().unwrap();
        assert_eq!(root_body(&text), Expr::class(vec![(c, c)]), "{escape} in a class");
    }
}

#[test]
fn unicode_text_and_ranges() {
    assert_eq!(root_body("root ::= [ぁ-ゟ]"), Expr::class(vec![('ぁ', 'ゟ')]));
    assert_eq!(root_body(r"root ::= [\u3041-\u309F]"), Expr::class(vec![('ぁ', 'ゟ')]));
    assert_eq!(root_body("root ::= \"日本\""), Expr::Literal("日本".into()));
}

#[test]
fn clips_non_scalar_code_points_from_classes() {
    // The whole range of code points minus the surrogates is one range of scalar values.
    assert_eq!(root_body(r"root ::= [\x20-\U0010FFFF]"), Expr::class(vec![(' ', '\u{10FFFF}')]));
    assert_eq!(root_body(r"root ::= [^\uD800-\uDFFF]"), Expr::Class { ranges: vec![], negated: true });
    assert_eq!(root_body(r"root ::= [a\uD800-\uDBFFb]"), Expr::class(vec![('a', 'a'), ('b', 'b')]));
    assert_eq!(root_body(r"root ::= [a-\U0011FFFF]"), Expr::class(vec![('a', '\u{10FFFF}')]));
}

#[test]
fn raw_newlines_are_allowed_inside_literals_and_classes() {
    assert_eq!(root_body("root ::= \"a\nb\""), Expr::Literal("a\nb".into()));
    assert_eq!(root_body("root ::= [\n]"), Expr::class(vec![('\n', '\n')]));
}

#[test]
fn empty_literal_is_the_empty_string() {
    assert_eq!(root_body(r#"root ::= """#), Expr::Empty);
}

#[test]
fn empty_alternatives_are_allowed() {
    assert_eq!(ir(r#"root ::= | "a""#), r#"root ::= ("" | "a")"#);
    assert_eq!(ir(r#"root ::= "a" |"#), r#"root ::= ("a" | "")"#);
    assert_eq!(ir("root ::="), r#"root ::= """#);
}

#[test]
fn comments_and_blank_lines() {
    let text = "# leading comment\n\nroot ::= \"a\" # trailing comment\n\n# more\nb ::= \"b\"#x\n";
    assert_eq!(ir(text), "root ::= \"a\"\nb ::= \"b\"");
}

#[test]
fn newlines_continue_a_rule_inside_parentheses() {
    let text = "root ::= (\n  \"a\"\n  \"b\" # comment\n  | \"c\"\n)\n";
    assert_eq!(ir(text), r#"root ::= (("a" "b") | "c")"#);
}

#[test]
fn newlines_continue_a_rule_after_a_pipe() {
    assert_eq!(ir("root ::= \"a\" |\n  \"b\" |\n\n  \"c\""), r#"root ::= ("a" | "b" | "c")"#);
}

#[test]
fn newline_after_the_rule_operator_is_allowed() {
    assert_eq!(ir("root ::=\n  \"a\""), r#"root ::= "a""#);
}

#[test]
fn crlf_line_endings() {
    assert_eq!(ir("root ::= a\r\na ::= (\r\n \"x\"\r\n)\r\n"), "root ::= a\na ::= \"x\"");
}

#[test]
fn later_definition_replaces_earlier_one() {
    // llama.cpp keeps the last definition of a rule.
    assert_eq!(ir("root ::= \"a\"\nroot ::= \"b\""), r#"root ::= "b""#);
}

#[test]
fn rules_are_numbered_in_order_of_first_mention() {
    let g = parse("a ::= b\nroot ::= a\nb ::= \"x\"").unwrap();
    let names: Vec<_> = g.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "root"]);
    assert_eq!(g.rule(g.start()).name, "root");
}

#[test]
fn never_declares_lexemes() {
    let g = parse(include_str!("../../testdata/grammars/json.gbnf")).unwrap();
    assert!(g.lexemes().is_empty());
}

#[test]
fn loads_the_test_grammars() {
    for text in [
        include_str!("../../testdata/grammars/json.gbnf"),
        include_str!("../../testdata/grammars/arithmetic.gbnf"),
        include_str!("../../testdata/grammars/list.gbnf"),
        include_str!("../../testdata/grammars/c.gbnf"),
        include_str!("../../testdata/grammars/chess.gbnf"),
        include_str!("../../testdata/grammars/japanese.gbnf"),
    ] {
        if let Err(e) = parse(text) {
            panic!("{e}");
        }
    }
}

// ---- errors ----

#[test]
fn error_empty_input() {
    for text in ["", "   \n\n", "# only a comment\n"] {
        let e = parse(text).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Grammar(m) if m.contains("empty")), "{text:?}: {e}");
    }
}

#[test]
fn error_missing_root() {
    let e = parse(r#"start ::= "a""#).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Grammar(m) if m.contains("`root`")), "{e}");
}

#[test]
fn error_undefined_rule() {
    assert_error("root ::= a b\na ::= \"x\"", 1, 12, "undefined rule `b`");
    assert_error("root ::= \"x\" missing", 1, 14, "undefined rule `missing`");
}

#[test]
fn error_missing_rule_operator() {
    assert_error("root = \"a\"", 1, 6, "expected `::=` after the rule name `root`");
    assert_error("root\n::= \"a\"", 1, 5, "expected `::=`");
}

#[test]
fn error_not_a_rule_name() {
    assert_error("\"a\" ::= root", 1, 1, "expected a rule name");
}

#[test]
fn error_line_starting_with_a_pipe() {
    assert_error("root ::= \"a\"\n  | \"b\"", 2, 3, "cannot start with `|`");
}

#[test]
fn error_two_rules_on_one_line() {
    assert_error("root ::= a a ::= \"x\"", 1, 14, "each rule must start on a new line");
}

#[test]
fn error_unterminated_literal() {
    assert_error("root ::= \"abc", 1, 10, "unterminated string literal");
}

#[test]
fn error_unterminated_class() {
    assert_error("root ::= [abc", 1, 10, "unterminated character class");
    assert_error("root ::= [a-", 1, 10, "unterminated character class");
}

#[test]
fn error_empty_class() {
    assert_error("root ::= [] \"a\"", 1, 10, "empty character class");
    assert_error("root ::= [^]", 1, 10, "empty character class");
}

#[test]
fn error_reversed_range() {
    assert_error("root ::= [z-a]", 1, 11, "reversed");
}

#[test]
fn error_unknown_escape() {
    let e = syntax_error(r#"root ::= "a\qb""#);
    assert_eq!((e.line, e.column, e.width), (1, 12, 2));
    assert!(e.message.contains("unknown escape `\\q`"), "{}", e.message);
}

#[test]
fn error_short_hex_escape() {
    assert_error(r#"root ::= "\x4""#, 1, 11, "expected 2 hex digits after `\\x`");
    assert_error(r#"root ::= "\u12G4""#, 1, 11, "expected 4 hex digits after `\\u`");
    assert_error(r#"root ::= [\U0001F60]"#, 1, 11, "expected 8 hex digits after `\\U`");
}

#[test]
fn error_non_scalar_code_point_in_literal() {
    assert_error(r#"root ::= "\uD83D\uDE00""#, 1, 11, "not a Unicode scalar value");
    assert_error(r#"root ::= "\U00110000""#, 1, 11, "not a Unicode scalar value");
}

#[test]
fn error_unclosed_parenthesis() {
    assert_error("root ::= (\"a\" \"b\"\n", 1, 10, "unclosed `(`");
    assert_error("root ::= (\"a\" \"b\" ]", 1, 19, "expected `)` to close the `(` at line 1, column 10, found `]`");
    assert_error("root ::= (\"a\"\nb ::= \"b\"", 2, 3, "expected `)`");
}

#[test]
fn error_unmatched_parenthesis() {
    assert_error("root ::= \"a\")", 1, 13, "unmatched `)`");
}

#[test]
fn error_repetition_without_item() {
    assert_error("root ::= *", 1, 10, "nothing before it to repeat");
    assert_error("root ::= \"a\" | +", 1, 16, "nothing before it to repeat");
    assert_error("root ::= {2}", 1, 10, "nothing before it to repeat");
}

#[test]
fn error_bad_braces() {
    assert_error(r#"root ::= "a"{,3}"#, 1, 14, "expected an integer after `{` (write `{0,n}`");
    assert_error(r#"root ::= "a"{}"#, 1, 14, "expected an integer");
    assert_error(r#"root ::= "a"{2"#, 1, 15, "expected `,` or `}`");
    assert_error(r#"root ::= "a"{2,3"#, 1, 17, "expected `}`");
    assert_error(r#"root ::= "a"{2;3}"#, 1, 15, "expected `,` or `}`");
}

#[test]
fn error_reversed_repetition_bounds() {
    assert_error(r#"root ::= "a"{5,2}"#, 1, 13, "minimum 5 is larger than its maximum 2");
}

#[test]
fn error_huge_repetition() {
    assert_error(r#"root ::= "a"{100001}"#, 1, 14, "larger than the maximum 100000");
    assert_error(r#"root ::= "a"{1,99999999999999999999999}"#, 1, 16, "larger than the maximum");
    // The largest allowed count stays symbolic.
    assert_eq!(ir(r#"root ::= "a"{0,100000}"#), r#"root ::= "a"{0,100000}"#);
}

#[test]
fn error_token_references() {
    assert_error("root ::= <think> \"a\"", 1, 10, "token references");
    assert_error("root ::= !<[1000]>", 1, 10, "token references");
}

#[test]
fn error_deep_nesting() {
    let deep = format!("root ::= {}\"a\"{}", "(".repeat(500), ")".repeat(500));
    let e = parse(&deep).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Limit { limit: "max_nesting", value: 200, .. }),
        "expected a nesting limit error, got {e}"
    );
    // Within the limit it parses.
    let ok = format!("root ::= {}\"a\"{}", "(".repeat(150), ")".repeat(150));
    assert!(parse(&ok).is_ok());
    // A stricter limit is honoured.
    let limits = Limits { max_nesting: 3, ..Limits::default() };
    assert!(parse_with_limits(r#"root ::= ((("a")))"#, &limits).is_ok());
    assert!(parse_with_limits(r#"root ::= (((("a"))))"#, &limits).is_err());
}

#[test]
fn error_deeply_stacked_operators() {
    let text = format!("root ::= \"a\"{}", "?".repeat(10_000));
    let e = parse(&text).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Limit { limit: "max_nesting", .. }), "{e}");
}

#[test]
fn error_display_shows_the_line_and_markers() {
    let e = parse("root ::= \"a\"\nb ::= [z-a]\n").unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("line 2, column 8"), "{shown}");
    assert!(shown.contains("  | b ::= [z-a]\n  |        ^^^"), "{shown}");
}

#[test]
fn never_panics_on_odd_input() {
    let inputs = [
        "root ::= \"\\",
        "root ::= [\\",
        "root ::= [a-\\",
        "root ::= \"\\x",
        "root ::= \"\\U0001",
        "root ::= [é-",
        "root ::= é",
        "root ::= (",
        "root ::= )",
        "root ::= \"a\"{",
        "root ::= \"a\"{1,",
        "root ::= #",
        "root ::= \u{0}",
        "::=",
        "root",
        "root ::= \"日本\"{",
    ];
    for text in inputs {
        let _ = parse(text);
    }
}
