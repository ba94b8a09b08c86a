//! Kafka's JAAS configuration, the part a broker reads: login module entries
//! (`org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="secret";`)
//! as given inline in `sasl.jaas.config` properties, and sections of a JAAS file
//! (`KafkaServer { ... };`) as named by `-Djava.security.auth.login.config`. Only the
//! options matter to Sluice (PLAIN's `user_<name>`, OAUTHBEARER's `unsecuredValidator*`);
//! the module class picks the mechanism the entry configures.
//!
//! Not here: what the options mean (`plain.rs`, `oauthbearer.rs`).

use std::collections::BTreeMap;

/// One login module entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The module class (`org.apache.kafka.common.security.plain.PlainLoginModule`).
    pub module: String,
    /// `required`, `requisite`, `sufficient` or `optional` (unused by Sluice).
    pub flag: String,
    /// `key=value` options, values unquoted.
    pub options: BTreeMap<String, String>,
}

impl Entry {
    /// Whether the module class ends with `simple` (`PlainLoginModule`, ...).
    pub fn is(&self, simple: &str) -> bool {
        self.module.rsplit('.').next() == Some(simple)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Punct(char),
}

impl std::fmt::Display for Token {
    /// For error messages. A quoted string is named, never shown: in a JAAS entry it is
    /// usually a password, and `sasl.jaas.config` is a secret Kafka never prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Word(w) => write!(f, "'{w}'"),
            Token::Quoted(_) => f.write_str("a quoted value"),
            Token::Punct(c) => write!(f, "'{c}'"),
        }
    }
}

/// Split JAAS text into words, quoted strings and `{ } ; =`, dropping `//` and `/* */`
/// comments as Java's `ConfigFile` parser does.
fn tokens(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                let mut closed = false;
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        closed = true;
                        break;
                    }
                    prev = c;
                }
                if !closed {
                    return Err("unterminated /* comment".into());
                }
            }
            '{' | '}' | ';' | '=' => out.push(Token::Punct(c)),
            '"' | '\'' => {
                let quote = c;
                let mut v = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some(e) => v.push(e),
                            None => break,
                        },
                        c if c == quote => {
                            closed = true;
                            break;
                        }
                        c => v.push(c),
                    }
                }
                if !closed {
                    return Err("unterminated quoted value".into());
                }
                out.push(Token::Quoted(v));
            }
            c => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '=' | '"' | '\'') {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push(Token::Word(w));
            }
        }
    }
    Ok(out)
}

/// Read entries from `toks` starting at `*i` until `}` (in a file section) or the end.
fn entries_from(toks: &[Token], i: &mut usize, in_section: bool) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    loop {
        match toks.get(*i) {
            None if in_section => return Err("section not closed with '}'".into()),
            None => return Ok(entries),
            Some(Token::Punct('}')) if in_section => {
                *i += 1;
                return Ok(entries);
            }
            Some(Token::Word(module)) => {
                let mut e = Entry {
                    module: module.clone(),
                    ..Entry::default()
                };
                *i += 1;
                match toks.get(*i) {
                    Some(Token::Word(flag)) => {
                        e.flag = flag.clone();
                        *i += 1;
                    }
                    _ => return Err(format!("login module {module} has no control flag")),
                }
                loop {
                    match toks.get(*i) {
                        Some(Token::Punct(';')) => {
                            *i += 1;
                            break;
                        }
                        Some(Token::Word(k)) => {
                            let value = match (toks.get(*i + 1), toks.get(*i + 2)) {
                                (Some(Token::Punct('=')), Some(Token::Word(v)))
                                | (Some(Token::Punct('=')), Some(Token::Quoted(v))) => v.clone(),
                                _ => return Err(format!("option {k} of {module} has no value")),
                            };
                            e.options.insert(k.clone(), value);
                            *i += 3;
                        }
                        Some(t) => return Err(format!("unexpected {t} in options of {module}")),
                        None => return Err(format!("login module {module} not ended with ';'")),
                    }
                }
                entries.push(e);
            }
            Some(t) => return Err(format!("expected a login module class, found {t}")),
        }
    }
}

/// Parse an inline `sasl.jaas.config` value: one or more entries, each ended by `;`.
pub fn parse_entries(s: &str) -> Result<Vec<Entry>, String> {
    let toks = tokens(s)?;
    let mut i = 0;
    let entries = entries_from(&toks, &mut i, false)?;
    if entries.is_empty() {
        return Err("no login module entry".into());
    }
    Ok(entries)
}

/// Parse a JAAS file: `Name { entries };` sections, by name.
pub fn parse_file(s: &str) -> Result<BTreeMap<String, Vec<Entry>>, String> {
    let toks = tokens(s)?;
    let mut sections = BTreeMap::new();
    let mut i = 0;
    while let Some(t) = toks.get(i) {
        let Token::Word(name) = t else {
            return Err(format!("expected a section name, found {t}"));
        };
        if toks.get(i + 1) != Some(&Token::Punct('{')) {
            return Err(format!("section {name} does not open with '{{'"));
        }
        i += 2;
        let entries = entries_from(&toks, &mut i, true)?;
        // The `;` after `}` is required by Java's parser; accept its absence too.
        if toks.get(i) == Some(&Token::Punct(';')) {
            i += 1;
        }
        sections.insert(name.clone(), entries);
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_plain_config() {
        let e = parse_entries(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#,
        )
        .unwrap();
        assert_eq!(e.len(), 1);
        assert!(e[0].is("PlainLoginModule"));
        assert_eq!(e[0].flag, "required");
        assert_eq!(e[0].options["user_alice"], "alice-secret");
        assert_eq!(e[0].options["username"], "admin");
    }

    #[test]
    fn file_sections_and_comments() {
        let f = parse_file(
            r#"
            // the broker
            KafkaServer {
                org.apache.kafka.common.security.plain.PlainLoginModule required
                username="admin" /* inline */ password="a\"b"
                user_admin="x";
                org.apache.kafka.common.security.scram.ScramLoginModule required;
            };
            Client { x.Y optional k=v; };
            "#,
        )
        .unwrap();
        let s = &f["KafkaServer"];
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].options["password"], "a\"b");
        assert!(s[1].is("ScramLoginModule"));
        assert_eq!(f["Client"][0].options["k"], "v");
    }

    #[test]
    fn broken_input_is_an_error() {
        assert!(parse_entries("a.B required x=\"y\"").is_err());
        assert!(parse_entries("a.B;").is_err());
        assert!(parse_file("KafkaServer { a.B required;").is_err());
        assert!(parse_entries("").is_err());
    }

    #[test]
    fn errors_never_show_a_quoted_value() {
        for text in [
            r#"a.PlainLoginModule required user_alice="s3cret" "hunter2";"#,
            r#""hunter2" required;"#,
        ] {
            let e = parse_entries(text).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
        let e = parse_file(r#""hunter2" { a.B required; };"#).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
