//! Building a [`Grammar`] rule by rule.

use std::collections::HashMap;

use super::{Expr, Grammar, LexemeDef, LexemeId, LexemeSpec, RuleDef, RuleId};
use crate::error::{Error, ErrorKind};

/// Builds a [`Grammar`].
///
/// Rules can be declared before they are defined (for forward references and
/// recursion): [`GrammarBuilder::declare`] returns the id, and
/// [`GrammarBuilder::define`] sets the body later. [`GrammarBuilder::finish`]
/// fails if a declared rule was never defined.
///
/// ```
/// use formwork_grammar::ir::{Expr, GrammarBuilder};
/// let mut b = GrammarBuilder::new();
/// let list = b.declare("list");
/// let item = b.lexeme("item", formwork_grammar::ir::LexemeSpec::Regex("[a-z]+".into()));
/// b.define(list, Expr::Seq(vec![
///     Expr::Literal("[".into()),
///     Expr::opt(Expr::Seq(vec![item.clone(), Expr::star(Expr::Seq(vec![Expr::Literal(",".into()), item]))])),
///     Expr::Literal("]".into()),
/// ])).unwrap();
/// let grammar = b.finish(list).unwrap();
/// assert_eq!(grammar.rules().len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct GrammarBuilder {
    rules: Vec<RuleDef>,
    defined: Vec<bool>,
    by_name: HashMap<String, RuleId>,
    lexemes: Vec<LexemeDef>,
    lexeme_ids: HashMap<LexemeSpec, LexemeId>,
}

impl GrammarBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a rule (or returns the existing one with that name).
    pub fn declare(&mut self, name: &str) -> RuleId {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = RuleId(self.rules.len() as u32);
        self.rules.push(RuleDef { name: name.to_string(), body: Expr::Nothing });
        self.defined.push(false);
        self.by_name.insert(name.to_string(), id);
        id
    }

    /// Declares a rule with a fresh name derived from `hint` (never clashes
    /// with user rule names).
    pub fn fresh(&mut self, hint: &str) -> RuleId {
        let mut n = self.rules.len();
        loop {
            let name = format!("{hint}#{n}");
            if !self.by_name.contains_key(&name) {
                return self.declare(&name);
            }
            n += 1;
        }
    }

    /// The rule with this name, if declared.
    pub fn get(&self, name: &str) -> Option<RuleId> {
        self.by_name.get(name).copied()
    }

    /// Whether the rule has a body.
    pub fn is_defined(&self, id: RuleId) -> bool {
        self.defined[id.0 as usize]
    }

    /// Sets the body of a declared rule. Defining a rule twice is an error.
    pub fn define(&mut self, id: RuleId, body: Expr) -> Result<(), Error> {
        let i = id.0 as usize;
        if self.defined[i] {
            return Err(Error::new(ErrorKind::Grammar(format!("rule `{}` is defined twice", self.rules[i].name))));
        }
        self.rules[i].body = body;
        self.defined[i] = true;
        Ok(())
    }

    /// Adds an alternative to a rule's body (defining it if it has none yet).
    /// GBNF and Lark allow a rule to be given in several pieces this way.
    pub fn add_alternative(&mut self, id: RuleId, alt: Expr) {
        let i = id.0 as usize;
        if !self.defined[i] {
            self.rules[i].body = alt;
            self.defined[i] = true;
            return;
        }
        let old = std::mem::replace(&mut self.rules[i].body, Expr::Nothing);
        self.rules[i].body = match old {
            Expr::Alt(mut v) => {
                v.push(alt);
                Expr::Alt(v)
            }
            other => Expr::Alt(vec![other, alt]),
        };
    }

    /// Declares a lexeme and returns an expression referring to it. Equal
    /// specs share one lexeme.
    pub fn lexeme(&mut self, name: &str, spec: LexemeSpec) -> Expr {
        Expr::Lexeme(self.lexeme_id(name, spec))
    }

    /// Like [`GrammarBuilder::lexeme`], returning the id.
    pub fn lexeme_id(&mut self, name: &str, spec: LexemeSpec) -> LexemeId {
        if let Some(&id) = self.lexeme_ids.get(&spec) {
            return id;
        }
        let id = LexemeId(self.lexemes.len() as u32);
        self.lexemes.push(LexemeDef { name: name.to_string(), spec: spec.clone() });
        self.lexeme_ids.insert(spec, id);
        id
    }

    /// Number of rules declared so far.
    pub fn num_rules(&self) -> usize {
        self.rules.len()
    }

    /// Finishes the grammar with `start` as the start rule.
    pub fn finish(self, start: RuleId) -> Result<Grammar, Error> {
        if let Some(i) = self.defined.iter().position(|d| !d) {
            return Err(Error::new(ErrorKind::Grammar(format!(
                "rule `{}` is used but never defined",
                self.rules[i].name
            ))));
        }
        Ok(Grammar { rules: self.rules, lexemes: self.lexemes, start })
    }
}
