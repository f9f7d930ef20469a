//! Splitting a CLI line into words and an optional `| grep` filter.
//!
//! Words are separated by whitespace. Double quotes group words and honour backslash
//! escapes (`"a \"b\""`); single quotes group words literally; outside quotes a backslash
//! escapes the next character. An unquoted `|` word starts an output filter:
//! `| grep [-i] [-v] PATTERN`, which may be repeated. Help and completion work on a
//! line still being typed, so [`split_partial`] accepts what [`parse_line`] would refuse;
//! [`help_request`] tells a line asking for help (`show ?`) from one to run.

/// One word of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text after removing quotes and escapes.
    pub text: String,
    /// Whether any part of the word was quoted or escaped (a quoted `|` is not a pipe).
    pub quoted: bool,
}

/// An output filter: keep the lines containing `pattern` (or, inverted, the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grep {
    /// The substring looked for.
    pub pattern: String,
    /// Compare without regard to ASCII case (`-i`).
    pub ignore_case: bool,
    /// Keep the lines that do not match (`-v`).
    pub invert: bool,
}

impl Grep {
    /// Whether `line` passes this filter.
    pub fn keeps(&self, line: &str) -> bool {
        let found = if self.ignore_case {
            line.to_ascii_lowercase()
                .contains(&self.pattern.to_ascii_lowercase())
        } else {
            line.contains(&self.pattern)
        };
        found != self.invert
    }
}

/// A complete command line: the command's words and the filters for its output.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandLine {
    /// The command words, unquoted.
    pub words: Vec<String>,
    /// Filters applied, in order, to every output line.
    pub filters: Vec<Grep>,
}

/// Why a line cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenizeError {
    /// A quote was opened and never closed.
    #[error("unterminated quote")]
    UnterminatedQuote,
    /// The line ends with a lone backslash.
    #[error("backslash at the end of the line")]
    TrailingBackslash,
    /// A pipe is followed by something other than `grep`.
    #[error("unknown output filter {0:?}")]
    UnknownFilter(String),
    /// `| grep` without a pattern, or a pipe with nothing after it.
    #[error("output filter without a pattern")]
    MissingPattern,
}

/// A line still being typed: the finished words and the word under the cursor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Partial {
    /// Words followed by whitespace.
    pub words: Vec<Word>,
    /// The unfinished last word; empty when the line ends with whitespace.
    pub current: String,
    /// Whether the line ends inside a quote or after a lone backslash.
    pub open: bool,
}

/// Splits `line` like [`parse_line`] but without refusing an unfinished last word.
pub fn split_partial(line: &str) -> Partial {
    let scan = scan(line);
    Partial {
        words: scan.words,
        current: scan.current.map(|word| word.text).unwrap_or_default(),
        open: scan.open,
    }
}

/// The text before a trailing `?` when `line` asks for help rather than running a command;
/// a `?` inside quotes or after a backslash is part of a value.
pub fn help_request(line: &str) -> Option<&str> {
    let partial = line.trim_end().strip_suffix('?')?;
    (!split_partial(partial).open).then_some(partial)
}

/// The raw result of reading a line: finished words, the word the line ends in (if it
/// does not end in whitespace), and whether a quote or escape is still open.
struct Scan {
    words: Vec<Word>,
    current: Option<Word>,
    open: bool,
    lone_backslash: bool,
}

fn scan(line: &str) -> Scan {
    let mut words = Vec::new();
    let mut text = String::new();
    let mut quoted = false;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut lone_backslash = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(open) if c == open => quote = None,
            Some('"') if c == '\\' => match chars.next() {
                Some(escaped) => text.push(escaped),
                None => lone_backslash = true,
            },
            Some(_) => text.push(c),
            None if c.is_whitespace() => {
                if in_word {
                    words.push(Word {
                        text: std::mem::take(&mut text),
                        quoted,
                    });
                    quoted = false;
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                match c {
                    '"' | '\'' => {
                        quote = Some(c);
                        quoted = true;
                    }
                    '\\' => {
                        quoted = true;
                        match chars.next() {
                            Some(escaped) => text.push(escaped),
                            None => lone_backslash = true,
                        }
                    }
                    _ => text.push(c),
                }
            }
        }
    }
    Scan {
        words,
        current: in_word.then_some(Word { text, quoted }),
        open: quote.is_some() || lone_backslash,
        lone_backslash,
    }
}

/// Splits a complete line into its words and output filters.
pub fn parse_line(line: &str) -> Result<CommandLine, TokenizeError> {
    let scan = scan(line);
    if scan.lone_backslash {
        return Err(TokenizeError::TrailingBackslash);
    }
    if scan.open {
        return Err(TokenizeError::UnterminatedQuote);
    }
    let mut words = scan.words;
    words.extend(scan.current);

    let mut segments = words.split(|word| word.text == "|" && !word.quoted);
    let command = segments
        .next()
        .map(|words| words.iter().map(|word| word.text.clone()).collect())
        .unwrap_or_default();
    let filters = segments.map(parse_grep).collect::<Result<_, _>>()?;
    Ok(CommandLine {
        words: command,
        filters,
    })
}

fn parse_grep(words: &[Word]) -> Result<Grep, TokenizeError> {
    let Some((name, args)) = words.split_first() else {
        return Err(TokenizeError::MissingPattern);
    };
    if name.text != "grep" {
        return Err(TokenizeError::UnknownFilter(name.text.clone()));
    }
    let mut grep = Grep {
        pattern: String::new(),
        ignore_case: false,
        invert: false,
    };
    let mut rest = args;
    while let Some((flag, tail)) = rest.split_first() {
        let is_flag = !flag.quoted
            && flag.text.len() > 1
            && flag.text.starts_with('-')
            && flag.text[1..].chars().all(|c| c == 'i' || c == 'v');
        if !is_flag {
            break;
        }
        grep.ignore_case |= flag.text.contains('i');
        grep.invert |= flag.text.contains('v');
        rest = tail;
    }
    if rest.is_empty() {
        return Err(TokenizeError::MissingPattern);
    }
    grep.pattern = rest
        .iter()
        .map(|word| word.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(grep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        parse_line(line).expect("parses").words
    }

    #[test]
    fn splits_on_whitespace() {
        assert_eq!(words("  set   server\t10.0.0.1 "), ["set", "server", "10.0.0.1"]);
        assert!(words("   ").is_empty());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(words(r#"edit "my ems""#), ["edit", "my ems"]);
        assert_eq!(words("edit 'my ems'"), ["edit", "my ems"]);
        assert_eq!(words(r#"set x "a \"b\" c""#), ["set", "x", r#"a "b" c"#]);
        assert_eq!(words(r"set x 'a\b'"), ["set", "x", r"a\b"]);
        assert_eq!(words(r"set x a\ b"), ["set", "x", "a b"]);
        assert_eq!(words(r#"set x pre"mid dle"post"#), ["set", "x", "premid dlepost"]);
        assert_eq!(words(r#"set server """#), ["set", "server", ""]);
        assert_eq!(words("set server ''"), ["set", "server", ""]);
    }

    #[test]
    fn unfinished_lines_are_refused() {
        assert_eq!(parse_line(r#"edit "ems"#), Err(TokenizeError::UnterminatedQuote));
        assert_eq!(parse_line(r"edit ems\"), Err(TokenizeError::TrailingBackslash));
    }

    #[test]
    fn grep_filters() {
        let line = parse_line("get system status | grep Virtual").expect("parses");
        assert_eq!(line.words, ["get", "system", "status"]);
        assert_eq!(
            line.filters,
            [Grep {
                pattern: "Virtual".into(),
                ignore_case: false,
                invert: false
            }]
        );
        let line = parse_line("show | grep -i -v SERVER | grep -iv port").expect("parses");
        assert_eq!(line.filters.len(), 2);
        assert!(line.filters.iter().all(|g| g.ignore_case && g.invert));
        assert!(line.filters[0].keeps("    edit \"ems1\""));
        assert!(!line.filters[0].keeps("        set server \"x\""));

        let quoted = parse_line(r#"set x "|" grep"#).expect("parses");
        assert_eq!(quoted.words, ["set", "x", "|", "grep"]);
        assert!(quoted.filters.is_empty());

        assert_eq!(
            parse_line("show | less"),
            Err(TokenizeError::UnknownFilter("less".into()))
        );
        assert_eq!(parse_line("show | grep"), Err(TokenizeError::MissingPattern));
        assert_eq!(parse_line("show |"), Err(TokenizeError::MissingPattern));
    }

    #[test]
    fn partial_lines_keep_the_current_word() {
        let partial = split_partial("set serv");
        assert_eq!(partial.words.len(), 1);
        assert_eq!(partial.current, "serv");
        let partial = split_partial("set server ");
        assert_eq!(partial.words.len(), 2);
        assert_eq!(partial.current, "");
        let partial = split_partial(r#"edit "my e"#);
        assert!(partial.open);
        assert_eq!(partial.current, "my e");
    }
}
