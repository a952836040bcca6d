//! A stable text form of the IR, for debugging and snapshot tests.

use std::fmt::{self, Write};

use super::{Expr, Grammar, LexemeSpec};

impl fmt::Display for Grammar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "start: {}", self.rules[self.start.0 as usize].name)?;
        for r in &self.rules {
            let mut s = String::new();
            write_expr(self, &r.body, &mut s)?;
            writeln!(f, "{} ::= {}", r.name, s)?;
        }
        for l in &self.lexemes {
            let mut s = String::new();
            write_spec(&l.spec, &mut s)?;
            writeln!(f, "{} := {}", l.name, s)?;
        }
        Ok(())
    }
}

fn write_expr(g: &Grammar, e: &Expr, out: &mut String) -> fmt::Result {
    match e {
        Expr::Empty => out.push_str("\"\""),
        Expr::Nothing => out.push_str("<nothing>"),
        Expr::Literal(s) => write!(out, "{s:?}")?,
        Expr::Class { ranges, negated } => {
            out.push('[');
            if *negated {
                out.push('^');
            }
            for &(a, b) in ranges {
                if a == b {
                    write!(out, "{}", a.escape_debug())?;
                } else {
                    write!(out, "{}-{}", a.escape_debug(), b.escape_debug())?;
                }
            }
            out.push(']');
        }
        Expr::Lexeme(id) => write!(out, "{}", g.lexemes[id.0 as usize].name)?,
        Expr::Ref(id) => write!(out, "{}", g.rules[id.0 as usize].name)?,
        Expr::Seq(v) => {
            out.push('(');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_expr(g, x, out)?;
            }
            out.push(')');
        }
        Expr::Alt(v) => {
            out.push('(');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    out.push_str(" | ");
                }
                write_expr(g, x, out)?;
            }
            out.push(')');
        }
        Expr::Repeat { expr, min, max } => {
            write_expr(g, expr, out)?;
            match max {
                Some(m) => write!(out, "{{{min},{m}}}")?,
                None => write!(out, "{{{min},}}")?,
            }
        }
    }
    Ok(())
}

fn write_spec(s: &LexemeSpec, out: &mut String) -> fmt::Result {
    let list = |v: &[LexemeSpec], sep: &str, out: &mut String| -> fmt::Result {
        out.push('(');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            write_spec(x, out)?;
        }
        out.push(')');
        Ok(())
    };
    match s {
        LexemeSpec::Regex(r) => write!(out, "/{r}/"),
        LexemeSpec::Literal(l) => write!(out, "{l:?}"),
        LexemeSpec::Concat(v) => list(v, " ", out),
        LexemeSpec::Or(v) => list(v, " | ", out),
        LexemeSpec::And(v) => list(v, " & ", out),
        LexemeSpec::Not(x) => {
            out.push('~');
            write_spec(x, out)
        }
    }
}
