//! The simplest front-ends: a bare regex and a list of choices.

use crate::error::{Error, SyntaxError};
use crate::ir::{Grammar, GrammarBuilder, LexemeSpec};

/// Checks a regex's syntax, reporting errors with their position.
pub(crate) fn check_regex(pattern: &str) -> Result<(), Error> {
    let ast = regex_syntax::ast::parse::ParserBuilder::new().nest_limit(200).build().parse(pattern).map_err(|e| {
        Error::syntax(SyntaxError::at(
            "regex",
            pattern,
            e.span().start.offset,
            e.span().end.offset,
            e.kind().to_string(),
        ))
    })?;
    regex_syntax::hir::translate::TranslatorBuilder::new().utf8(true).build().translate(pattern, &ast).map_err(
        |e| {
            Error::syntax(SyntaxError::at(
                "regex",
                pattern,
                e.span().start.offset,
                e.span().end.offset,
                e.kind().to_string(),
            ))
        },
    )?;
    Ok(())
}

/// A grammar whose sentences are the strings `pattern` matches in full
/// (regex-syntax syntax, as in the `regex` crate; matched against the whole
/// output, so `^` and `$` are not needed).
///
/// ```
/// let g = formwork_grammar::regex("(yes|no)")?;
/// assert_eq!(g.lexemes().len(), 1);
/// assert!(formwork_grammar::regex("(unclosed").is_err());
/// # Ok::<(), formwork_grammar::Error>(())
/// ```
pub fn regex(pattern: &str) -> Result<Grammar, Error> {
    check_regex(pattern)?;
    let mut b = GrammarBuilder::new();
    let root = b.declare("root");
    let lx = b.lexeme("regex", LexemeSpec::Regex(pattern.to_string()));
    b.define(root, lx)?;
    b.finish(root)
}

/// A grammar whose sentences are exactly the given strings.
///
/// ```
/// let g = formwork_grammar::choices(&["incident", "billing", "inquiry"])?;
/// assert_eq!(g.rules().len(), 1);
/// assert!(formwork_grammar::choices::<&str>(&[]).is_err());
/// # Ok::<(), formwork_grammar::Error>(())
/// ```
pub fn choices<S: AsRef<str>>(options: &[S]) -> Result<Grammar, Error> {
    if options.is_empty() {
        return Err(Error::grammar("a list of choices needs at least one choice"));
    }
    let mut b = GrammarBuilder::new();
    let root = b.declare("root");
    let spec = LexemeSpec::Or(options.iter().map(|s| LexemeSpec::Literal(s.as_ref().to_string())).collect());
    let lx = b.lexeme("choice", spec);
    // An empty choice makes the whole lexeme nullable; the compiler handles that.
    b.define(root, lx)?;
    b.finish(root)
}
