//! Splitting a SQL script into statements.

/// Splits `script` at the semicolons that end statements.
///
/// Semicolons inside string literals (`'it''s; fine'`), quoted identifiers (`"a;b"`), line
/// comments (`-- ;`) and block comments (`/* ; */`) do not split. Statements are returned
/// trimmed, without their semicolon; empty statements (and comment-only ones) are dropped.
/// An unterminated literal or comment runs to the end of the script, so the database
/// reports the error on that statement.
pub fn split_statements(script: &str) -> Vec<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Code,
        Single,
        Double,
        LineComment,
        BlockComment,
    }
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut has_code = false;
    let mut state = State::Code;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match state {
            State::Code => match c {
                ';' => {
                    if has_code {
                        statements.push(current.trim().to_owned());
                    }
                    current.clear();
                    has_code = false;
                    continue;
                }
                '\'' => state = State::Single,
                '"' => state = State::Double,
                '-' if chars.peek() == Some(&'-') => state = State::LineComment,
                '/' if chars.peek() == Some(&'*') => {
                    current.push(c);
                    current.push(chars.next().unwrap_or('*'));
                    state = State::BlockComment;
                    continue;
                }
                _ => {}
            },
            // A doubled quote inside a literal is an escaped quote: the state flips out and
            // straight back in, which is the same as staying.
            State::Single if c == '\'' => state = State::Code,
            State::Double if c == '"' => state = State::Code,
            State::LineComment if c == '\n' => state = State::Code,
            State::BlockComment if c == '*' && chars.peek() == Some(&'/') => {
                current.push(c);
                current.push(chars.next().unwrap_or('/'));
                state = State::Code;
                continue;
            }
            _ => {}
        }
        if !matches!(state, State::LineComment | State::BlockComment) && !c.is_whitespace() {
            has_code = true;
        }
        current.push(c);
    }
    if has_code && !current.trim().is_empty() {
        statements.push(current.trim().to_owned());
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::split_statements;

    #[test]
    fn splits_on_semicolons_outside_literals_and_comments() {
        let script =
            "SELECT 'a;b', \"c;d\" FROM t; -- x; y\nSELECT 2 /* ; */;\n\n;  ;SELECT 'it''s; ok'";
        assert_eq!(
            split_statements(script),
            vec![
                "SELECT 'a;b', \"c;d\" FROM t",
                "-- x; y\nSELECT 2 /* ; */",
                "SELECT 'it''s; ok'"
            ]
        );
    }

    #[test]
    fn comment_only_and_empty_scripts_give_nothing() {
        assert!(split_statements("").is_empty());
        assert!(split_statements("  ;\n -- just a comment\n").is_empty());
        assert!(split_statements("/* only ; a comment */").is_empty());
    }

    #[test]
    fn unterminated_literal_runs_to_the_end() {
        assert_eq!(
            split_statements("SELECT 1; SELECT 'oops; 2"),
            vec!["SELECT 1", "SELECT 'oops; 2"]
        );
    }

    #[test]
    fn subtraction_is_code_not_a_comment() {
        assert_eq!(
            split_statements("SELECT 3 - 1; SELECT -1"),
            vec!["SELECT 3 - 1", "SELECT -1"]
        );
    }
}
