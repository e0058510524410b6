//! HCL parsing that hostile text cannot use to overflow the stack or to spin. hcl-rs parses
//! (and drops) expressions recursively, about one stack frame group per nesting level or
//! operator, and a few hundred levels are enough to overflow a tokio worker's 2 MiB stack,
//! which aborts the whole agent. Its parser also backtracks: object keys may be any
//! expression, so each level of nested objects can double the work (a 415-byte ACL rule
//! text found by the fuzzer took over 10 s). So the text is first measured cheaply,
//! nesting and operator counts bounded, and then parsed on a helper thread with a large
//! stack.

use serde::de::DeserializeOwned;

/// Deepest bracket nesting (`(`, `[`, `{`, including `${` interpolations) accepted.
/// Consul configurations and ACL rules nest a handful of levels; the backtracking
/// doubles per object level, so this stays low.
pub const MAX_NESTING: usize = 24;

/// Most operator characters (`! ? + * / % < > & | ^` and a `-` that is not inside a
/// word) accepted in one text.
pub const MAX_OPERATORS: usize = 1024;

/// Stack of the parsing thread: enough for the bounds above even in a debug build.
const PARSE_STACK: usize = 64 * 1024 * 1024;

/// Why a text was not parsed.
#[derive(Debug, thiserror::Error)]
pub enum HclError {
    /// Not valid HCL (or not the expected shape).
    #[error(transparent)]
    Parse(#[from] hcl::Error),
    /// Over the nesting or operator bounds.
    #[error("{0}")]
    TooComplex(String),
}

fn word_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '/')
}

/// Check the bounds without parsing.
pub fn check(text: &str) -> Result<(), HclError> {
    let mut depth = 0usize;
    let mut ops = 0usize;
    let mut prev: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(HclError::TooComplex(format!(
                        "nested too deeply (more than {MAX_NESTING} levels)"
                    )));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '!' | '?' | '+' | '*' | '/' | '%' | '<' | '>' | '&' | '|' | '^' => ops += 1,
            '-' if !(word_char(prev) && word_char(chars.peek().copied())) => ops += 1,
            _ => {}
        }
        if ops > MAX_OPERATORS {
            return Err(HclError::TooComplex(format!(
                "too many operators (more than {MAX_OPERATORS})"
            )));
        }
        prev = Some(c);
    }
    Ok(())
}

/// `hcl::from_str` within the bounds, on a thread with a large stack.
pub fn from_str<T: DeserializeOwned + Send>(text: &str) -> Result<T, HclError> {
    check(text)?;
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("hcl-parse".into())
            .stack_size(PARSE_STACK)
            .spawn_scoped(s, || hcl::from_str::<T>(text))
            .map_err(|e| HclError::TooComplex(format!("starting the parser: {e}")))?
            .join()
            .map_err(|_| HclError::TooComplex("the parser failed".into()))?
            .map_err(HclError::Parse)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Run on a tokio worker's stack size: hostile shapes are refused, not overflowed.
    #[test]
    fn hostile_shapes_on_a_small_stack() {
        let t = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(|| {
                let n = 20_000;
                let hostile = [
                    format!("x = {}1{}", "[".repeat(n), "]".repeat(n)),
                    format!("x = {}1{}", "(".repeat(n), ")".repeat(n)),
                    format!("x = {}1", "!".repeat(n)),
                    format!("x = {}1", "- ".repeat(n)),
                    format!("x = {}", vec!["1"; n].join(" + ")),
                    format!("x = {}", vec!["a ? 1 :"; n].join(" ") + " 2"),
                    format!("x = \"{}a{}\"", "${\"".repeat(n), "\"}".repeat(n)),
                    "key \"a\" { ".repeat(n),
                    format!("x = f{}", "(f".repeat(n)),
                ];
                for h in &hostile {
                    assert!(matches!(from_str::<Value>(h), Err(HclError::TooComplex(_))));
                }
                // Just inside the bounds: parsed (or refused as HCL) without overflowing.
                let inside = [
                    format!("x = {}1{}", "[".repeat(23), "]".repeat(23)),
                    format!("x = {}", vec!["1"; 1000].join(" + ")),
                    format!("x = {}1", "!".repeat(1000)),
                    format!("x = {}", vec!["a ? 1 :"; 500].join(" ") + " 2"),
                ];
                for h in &inside {
                    let _ = from_str::<Value>(h);
                }
                let v: Value =
                    from_str("key_prefix \"web-api/\" {\n  policy = \"read\"\n}\nx = -1\n")
                        .unwrap();
                assert_eq!(v["key_prefix"]["web-api/"]["policy"], "read");
            })
            .unwrap();
        t.join().expect("no stack overflow");
    }

    /// Nested objects make hcl-rs backtrack, doubling per level: within the nesting
    /// bound the worst known shape stays fast, past it the text is refused unparsed.
    #[test]
    fn backtracking_is_bounded() {
        for k in [8, 12] {
            let text = format!("s={}", "[{t=1.1.1".repeat(k));
            let started = std::time::Instant::now();
            let r = from_str::<Value>(&text);
            assert!(r.is_err());
            assert!(
                started.elapsed() < std::time::Duration::from_secs(3),
                "{k} levels took {:?}",
                started.elapsed()
            );
        }
        let text = format!("s={}", "[{t=1.1.1".repeat(40));
        assert!(matches!(
            from_str::<Value>(&text),
            Err(HclError::TooComplex(_))
        ));
    }

    #[test]
    fn names_with_dashes_are_not_operators() {
        let text = "service \"a-b-c\" { policy = \"read\" }\n".repeat(2000);
        assert!(check(&text).is_ok());
        assert!(check(&"x = - 1\n".repeat(2000)).is_err());
    }
}
