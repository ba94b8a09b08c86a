//! How a record's value becomes fields, and how fields are read: the line [`Parser`]
//! (`split`, `json`, `regex`), the [`Fields`] one parsed line (or token) holds, key
//! [`Template`]s and [`Filter`]s.
//!
//! A field name is a record field (`host`; in JSON, `a.b` reaches into nested objects) or
//! a joined table's column (`TABLE.COLUMN`, resolved by the caller through [`Lookup`]).
//! Values are text: JSON numbers and booleans read as their JSON text, `null` as missing,
//! objects and arrays as their JSON text. Not here: joining (`record`), tables (`table`).

use std::borrow::Cow;

use regex::Regex;
use serde_json::Value;

/// The line parser of `[parse]`.
#[derive(Debug, Clone)]
pub enum Parser {
    /// Every token between separators is a record with one field. With the separator `" "`
    /// this is Spark's word count, `line.split(" ")` (Java's rule: trailing empty tokens
    /// are dropped, a line without the separator is one token even when empty).
    Split {
        /// The separator, a literal string.
        separator: String,
        /// The token's field name.
        field: String,
    },
    /// The line is a JSON object; fields by name, nested ones with dots.
    Json,
    /// The regex's named groups are the fields; a line it does not match is skipped.
    Regex(Regex),
}

/// Java's `line.split(sep)` for a literal separator: trailing empty parts are dropped, and a
/// line without the separator is returned whole (even when empty).
pub fn java_split<'a>(line: &'a str, sep: &str) -> Vec<&'a str> {
    let mut parts: Vec<&str> = line.split(sep).collect();
    if parts.len() == 1 {
        return parts;
    }
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// The fields of one parsed line (or, for `split`, one token).
#[derive(Debug)]
pub enum Fields<'a> {
    /// One named token.
    Token {
        /// The field name.
        name: &'a str,
        /// The token.
        value: &'a str,
    },
    /// A JSON object.
    Json(Value),
    /// Regex captures: (group name, text), groups that took part only.
    Named(Vec<(&'a str, &'a str)>),
}

/// Why a line gave no fields (counted per batch, logged at debug).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unparsed {
    /// Not JSON, or JSON but not an object.
    NotJson,
    /// The regex did not match.
    NoMatch,
}

impl Parser {
    /// Calls `f` with the fields of each record in `line` (several for `split`, at most one
    /// otherwise). Returns why the line gave nothing, if it did not parse.
    pub fn parse<'a>(
        &'a self,
        line: &'a str,
        mut f: impl FnMut(Fields<'a>),
    ) -> Result<(), Unparsed> {
        match self {
            Parser::Split { separator, field } => {
                for token in java_split(line, separator) {
                    f(Fields::Token {
                        name: field,
                        value: token,
                    });
                }
                Ok(())
            }
            Parser::Json => match serde_json::from_str::<Value>(line) {
                Ok(v @ Value::Object(_)) => {
                    f(Fields::Json(v));
                    Ok(())
                }
                _ => Err(Unparsed::NotJson),
            },
            Parser::Regex(re) => {
                let Some(caps) = re.captures(line) else {
                    return Err(Unparsed::NoMatch);
                };
                let named = re
                    .capture_names()
                    .zip(caps.iter())
                    .filter_map(|(name, m)| Some((name?, m?.as_str())))
                    .collect();
                f(Fields::Named(named));
                Ok(())
            }
        }
    }
}

impl Fields<'_> {
    /// The field's text, if present.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        match self {
            Fields::Token { name: n, value } => (*n == name).then_some(Cow::Borrowed(*value)),
            Fields::Named(pairs) => pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| Cow::Borrowed(*v)),
            Fields::Json(v) => json_path(v, name).and_then(json_text),
        }
    }
}

/// The value at a dotted path; a member whose own name holds the dot wins over nesting.
fn json_path<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let obj = v.as_object()?;
    if let Some(found) = obj.get(path) {
        return Some(found);
    }
    let mut cur = v;
    for part in path.split('.') {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// A JSON value as field text: strings as they are, `null` as missing, anything else as
/// its JSON text.
pub fn json_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s)),
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// Reads fields by name, record fields and joined columns alike.
pub trait Lookup {
    /// The field's text, if present.
    fn field(&self, name: &str) -> Option<Cow<'_, str>>;
}

/// A key template: a field name, or text with `{field}` parts (`{{` and `}}` are braces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(String),
}

impl Template {
    /// Parses `key`: without a `{` it is one field name.
    pub fn parse(key: &str) -> Result<Template, String> {
        if key.trim().is_empty() {
            return Err("must name a field or be a template like \"{host}/{level}\"".to_owned());
        }
        if !key.contains('{') && !key.contains('}') {
            return Ok(Template {
                parts: vec![Part::Field(key.to_owned())],
            });
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = key.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("{key:?}: unclosed '{{'")),
                        }
                    }
                    if name.trim().is_empty() {
                        return Err(format!("{key:?}: empty {{}}"));
                    }
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Field(name));
                }
                '}' => {
                    return Err(format!(
                        "{key:?}: '}}' without '{{' (write '}}}}' for a brace)"
                    ))
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if !parts.iter().any(|p| matches!(p, Part::Field(_))) {
            return Err(format!("{key:?} names no field"));
        }
        Ok(Template { parts })
    }

    /// The field names the template uses.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Renders the key; a missing field renders as `missing`, or gives `None` without it.
    pub fn render(&self, fields: &impl Lookup, missing: Option<&str>) -> Option<String> {
        if let [Part::Field(f)] = self.parts.as_slice() {
            return match fields.field(f) {
                Some(v) => Some(v.into_owned()),
                None => missing.map(str::to_owned),
            };
        }
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Field(f) => match fields.field(f) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(missing?),
                },
            }
        }
        Some(out)
    }
}

/// A `[[filter]]`: the field and its test. A missing field fails every test (as a SQL
/// comparison with NULL does), `not_equals` included.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The field tested.
    pub field: String,
    /// The test.
    pub op: FilterOp,
}

/// A filter's test.
#[derive(Debug, Clone)]
pub enum FilterOp {
    /// Equal text.
    Equals(String),
    /// Different text.
    NotEquals(String),
    /// The regex matches somewhere in the text (Spark's `rlike`, unanchored).
    Matches(Regex),
    /// A number above.
    Gt(f64),
    /// A number at or above.
    Ge(f64),
    /// A number below.
    Lt(f64),
    /// A number at or below.
    Le(f64),
}

impl Filter {
    /// Whether the fields pass. A non-numeric field fails the numeric tests.
    pub fn test(&self, fields: &impl Lookup) -> bool {
        let Some(v) = fields.field(&self.field) else {
            return false;
        };
        let num = || v.trim().parse::<f64>().ok();
        match &self.op {
            FilterOp::Equals(s) => v == s.as_str(),
            FilterOp::NotEquals(s) => v != s.as_str(),
            FilterOp::Matches(re) => re.is_match(&v),
            FilterOp::Gt(n) => num().is_some_and(|x| x > *n),
            FilterOp::Ge(n) => num().is_some_and(|x| x >= *n),
            FilterOp::Lt(n) => num().is_some_and(|x| x < *n),
            FilterOp::Le(n) => num().is_some_and(|x| x <= *n),
        }
    }
}

/// An event time from field text: integer milliseconds since the epoch, or an RFC 3339
/// timestamp (`2024-05-01T12:00:00Z`, `...+02:00`, fractions allowed).
pub fn event_time_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return Some(ms);
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Lookup for Fields<'_> {
        fn field(&self, name: &str) -> Option<Cow<'_, str>> {
            self.get(name)
        }
    }

    fn parsed<'a>(p: &'a Parser, line: &'a str) -> Vec<Fields<'a>> {
        let mut out = Vec::new();
        let _ = p.parse(line, |f| out.push(f));
        out
    }

    #[test]
    fn split_is_javas_and_matches_the_word_count() {
        let p = Parser::Split {
            separator: " ".to_owned(),
            field: "word".to_owned(),
        };
        for line in ["a b  c", " x", "a b  ", "", " ", "solo"] {
            let ours: Vec<String> = parsed(&p, line)
                .iter()
                .map(|f| f.get("word").unwrap().into_owned())
                .collect();
            let seed: Vec<&str> = crate::wordcount::java_split(line);
            assert_eq!(ours, seed, "line {line:?}");
        }
        assert_eq!(java_split("a, b,, ", ", "), vec!["a", "b,"]);
        assert_eq!(java_split("x----y", "--"), vec!["x", "", "y"]);
    }

    #[test]
    fn json_fields_nest_with_dots() {
        let p = Parser::Json;
        let fs = parsed(
            &p,
            r#"{"host":"h1","req":{"bytes":12,"ok":true},"n":null,"a.b":"flat"}"#,
        );
        let f = &fs[0];
        assert_eq!(f.get("host").as_deref(), Some("h1"));
        assert_eq!(f.get("req.bytes").as_deref(), Some("12"));
        assert_eq!(f.get("req.ok").as_deref(), Some("true"));
        assert_eq!(f.get("n"), None);
        assert_eq!(f.get("a.b").as_deref(), Some("flat"));
        assert_eq!(f.get("req.nope"), None);
        assert_eq!(p.parse("not json", |_| {}), Err(Unparsed::NotJson));
        assert_eq!(p.parse("[1]", |_| {}), Err(Unparsed::NotJson));
    }

    #[test]
    fn regex_groups_are_fields() {
        let p =
            Parser::Regex(Regex::new(r"^(?P<host>\S+) (?P<bytes>\d+)(?: (?P<opt>\w+))?$").unwrap());
        let fs = parsed(&p, "web1 300");
        assert_eq!(fs[0].get("host").as_deref(), Some("web1"));
        assert_eq!(fs[0].get("bytes").as_deref(), Some("300"));
        assert_eq!(fs[0].get("opt"), None);
        assert_eq!(p.parse("nope", |_| {}), Err(Unparsed::NoMatch));
    }

    #[test]
    fn templates_render_and_report_missing() {
        let p = Parser::Json;
        let fs = parsed(&p, r#"{"a":"x","b":2}"#);
        let f = &fs[0];
        let t = Template::parse("{a}/{b}-{{lit}}").unwrap();
        assert_eq!(t.render(f, None).as_deref(), Some("x/2-{lit}"));
        assert_eq!(t.fields().collect::<Vec<_>>(), vec!["a", "b"]);
        let t = Template::parse("{a}:{zz}").unwrap();
        assert_eq!(t.render(f, None), None);
        assert_eq!(t.render(f, Some("?")).as_deref(), Some("x:?"));
        assert_eq!(
            Template::parse("a").unwrap().render(f, None).as_deref(),
            Some("x")
        );
        for bad in ["", "{a", "{}", "a}", "text"] {
            if bad == "text" {
                assert!(Template::parse(bad).is_ok());
                continue;
            }
            assert!(Template::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filters_test_text_regex_and_numbers() {
        let p = Parser::Json;
        let fs = parsed(&p, r#"{"level":"ERROR","ms":250,"path":"/api/x"}"#);
        let f = &fs[0];
        let t = |field: &str, op: FilterOp| {
            Filter {
                field: field.to_owned(),
                op,
            }
            .test(f)
        };
        assert!(t("level", FilterOp::Equals("ERROR".into())));
        assert!(!t("level", FilterOp::NotEquals("ERROR".into())));
        assert!(!t("missing", FilterOp::NotEquals("x".into())));
        assert!(t("path", FilterOp::Matches(Regex::new("^/api/").unwrap())));
        assert!(t("ms", FilterOp::Gt(200.0)));
        assert!(t("ms", FilterOp::Ge(250.0)));
        assert!(!t("ms", FilterOp::Lt(250.0)));
        assert!(t("ms", FilterOp::Le(250.0)));
        assert!(!t("level", FilterOp::Gt(0.0)), "text is no number");
    }

    #[test]
    fn event_times_are_ms_or_rfc3339() {
        assert_eq!(event_time_ms("60000"), Some(60_000));
        assert_eq!(event_time_ms("1970-01-01T00:01:00Z"), Some(60_000));
        assert_eq!(event_time_ms("1970-01-01T01:01:00.5+01:00"), Some(60_500));
        assert_eq!(event_time_ms("yesterday"), None);
    }
}
