//! The request layouts the guard walks: [`requests.schema`](requests.schema) parsed once into
//! a tree of [`Field`]s per API key. Only what decides where bytes go is kept — types,
//! the versions a field exists in, nullability, tags; names are kept for error messages and
//! for the sample generator.
//!
//! File format, one block per request message:
//!
//! ```text
//! KEY NAME VALID flex FLEXIBLE      (KEY `-`: a message carried inside a request as bytes)
//!   field TYPE VERSIONS [null VERSIONS] [tag N VERSIONS]
//!     child ...                  (children of a `[]` or `{}` field, indented two spaces)
//! ```
//!
//! TYPE is `bool i8 i16 u16 i32 u32 i64 f64 uuid str bytes records`, `[]` followed by one of
//! those (an array of them), `[]` alone (an array of the struct whose fields follow), or
//! `{}` (a struct). VERSIONS is `N+`, `N-M`, `N` or `none`, as in Kafka's message JSON, from
//! which the file was first made. A field with `tag N V` is a tagged field in versions V.

use std::sync::OnceLock;

/// The schema text, checked into the repository beside this file.
const TEXT: &str = include_str!("requests.schema");

/// An inclusive version range; empty when `min > max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// Lowest version.
    pub min: i16,
    /// Highest version.
    pub max: i16,
}

impl Versions {
    /// No version at all.
    pub const NONE: Versions = Versions { min: 0, max: -1 };

    /// Whether `v` is in the range.
    pub fn contains(self, v: i16) -> bool {
        self.min <= v && v <= self.max
    }

    fn parse(s: &str) -> Option<Versions> {
        if s == "none" {
            return Some(Versions::NONE);
        }
        if let Some(min) = s.strip_suffix('+') {
            return Some(Versions {
                min: min.parse().ok()?,
                max: i16::MAX,
            });
        }
        match s.split_once('-') {
            Some((a, b)) => Some(Versions {
                min: a.parse().ok()?,
                max: b.parse().ok()?,
            }),
            None => {
                let v = s.parse().ok()?;
                Some(Versions { min: v, max: v })
            }
        }
    }
}

/// A field's wire type.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// One byte, 0 or 1.
    Bool,
    /// int8.
    I8,
    /// int16.
    I16,
    /// uint16.
    U16,
    /// int32.
    I32,
    /// uint32.
    U32,
    /// int64.
    I64,
    /// float64.
    F64,
    /// 16 bytes.
    Uuid,
    /// A string: int16 length, or unsigned varint length + 1 in flexible versions.
    Str,
    /// Bytes: int32 length, or unsigned varint length + 1 in flexible versions.
    Bytes,
    /// Record batches, framed as bytes.
    Records,
    /// An array: int32 count, or unsigned varint count + 1 in flexible versions.
    Array(Box<Type>),
    /// A struct: its fields in order, then tagged fields in flexible versions.
    Struct(Vec<Field>),
}

/// One field of a message or struct.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// snake_case name.
    pub name: String,
    /// Wire type.
    pub ty: Type,
    /// Versions the field exists in.
    pub versions: Versions,
    /// Versions in which it may be null.
    pub nullable: Versions,
    /// Tag and the versions in which the field is sent as a tagged field.
    pub tag: Option<(u32, Versions)>,
}

impl Field {
    /// Sent in the tagged-field section at `v`.
    pub fn tagged_at(&self, v: i16) -> bool {
        matches!(self.tag, Some((_, tv)) if tv.contains(v))
    }

    /// Sent in order among the regular fields at `v`.
    pub fn regular_at(&self, v: i16) -> bool {
        self.versions.contains(v) && !self.tagged_at(v)
    }
}

/// One request message, or a message carried inside one as bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// API key; -1 for a message carried inside a request (written `-` in the file).
    pub key: i16,
    /// Kafka's name without the `Request` suffix.
    pub name: String,
    /// Versions described.
    pub valid: Versions,
    /// Versions using the compact encodings and tagged fields.
    pub flexible: Versions,
    /// Top-level fields.
    pub fields: Vec<Field>,
}

/// Every request message, by API key.
#[derive(Debug)]
pub struct Schema {
    messages: Vec<Message>,
}

impl Schema {
    /// The request message for `key` if it is described at `version`.
    pub fn request(&self, key: i16, version: i16) -> Option<&Message> {
        self.messages
            .iter()
            .find(|m| m.key == key && key >= 0 && m.valid.contains(version))
    }

    /// The embedded message called `name` if it is described at `version`.
    pub fn embedded(&self, name: &str, version: i16) -> Option<&Message> {
        self.messages
            .iter()
            .find(|m| m.key < 0 && m.name == name && m.valid.contains(version))
    }

    /// Every message.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }
}

/// A line of the schema file that does not parse.
#[derive(Debug, Clone, thiserror::Error)]
#[error("requests.schema line {line}: {what}")]
pub struct SchemaError {
    line: usize,
    what: String,
}

/// The parsed schema, or why the checked-in file does not parse (a build defect the unit
/// tests catch).
pub fn get() -> Result<&'static Schema, &'static SchemaError> {
    static SCHEMA: OnceLock<Result<Schema, SchemaError>> = OnceLock::new();
    SCHEMA.get_or_init(|| parse(TEXT)).as_ref()
}

fn parse(text: &str) -> Result<Schema, SchemaError> {
    let lines: Vec<(usize, usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, l.len() - l.trim_start().len(), l.trim()))
        .collect();
    let mut messages = Vec::new();
    let mut at = 0;
    while let Some(&(line, indent, head)) = lines.get(at) {
        let err = |what: &str| SchemaError {
            line,
            what: what.to_string(),
        };
        if indent != 0 {
            return Err(err("field outside a message"));
        }
        let w: Vec<&str> = head.split_whitespace().collect();
        let [key, name, valid, "flex", flexible] = w.as_slice() else {
            return Err(err("expected `KEY NAME VALID flex FLEXIBLE`"));
        };
        let key = match *key {
            "-" => -1,
            k => k.parse().map_err(|_| err("bad api key"))?,
        };
        let valid = Versions::parse(valid).ok_or_else(|| err("bad versions"))?;
        let flexible = Versions::parse(flexible).ok_or_else(|| err("bad versions"))?;
        at += 1;
        let fields = parse_fields(&lines, &mut at, 2)?;
        messages.push(Message {
            key,
            name: name.to_string(),
            valid,
            flexible,
            fields,
        });
    }
    Ok(Schema { messages })
}

fn parse_fields(
    lines: &[(usize, usize, &str)],
    at: &mut usize,
    indent: usize,
) -> Result<Vec<Field>, SchemaError> {
    let mut fields = Vec::new();
    while let Some(&(line, ind, text)) = lines.get(*at) {
        if ind < indent {
            break;
        }
        let err = |what: &str| SchemaError {
            line,
            what: what.to_string(),
        };
        if ind > indent {
            return Err(err("unexpected indent"));
        }
        *at += 1;
        let w: Vec<&str> = text.split_whitespace().collect();
        let (name, ty, versions, rest) = match w.as_slice() {
            [n, t, v, rest @ ..] => (*n, *t, *v, rest),
            _ => return Err(err("expected `name TYPE VERSIONS`")),
        };
        let versions = Versions::parse(versions).ok_or_else(|| err("bad versions"))?;
        let mut nullable = Versions::NONE;
        let mut tag = None;
        let mut rest = rest;
        loop {
            match rest {
                ["null", v, tail @ ..] => {
                    nullable = Versions::parse(v).ok_or_else(|| err("bad versions"))?;
                    rest = tail;
                }
                ["tag", n, v, tail @ ..] => {
                    let n = n.parse().map_err(|_| err("bad tag"))?;
                    tag = Some((n, Versions::parse(v).ok_or_else(|| err("bad versions"))?));
                    rest = tail;
                }
                [] => break,
                _ => return Err(err("expected `null V` or `tag N V`")),
            }
        }
        let ty = match ty {
            "[]" => Type::Array(Box::new(Type::Struct(parse_fields(lines, at, indent + 2)?))),
            "{}" => Type::Struct(parse_fields(lines, at, indent + 2)?),
            t => match t.strip_prefix("[]") {
                Some(p) => Type::Array(Box::new(primitive(p).ok_or_else(|| err("bad type"))?)),
                None => primitive(t).ok_or_else(|| err("bad type"))?,
            },
        };
        fields.push(Field {
            name: name.to_string(),
            ty,
            versions,
            nullable,
            tag,
        });
    }
    Ok(fields)
}

fn primitive(t: &str) -> Option<Type> {
    Some(match t {
        "bool" => Type::Bool,
        "i8" => Type::I8,
        "i16" => Type::I16,
        "u16" => Type::U16,
        "i32" => Type::I32,
        "u32" => Type::U32,
        "i64" => Type::I64,
        "f64" => Type::F64,
        "uuid" => Type::Uuid,
        "str" => Type::Str,
        "bytes" => Type::Bytes,
        "records" => Type::Records,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_schema_parses() {
        let s = get().unwrap();
        let m = s.request(3, 12).unwrap();
        assert_eq!(m.name, "Metadata");
        assert!(m.flexible.contains(9) && !m.flexible.contains(8));
        assert!(matches!(m.fields[0].ty, Type::Array(_)));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("3 Metadata 0-13 flex 9+\n  topics [] 0+\n    name nope 0+\n").unwrap_err();
        assert_eq!(e.to_string(), "requests.schema line 3: bad type");
        assert!(parse("3 Metadata 0-13 flex 9+\n    topics [] 0+\n").is_err());
    }
}
