//! AMC's single-line SQL rule: a small lexer that turns a multi-line query into the one line
//! AMC's `sqlQuery` accepts without changing what it means (quotes and comments are understood,
//! so a `--` joined onto one line cannot swallow the rest of the query).

use crate::ValidationError;

/// Where the SQL scanner is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    Code,
    /// Inside `'…'` (a literal; `''` is an escaped quote).
    Literal,
    /// Inside `"…"` or `` `…` `` (a quoted identifier; the quote doubled escapes it).
    Identifier(char),
    LineComment,
    BlockComment,
}

/// Turns a multi-line query into the single line AMC requires, without changing its meaning.
///
/// Outside quotes, every run of whitespace becomes one space, `--` line comments and `/* */`
/// block comments are removed (each counts as whitespace: joined onto one line, a line comment
/// would swallow the rest of the query), and a trailing `;` is dropped. String literals
/// (`'…'`, `''` escaping a quote) and quoted identifiers (`"…"`, `` `…` ``) are copied as they
/// are. A line break or tab inside quotes cannot be written on one line and is an error naming
/// `sql_query`, as are an unterminated quote or block comment and a query that is empty.
pub fn normalize_sql(sql: &str) -> Result<String, ValidationError> {
    let err = |rule: &str| ValidationError::new("sql_query", rule);
    let mut out = String::with_capacity(sql.len());
    let mut pending_space = false;
    let mut state = Scan::Code;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match state {
            Scan::Code => {
                if c.is_whitespace() {
                    pending_space = true;
                    continue;
                }
                if c == '-' && chars.peek() == Some(&'-') {
                    chars.next();
                    state = Scan::LineComment;
                    pending_space = true;
                    continue;
                }
                if c == '/' && chars.peek() == Some(&'*') {
                    chars.next();
                    state = Scan::BlockComment;
                    pending_space = true;
                    continue;
                }
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                pending_space = false;
                out.push(c);
                state = match c {
                    '\'' => Scan::Literal,
                    '"' | '`' => Scan::Identifier(c),
                    _ => Scan::Code,
                };
            }
            Scan::Literal | Scan::Identifier(_) => {
                let quote = if let Scan::Identifier(q) = state {
                    q
                } else {
                    '\''
                };
                if matches!(c, '\n' | '\r' | '\t') {
                    let what = if state == Scan::Literal {
                        "string literal"
                    } else {
                        "quoted identifier"
                    };
                    return Err(err(&format!(
                        "has a line break or tab inside a {what}, which cannot be sent on the single line AMC requires; \
                         use an escape such as CHR(10) or concatenation instead"
                    )));
                }
                out.push(c);
                if c == quote {
                    if chars.peek() == Some(&quote) {
                        // A doubled quote is an escaped quote: still inside.
                        out.push(quote);
                        chars.next();
                    } else {
                        state = Scan::Code;
                    }
                }
            }
            Scan::LineComment => {
                if c == '\n' || c == '\r' {
                    state = Scan::Code;
                }
            }
            Scan::BlockComment => {
                if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    state = Scan::Code;
                }
            }
        }
    }
    match state {
        Scan::Literal => {
            return Err(err(
                "has an unterminated string literal (a `'` is not closed)",
            ))
        }
        Scan::Identifier(q) => {
            return Err(err(&format!(
                "has an unterminated quoted identifier (a `{q}` is not closed)"
            )))
        }
        Scan::BlockComment => return Err(err("has an unterminated `/*` comment")),
        Scan::Code | Scan::LineComment => {}
    }
    // Every quote is closed, so a `;` at the very end is outside any literal.
    while out.ends_with(';') || out.ends_with(' ') {
        out.pop();
    }
    if out.is_empty() {
        return Err(err("is empty once comments and whitespace are removed"));
    }
    Ok(out)
}

/// The `@name` query-parameter references of a BigQuery (CARTO) query, each once, in order:
/// outside `'…'`/`"…"` strings (a backslash escapes), `` `…` `` identifiers and `--`, `#` and
/// `/* */` comments; `@@name` system variables are not parameters. The same reading as the
/// warehouse's (and the CARTO simulator's), which fails a job naming a parameter it was not
/// given only after the job was created.
pub fn parameter_references(query: &str) -> Vec<String> {
    let chars: Vec<char> = query.chars().collect();
    let mut found: Vec<String> = Vec::new();
    let mut quote: Option<char> = None;
    let mut line_comment = false;
    let mut block_comment = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let mut step = 1;
        if let Some(q) = quote {
            if c == '\\' {
                step = 2;
            } else if c == q {
                quote = None;
            }
        } else if line_comment {
            line_comment = c != '\n';
        } else if block_comment {
            if c == '*' && next == Some('/') {
                block_comment = false;
                step = 2;
            }
        } else {
            match c {
                '\'' | '"' | '`' => quote = Some(c),
                '#' => line_comment = true,
                '-' if next == Some('-') => line_comment = true,
                '/' if next == Some('*') => {
                    block_comment = true;
                    step = 2;
                }
                '@' if next == Some('@') => {
                    // A system variable: its name is not a parameter.
                    step = 2 + chars[i + 2..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                        .count();
                }
                '@' => {
                    let name: String = chars[i + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                        .collect();
                    step = 1 + name.chars().count();
                    if !name.is_empty() && !found.contains(&name) {
                        found.push(name);
                    }
                }
                _ => {}
            }
        }
        i += step;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_references_are_read_outside_quotes_and_comments() {
        let sql = "CALL `p.d.@notparam`(@a, @b_2, @a) -- @c\n/* @d */ SELECT '@e', \"@f\\\"@g\", @@h, #@i\n@J";
        assert_eq!(parameter_references(sql), ["a", "b_2", "J"]);
        assert!(parameter_references("SELECT 1").is_empty());
        assert!(parameter_references("SELECT @").is_empty());
    }

    fn ok(sql: &str) -> String {
        normalize_sql(sql).unwrap_or_else(|e| panic!("{sql:?} should normalise: {e}"))
    }

    fn fails(sql: &str) -> ValidationError {
        let e = normalize_sql(sql).expect_err(sql);
        assert_eq!(e.field, "sql_query");
        e
    }

    #[test]
    fn joins_lines_and_collapses_whitespace() {
        let sql = "SELECT\n  advertiser,\n\tcampaign,\r\n  SUM(total_cost) AS spend\nFROM\n  dsp_impressions\nGROUP BY\n  advertiser,\n  campaign\n";
        assert_eq!(ok(sql), "SELECT advertiser, campaign, SUM(total_cost) AS spend FROM dsp_impressions GROUP BY advertiser, campaign");
        assert_eq!(ok("  select 1  "), "select 1");
    }

    #[test]
    fn keeps_literals_and_identifiers_exactly() {
        assert_eq!(ok("SELECT 'a  b',\n 'x'\n"), "SELECT 'a  b', 'x'");
        assert_eq!(
            ok("SELECT 'it''s  --not a comment'"),
            "SELECT 'it''s  --not a comment'"
        );
        assert_eq!(
            ok("SELECT '/* kept */  ', \"my  col\" FROM t"),
            "SELECT '/* kept */  ', \"my  col\" FROM t"
        );
        assert_eq!(
            ok("SELECT \"a\"\"b  c\" FROM `x  y`"),
            "SELECT \"a\"\"b  c\" FROM `x  y`"
        );
        assert_eq!(ok("SELECT ''''"), "SELECT ''''");
        assert_eq!(ok("SELECT '' ,  ''"), "SELECT '' , ''");
        assert_eq!(ok("SELECT 'a;'"), "SELECT 'a;'");
    }

    #[test]
    fn tab_inside_a_literal_is_refused() {
        // AMC forbids tabs anywhere in sqlQuery; inside a literal there is no equivalent.
        fails("SELECT 'x\ty'");
    }

    #[test]
    fn drops_comments_outside_literals() {
        let sql = "SELECT a, -- the first column\n  b /* second */ FROM t -- trailing\n";
        assert_eq!(ok(sql), "SELECT a, b FROM t");
        assert_eq!(ok("SELECT a/*x*/b"), "SELECT a b");
        assert_eq!(ok("SELECT 1 --;\n"), "SELECT 1");
        assert_eq!(ok("SELECT /* multi\nline\ncomment */ 1"), "SELECT 1");
        assert_eq!(
            ok("SELECT 1 /* '' unbalanced quote in a comment ' */"),
            "SELECT 1"
        );
        assert_eq!(
            ok("SELECT 1 -- it's a comment with a quote\nFROM t"),
            "SELECT 1 FROM t"
        );
        assert_eq!(ok("SELECT 2-1"), "SELECT 2-1");
        assert_eq!(ok("SELECT 4/2"), "SELECT 4/2");
        assert_eq!(ok("-- only a header\nSELECT 1"), "SELECT 1");
    }

    #[test]
    fn a_line_comment_never_swallows_the_rest() {
        let sql = "SELECT a -- note\nFROM t\nWHERE x = 1";
        let one = ok(sql);
        assert_eq!(one, "SELECT a FROM t WHERE x = 1");
        assert!(!one.contains("--"));
    }

    #[test]
    fn strips_a_trailing_semicolon() {
        assert_eq!(ok("SELECT 1;"), "SELECT 1");
        assert_eq!(ok("SELECT 1 ;\n\n"), "SELECT 1");
        assert_eq!(ok("SELECT 1; -- done\n"), "SELECT 1");
        assert_eq!(ok("SELECT ';'"), "SELECT ';'");
    }

    #[test]
    fn refuses_what_cannot_be_one_line() {
        let e = fails("SELECT 'first line\nsecond line' FROM t");
        assert!(e.rule.contains("string literal"), "{e}");
        fails("SELECT 'a\r\nb'");
        let e = fails("SELECT \"col\nname\" FROM t");
        assert!(e.rule.contains("identifier"), "{e}");
        assert!(fails("SELECT 'open").rule.contains("unterminated"));
        assert!(fails("SELECT \"open").rule.contains("unterminated"));
        assert!(fails("SELECT 1 /* open").rule.contains("unterminated"));
        assert!(fails("-- nothing\n /* at all */ ;").rule.contains("empty"));
        fails("");
        fails("SELECT 'it''s");
    }

    #[test]
    fn output_has_no_line_breaks_or_tabs_for_any_valid_input() {
        let inputs = [
            "SELECT\ta\nFROM\tt",
            "SELECT a\r\nFROM t\r\n",
            "SELECT a -- c\r\nFROM t",
            "SELECT\u{a0}a FROM t",
        ];
        for sql in inputs {
            let one = ok(sql);
            assert!(!one.contains(['\n', '\r', '\t']), "{one:?}");
        }
    }
}
