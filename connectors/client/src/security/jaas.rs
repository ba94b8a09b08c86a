//! Kafka's `sasl.jaas.config` value: one JAAS login-module entry,
//! `<LoginModuleClass> <flag> key="value" key2=value2;`. Kafka reads it with Java's
//! `StreamTokenizer` (see `JaasConfig` in Kafka's clients): words, double-quoted strings with
//! backslash escapes, `=` and a closing `;`. A client's value must hold exactly one entry.
//! Mapping the options to credentials is `security/mod.rs`'s job.

use std::collections::BTreeMap;
use std::fmt;

/// JAAS control flags, as Java's `LoginModuleControlFlag` names them.
const FLAGS: &[&str] = &["required", "requisite", "sufficient", "optional"];

/// One parsed login-module entry. `Debug` never shows option values (they hold passwords).
#[derive(Clone, PartialEq, Eq)]
pub struct JaasConfig {
    /// The login module class, e.g.
    /// `org.apache.kafka.common.security.plain.PlainLoginModule`.
    pub login_module: String,
    /// The control flag (`required`, `requisite`, `sufficient` or `optional`).
    pub flag: String,
    options: BTreeMap<String, String>,
}

impl fmt::Debug for JaasConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JaasConfig")
            .field("login_module", &self.login_module)
            .field("flag", &self.flag)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A token of the JAAS syntax.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

impl JaasConfig {
    /// Parses one entry. Error messages name the offending token's kind, never a value, so
    /// a mistyped password does not reach a log.
    pub fn parse(text: &str) -> Result<Self, String> {
        let tokens = tokenize(text)?;
        let mut it = tokens.into_iter().peekable();
        let login_module = match it.next() {
            Some(Token::Word(w)) => w,
            None => return Err("is empty".to_owned()),
            Some(_) => return Err("must start with a login module class name".to_owned()),
        };
        let flag = match it.next() {
            Some(Token::Word(w)) if FLAGS.contains(&w.to_ascii_lowercase().as_str()) => {
                w.to_ascii_lowercase()
            }
            _ => {
                return Err(format!(
                    "login module {login_module} must be followed by a control flag \
                     (required, requisite, sufficient or optional)"
                ))
            }
        };
        let mut options = BTreeMap::new();
        loop {
            match it.next() {
                Some(Token::Semicolon) => break,
                Some(Token::Word(key)) => {
                    if it.next() != Some(Token::Equals) {
                        return Err(format!("option {key} has no '='"));
                    }
                    match it.next() {
                        Some(Token::Word(v) | Token::Quoted(v)) => {
                            options.insert(key, v);
                        }
                        _ => return Err(format!("option {key} has no value")),
                    }
                }
                None => return Err("does not end with ';'".to_owned()),
                Some(_) => return Err("expected an option name or ';'".to_owned()),
            }
        }
        if it.peek().is_some() {
            // Kafka: "JAAS config property contains N login modules, should be 1 module".
            return Err("must hold exactly one login module entry".to_owned());
        }
        Ok(Self {
            login_module,
            flag,
            options,
        })
    }

    /// The value of option `key`.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }
}

/// Splits `text` into tokens. A word is any run of characters other than blanks, `=`, `;`
/// and `"`: a superset of what Kafka's `StreamTokenizer` takes unquoted (letters, digits,
/// `.`, `-`, `_`, `$`), so every line Kafka accepts reads the same here.
fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            // Kafka's tokenizer has `//` and `/* */` comments turned on.
            '/' if matches!(chars.clone().nth(1), Some('/' | '*')) => {
                chars.next();
                if chars.next() == Some('/') {
                    chars
                        .by_ref()
                        .take_while(|c| *c != '\n' && *c != '\r')
                        .for_each(drop);
                } else {
                    let mut prev = ' ';
                    loop {
                        match chars.next() {
                            None => return Err("has an unterminated /* comment".to_owned()),
                            Some('/') if prev == '*' => break,
                            Some(c) => prev = c,
                        }
                    }
                }
            }
            '=' => {
                chars.next();
                tokens.push(Token::Equals);
            }
            ';' => {
                chars.next();
                tokens.push(Token::Semicolon);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err("has an unterminated quoted string".to_owned()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some(other) => s.push(other),
                            None => return Err("has an unterminated quoted string".to_owned()),
                        },
                        Some(other) => s.push(other),
                    }
                }
                tokens.push(Token::Quoted(s));
            }
            _ => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '=' | ';' | '"') {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(s));
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafkas_plain_line() {
        let j = JaasConfig::parse(
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"u\" password=\"p\";",
        )
        .unwrap();
        assert_eq!(
            j.login_module,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(j.flag, "required");
        assert_eq!(j.option("username"), Some("u"));
        assert_eq!(j.option("password"), Some("p"));
        assert!(!format!("{j:?}").contains("\"p\""));
    }

    #[test]
    fn parses_scram_line_with_unquoted_values_escapes_and_newlines() {
        let j = JaasConfig::parse(
            "org.apache.kafka.common.security.scram.ScramLoginModule REQUIRED\n  \
             username=alice\n  password=\"a \\\"quoted\\\" pass;word=\\\\\";\n",
        )
        .unwrap();
        assert_eq!(j.flag, "required");
        assert_eq!(j.option("username"), Some("alice"));
        assert_eq!(j.option("password"), Some("a \"quoted\" pass;word=\\"));
    }

    #[test]
    fn comments_are_skipped_as_kafka_does() {
        let j = JaasConfig::parse(
            "// a comment\nMod /* inline */ required username=\"u//x\" // trailing\n password=p;",
        )
        .unwrap();
        assert_eq!(j.login_module, "Mod");
        assert_eq!(j.option("username"), Some("u//x"));
        assert_eq!(j.option("password"), Some("p"));
    }

    #[test]
    fn rejects_malformed_lines() {
        for (text, want) in [
            ("", "empty"),
            ("Mod username=\"u\";", "control flag"),
            ("Mod required username=\"u\"", "';'"),
            ("Mod required username \"u\";", "'='"),
            ("Mod required username=;", "no value"),
            ("Mod required password=\"unterminated;", "unterminated"),
            ("A required; B required;", "exactly one"),
        ] {
            let e = JaasConfig::parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
