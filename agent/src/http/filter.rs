//! `?filter=` expressions (Consul's go-bexpr language) evaluated on the JSON of each result
//! item: `==`, `!=`, `in`, `not in`, `contains`, `not contains`, `matches`,
//! `not matches`, `is empty`, `is not empty`, with `and`, `or`, `not` and parentheses.
//! Selectors are dotted paths (`Service.Tags`, `NodeMeta.env`, `Checks.Status`); a path
//! through a list matches when any element does, as in go-bexpr.

use serde_json::Value;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Match {
        selector: Vec<String>,
        op: Op,
        value: String,
    },
}

/// A matching operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Equal,
    NotEqual,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
    Matches,
    NotMatches,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
    Eq,
    Ne,
}

fn lex(s: &str) -> Result<Vec<(usize, Tok)>, String> {
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push((i, Tok::LParen));
            i += 1;
        } else if c == ')' {
            out.push((i, Tok::RParen));
            i += 1;
        } else if c == '=' && b.get(i + 1) == Some(&'=') {
            out.push((i, Tok::Eq));
            i += 2;
        } else if c == '!' && b.get(i + 1) == Some(&'=') {
            out.push((i, Tok::Ne));
            i += 2;
        } else if c == '"' || c == '`' {
            let start = i;
            i += 1;
            let mut v = String::new();
            loop {
                match b.get(i) {
                    None => return Err(format!("1:{} ({start}): unterminated string", start + 1)),
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some('\\') if c == '"' => {
                        match b.get(i + 1) {
                            Some('n') => v.push('\n'),
                            Some('t') => v.push('\t'),
                            Some(x) => v.push(*x),
                            None => {
                                return Err(format!(
                                    "1:{} ({start}): unterminated string",
                                    start + 1
                                ))
                            }
                        }
                        i += 2;
                    }
                    Some(x) => {
                        v.push(*x);
                        i += 1;
                    }
                }
            }
            out.push((start, Tok::Str(v)));
        } else if c.is_alphanumeric() || "_-./:".contains(c) {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || "_-./:".contains(b[i])) {
                i += 1;
            }
            out.push((start, Tok::Word(b[start..i].iter().collect())));
        } else {
            return Err(format!(
                "1:{} ({i}): no match found, unexpected {c:?}",
                i + 1
            ));
        }
    }
    Ok(out)
}

/// Deepest nesting of parentheses and `not` accepted. Parsing, evaluating and dropping
/// an expression recurse on its depth, and a request handler's stack is small: a hostile
/// `?filter=((((...` must be refused, not overflow the stack and abort the agent.
pub const MAX_NESTING: usize = 32;

/// Most `and`/`or` operators accepted in one expression (each adds a level to the tree).
pub const MAX_OPERATORS: usize = 512;

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    len: usize,
    /// Current nesting of parentheses and `not`.
    depth: usize,
    /// `and`/`or` operators so far.
    ops: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn err(&self, what: &str) -> String {
        let at = self.toks.get(self.pos).map(|(i, _)| *i).unwrap_or(self.len);
        format!("1:{} ({at}): no match found, expected {what}", at + 1)
    }

    fn operator(&mut self) -> Result<(), String> {
        self.ops += 1;
        if self.ops > MAX_OPERATORS {
            return Err(format!(
                "expression has too many operators (more than {MAX_OPERATORS})"
            ));
        }
        self.pos += 1;
        Ok(())
    }

    fn nest(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!(
                "expression nested too deeply (more than {MAX_NESTING} levels)"
            ));
        }
        self.pos += 1;
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.word("or") {
            self.operator()?;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        while self.word("and") {
            self.operator()?;
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.word("not") {
            self.nest()?;
            let e = Expr::Not(Box::new(self.unary()?));
            self.depth -= 1;
            return Ok(e);
        }
        if self.peek() == Some(&Tok::LParen) {
            self.nest()?;
            let e = self.or()?;
            if self.peek() != Some(&Tok::RParen) {
                return Err(self.err("\")\""));
            }
            self.pos += 1;
            self.depth -= 1;
            return Ok(e);
        }
        self.matching()
    }

    fn value(&mut self) -> Result<String, String> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) | Some(Tok::Word(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.err("a value")),
        }
    }

    fn selector(&mut self) -> Result<Vec<String>, String> {
        match self.peek().cloned() {
            Some(Tok::Word(s)) if !s.is_empty() => {
                self.pos += 1;
                Ok(s.split('.').map(str::to_string).collect())
            }
            _ => Err(self.err("a selector")),
        }
    }

    fn matching(&mut self) -> Result<Expr, String> {
        // `"value" [not] in Selector`
        let value_first = matches!(self.peek(), Some(Tok::Str(_)))
            || matches!(self.toks.get(self.pos + 1).map(|(_, t)| t), Some(Tok::Word(w)) if w == "in")
            || (matches!(self.toks.get(self.pos + 1).map(|(_, t)| t), Some(Tok::Word(w)) if w == "not")
                && matches!(self.toks.get(self.pos + 2).map(|(_, t)| t), Some(Tok::Word(w)) if w == "in"));
        if value_first {
            let value = self.value()?;
            let negate = self.word("not");
            if negate {
                self.pos += 1;
            }
            if !self.word("in") {
                return Err(self.err("\"in\""));
            }
            self.pos += 1;
            let selector = self.selector()?;
            return Ok(Expr::Match {
                selector,
                op: if negate { Op::NotIn } else { Op::In },
                value,
            });
        }
        let selector = self.selector()?;
        let op = match self.peek().cloned() {
            Some(Tok::Eq) => {
                self.pos += 1;
                Op::Equal
            }
            Some(Tok::Ne) => {
                self.pos += 1;
                Op::NotEqual
            }
            Some(Tok::Word(w)) if w == "is" => {
                self.pos += 1;
                let negate = self.word("not");
                if negate {
                    self.pos += 1;
                }
                if !self.word("empty") {
                    return Err(self.err("\"empty\""));
                }
                self.pos += 1;
                return Ok(Expr::Match {
                    selector,
                    op: if negate { Op::IsNotEmpty } else { Op::IsEmpty },
                    value: String::new(),
                });
            }
            Some(Tok::Word(w)) if w == "contains" => {
                self.pos += 1;
                Op::In
            }
            Some(Tok::Word(w)) if w == "matches" => {
                self.pos += 1;
                Op::Matches
            }
            Some(Tok::Word(w)) if w == "not" => {
                self.pos += 1;
                match self.peek().cloned() {
                    Some(Tok::Word(x)) if x == "contains" => {
                        self.pos += 1;
                        Op::NotIn
                    }
                    Some(Tok::Word(x)) if x == "matches" => {
                        self.pos += 1;
                        Op::NotMatches
                    }
                    _ => return Err(self.err("\"contains\" or \"matches\"")),
                }
            }
            _ => return Err(self.err("an operator")),
        };
        let value = self.value()?;
        if matches!(op, Op::Matches | Op::NotMatches) {
            regex_lite::Regex::new(&value)
                .map_err(|e| format!("Invalid regular expression {value:?}: {e}"))?;
        }
        Ok(Expr::Match {
            selector,
            op,
            value,
        })
    }
}

/// Parse an expression.
pub fn parse(s: &str) -> Result<Expr, String> {
    let toks = lex(s)?;
    let mut p = Parser {
        toks,
        pos: 0,
        len: s.len(),
        depth: 0,
        ops: 0,
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(p.err("end of input"));
    }
    Ok(e)
}

/// Values reached by a selector (a path through lists fans out).
fn select<'a>(v: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = path.split_first() else {
        out.push(v);
        return;
    };
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(first.as_str()) {
                select(x, rest, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                select(x, path, out);
            }
        }
        _ => {}
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

fn contains(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s.contains(needle),
        Value::Array(a) => a.iter().any(|x| text(x).as_deref() == Some(needle)),
        Value::Object(m) => m.contains_key(needle),
        _ => false,
    }
}

/// Evaluate on one item.
pub fn eval(e: &Expr, item: &Value) -> bool {
    match e {
        Expr::And(a, b) => eval(a, item) && eval(b, item),
        Expr::Or(a, b) => eval(a, item) || eval(b, item),
        Expr::Not(a) => !eval(a, item),
        Expr::Match {
            selector,
            op,
            value,
        } => {
            let mut vals = Vec::new();
            select(item, selector, &mut vals);
            match op {
                Op::Equal => vals
                    .iter()
                    .any(|v| text(v).as_deref() == Some(value.as_str())),
                Op::NotEqual => !vals
                    .iter()
                    .any(|v| text(v).as_deref() == Some(value.as_str())),
                Op::In => vals.iter().any(|v| contains(v, value)),
                Op::NotIn => !vals.iter().any(|v| contains(v, value)),
                Op::IsEmpty => vals.is_empty() || vals.iter().all(|v| empty(v)),
                Op::IsNotEmpty => !(vals.is_empty() || vals.iter().all(|v| empty(v))),
                Op::Matches | Op::NotMatches => {
                    let re = regex_lite::Regex::new(value).ok();
                    let hit = re
                        .map(|r| {
                            vals.iter()
                                .any(|v| text(v).map(|t| r.is_match(&t)).unwrap_or(false))
                        })
                        .unwrap_or(false);
                    if *op == Op::Matches {
                        hit
                    } else {
                        !hit
                    }
                }
            }
        }
    }
}

/// Keep the items of a list (or the values of a map) that match.
pub fn apply(e: &Expr, v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().filter(|x| eval(e, x)).collect()),
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, x)| eval(e, x)).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile filters: deep nesting and long operator chains are refused or handled
    /// within a tokio worker's 2 MiB stack (an overflow would abort the agent).
    #[test]
    fn deep_and_long_expressions_do_not_overflow_the_stack() {
        let t = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(|| {
                let item = serde_json::json!({"A": "1"});
                let parens = format!("{}A == 1{}", "(".repeat(100_000), ")".repeat(100_000));
                let nots = format!("{}A == 1", "not ".repeat(100_000));
                let chain = vec!["A == 1"; 50_000].join(" and ");
                let ors = vec!["A == 2"; 50_000].join(" or ");
                let mixed = vec!["(A == 1 or not (A == 2))"; 20_000].join(" and ");
                for f in [parens, nots, chain, ors, mixed] {
                    if let Ok(e) = parse(&f) {
                        let _ = eval(&e, &item);
                        let _ = apply(&e, serde_json::json!([item.clone()]));
                    }
                }
                let e = parse(&format!("{}A == 1{}", "(".repeat(33), ")".repeat(33))).unwrap_err();
                assert!(e.contains("nested too deeply"), "{e}");
                let e = parse(&vec!["A == 1"; 600].join(" or ")).unwrap_err();
                assert!(e.contains("too many operators"), "{e}");
                let ok = vec!["A == 1"; 100].join(" and ");
                assert!(eval(&parse(&ok).unwrap(), &item));
                let nested = format!("{}A == 1{}", "(".repeat(30), ")".repeat(30));
                assert!(eval(&parse(&nested).unwrap(), &item));
            })
            .unwrap();
        t.join().expect("no stack overflow");
    }
    use serde_json::json;

    fn m(expr: &str, v: &Value) -> bool {
        eval(&parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}")), v)
    }

    #[test]
    fn operators() {
        let v = json!({"Service": {"Service": "web", "Tags": ["rails", "v2"], "Port": 80, "Meta": {"env": "prod"}},
                       "Checks": [{"Status": "passing"}, {"Status": "warning"}], "Address": ""});
        assert!(m("Service.Service == web", &v));
        assert!(m(r#"Service.Service == "web""#, &v));
        assert!(m("Service.Port == 80", &v));
        assert!(m(r#"Service.Service != "db""#, &v));
        assert!(m(r#""rails" in Service.Tags"#, &v));
        assert!(m(r#""java" not in Service.Tags"#, &v));
        assert!(m("Service.Tags contains v2", &v));
        assert!(m("Service.Tags not contains v3", &v));
        assert!(m("Service.Meta.env == prod", &v));
        assert!(m("env in Service.Meta", &v));
        assert!(m("Checks.Status == warning", &v), "any element of a list");
        assert!(!m("Checks.Status == critical", &v));
        assert!(m("Address is empty", &v));
        assert!(m("Missing is empty", &v));
        assert!(m("Service.Tags is not empty", &v));
        assert!(m(r#"Service.Service matches "^w.b$""#, &v));
        assert!(m(r#"Service.Service not matches "^db""#, &v));
        assert!(m(
            r#"Service.Service == web and (Service.Port == 81 or "rails" in Service.Tags)"#,
            &v
        ));
        assert!(m("not Service.Service == db", &v));
        assert!(!m(
            "Service.Service == web and not Service.Tags contains rails",
            &v
        ));
        assert!(m("Service.Service == `web`", &v));
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            "Service ==",
            "== web",
            "Service.Service = web",
            "(a == b",
            "a == b c",
            r#"a matches "(""#,
            r#""x" on y"#,
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn apply_to_lists_and_maps() {
        let e = parse("Port == 80").unwrap();
        assert_eq!(
            apply(&e, json!([{"Port": 80}, {"Port": 81}])),
            json!([{"Port": 80}])
        );
        assert_eq!(
            apply(&e, json!({"a": {"Port": 80}, "b": {"Port": 1}})),
            json!({"a": {"Port": 80}})
        );
    }
}
