//! The principal of a TLS client: its certificate's subject DN written as Java's
//! `X500Principal.getName()` writes it (RFC 2253), then passed through Kafka's
//! `ssl.principal.mapping.rules` (`DEFAULT`, `RULE:pattern/replacement/[LU]`), as Kafka's
//! `DefaultKafkaPrincipalBuilder` and `SslPrincipalMapper` do.
//!
//! Nothing here touches sockets: [`crate::security::tls`] hands in the certificate.

use regex::Regex;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The subject DN of a DER certificate in RFC 2253 form (`CN=alice,OU=eng,O=Acme`).
pub fn subject_dn(cert_der: &[u8]) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(cert_der)
        .map_err(|e| format!("unreadable client certificate: {e}"))?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter() {
        let avas: Vec<String> = rdn.iter().map(format_ava).collect();
        rdns.push(avas.join("+"));
    }
    // RFC 2253 writes the RDN sequence from the last (most specific) to the first.
    rdns.reverse();
    Ok(rdns.join(","))
}

/// The keywords Java's RFC 2253 output uses; any other attribute is written as its dotted
/// OID with the value as `#` + hex of its DER encoding.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn format_ava(ava: &x509_parser::x509::AttributeTypeAndValue<'_>) -> String {
    use x509_parser::der_parser::asn1_rs::{Class, Tag};
    let oid = ava.attr_type().to_id_string();
    let value = ava.attr_value();
    let header = &value.header;
    let text = if header.class() == Class::Universal && !header.is_constructed() {
        let data = value.data;
        match header.tag() {
            Tag::Utf8String
            | Tag::PrintableString
            | Tag::Ia5String
            | Tag::T61String
            | Tag::NumericString
            | Tag::VisibleString
            | Tag::GeneralString => std::str::from_utf8(data).ok().map(str::to_string),
            Tag::BmpString => {
                let units: Vec<u16> = data
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16(&units).ok()
            }
            Tag::UniversalString => data
                .chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
            _ => None,
        }
    } else {
        None
    };
    match (keyword(&oid), text) {
        (Some(k), Some(t)) => format!("{k}={}", escape(&t)),
        (k, _) => {
            let mut s = format!("{}=#", k.unwrap_or(&oid));
            for b in der_encoding(value) {
                s.push_str(&format!("{b:02x}"));
            }
            s
        }
    }
}

/// A value's DER encoding (tag, length, content), for the `#hex` form.
fn der_encoding(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Vec<u8> {
    let header = &value.header;
    let mut out = Vec::with_capacity(value.data.len() + 6);
    match header.raw_tag() {
        Some(t) => out.extend_from_slice(t),
        None => {
            let class = match header.class() {
                x509_parser::der_parser::asn1_rs::Class::Universal => 0u8,
                x509_parser::der_parser::asn1_rs::Class::Application => 1,
                x509_parser::der_parser::asn1_rs::Class::ContextSpecific => 2,
                x509_parser::der_parser::asn1_rs::Class::Private => 3,
            };
            let tag = u8::try_from(header.tag().0).unwrap_or(31).min(30);
            out.push(class << 6 | u8::from(header.is_constructed()) << 5 | tag);
        }
    }
    let len = value.data.len();
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            let digits = &bytes[skip..];
            // At most size_of::<usize>() length bytes.
            out.push(0x80 | u8::try_from(digits.len()).unwrap_or(8));
            out.extend_from_slice(digits);
        }
    }
    out.extend_from_slice(value.data);
    out
}

/// Java's RFC 2253 escaping: a backslash before `,=+<>#;"\`, `\00` for NUL, and leading
/// and trailing spaces escaped.
fn escape(v: &str) -> String {
    const SPECIAL: &str = ",=+<>#;\"\\";
    let chars: Vec<char> = v.chars().collect();
    let lead = chars.iter().take_while(|c| **c == ' ').count();
    let trail = chars.len() - chars.iter().rev().take_while(|c| **c == ' ').count();
    let mut out = String::with_capacity(v.len() + 4);
    for (i, c) in chars.iter().enumerate() {
        if *c == '\0' {
            out.push_str("\\00");
            continue;
        }
        if SPECIAL.contains(*c) || i < lead || i >= trail {
            out.push('\\');
        }
        out.push(*c);
    }
    out
}

/// Kafka's `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    /// The DN as it is.
    Default,
    /// `RULE:pattern/replacement/[LU]`: applies when the pattern matches the whole DN.
    Replace {
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

impl PrincipalMapper {
    /// Parse a rule list (`None`: Kafka's default, `DEFAULT`). Rules are separated by
    /// commas; a rule's pattern and replacement may hold commas and `\/`.
    pub fn parse(rules: Option<&str>) -> Result<PrincipalMapper, String> {
        let text = rules.unwrap_or("DEFAULT").trim();
        let mut out = Vec::new();
        let mut rest = text;
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            let (rule, after) = if let Some(r) = rest.strip_prefix("RULE:") {
                let (pattern, r) = until_slash(r).ok_or_else(|| invalid(rest))?;
                let (replacement, r) = until_slash(r).ok_or_else(|| invalid(rest))?;
                let (case, r) = match r.chars().next() {
                    Some('L') => (Case::Lower, &r[1..]),
                    Some('U') => (Case::Upper, &r[1..]),
                    _ => (Case::Keep, r),
                };
                let regex = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("rule pattern '{pattern}': {e}"))?;
                let rule = Rule::Replace {
                    pattern: regex,
                    replacement: replacement.to_string(),
                    case,
                };
                (rule, r)
            } else if let Some(r) = rest.strip_prefix("DEFAULT") {
                (Rule::Default, r)
            } else {
                let end = rest.find(',').unwrap_or(rest.len());
                return Err(invalid(&rest[..end]));
            };
            let after = after.trim_start();
            match after.strip_prefix(',') {
                Some(r) => rest = r,
                None if after.is_empty() => rest = after,
                None => return Err(invalid(after)),
            }
            out.push(rule);
        }
        Ok(PrincipalMapper { rules: out })
    }

    /// The principal name for `dn`: the first rule that applies. `Err`: none does (Kafka
    /// then fails the authentication).
    pub fn name(&self, dn: &str) -> Result<String, String> {
        for r in &self.rules {
            match r {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    if !pattern.is_match(dn) {
                        continue;
                    }
                    let name = replace_all(pattern, dn, replacement);
                    return Ok(match case {
                        Case::Keep => name,
                        Case::Lower => name.to_lowercase(),
                        Case::Upper => name.to_uppercase(),
                    });
                }
            }
        }
        Err(format!(
            "no ssl.principal.mapping.rules rule applies to {dn}"
        ))
    }
}

fn invalid(rule: &str) -> String {
    format!("invalid ssl.principal.mapping.rules rule '{rule}'")
}

/// Up to the next unescaped `/`: (the text before it, the text after it).
fn until_slash(s: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '/' => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

/// Java's `String.replaceAll`, which Kafka applies once the pattern matched the whole DN:
/// the whole DN matched, so the one replacement is the result. The replacement uses Java's
/// syntax: `$n` (as many digits as name a group), `${name}`, `\x` for a literal `x`; a `$n`
/// past the last group stays literal, as Kafka escapes it.
fn replace_all(anchored: &Regex, dn: &str, replacement: &str) -> String {
    let Some(caps) = anchored.captures(dn) else {
        return dn.to_string();
    };
    // The anchored pattern wraps the rule's in a non-capturing group: same group numbers.
    let groups = caps.len().saturating_sub(1);
    let mut out = String::new();
    let chars: Vec<char> = replacement.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            if let Some(n) = chars.get(i + 1) {
                out.push(*n);
            }
            i += 2;
            continue;
        }
        if c == '$' {
            if chars.get(i + 1) == Some(&'{') {
                if let Some(end) = chars[i + 2..].iter().position(|c| *c == '}') {
                    let name: String = chars[i + 2..i + 2 + end].iter().collect();
                    if let Some(m) = caps.name(&name) {
                        out.push_str(m.as_str());
                    }
                    i += 3 + end;
                    continue;
                }
            }
            if let Some(d) = chars.get(i + 1).and_then(|c| c.to_digit(10)) {
                let mut n = d as usize;
                if n > groups {
                    // Kafka escapes a reference past the last group: literal text.
                    out.push('$');
                    i += 1;
                    continue;
                }
                let mut j = i + 2;
                while let Some(d) = chars.get(j).and_then(|c| c.to_digit(10)) {
                    let longer = n * 10 + d as usize;
                    if longer > groups {
                        break;
                    }
                    n = longer;
                    j += 1;
                }
                if let Some(m) = caps.get(n) {
                    out.push_str(m.as_str());
                }
                i = j;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rule_keeps_the_dn() {
        let m = PrincipalMapper::parse(None).unwrap();
        assert_eq!(m.name("CN=alice,OU=eng").unwrap(), "CN=alice,OU=eng");
    }

    #[test]
    fn rules_as_in_kafkas_docs() {
        let m = PrincipalMapper::parse(Some(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        ))
        .unwrap();
        assert_eq!(
            m.name("CN=kafka-server-1,OU=ServiceUsers,O=org").unwrap(),
            "kafka-server-1"
        );
        assert_eq!(
            m.name("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Palo Alto,ST=CA,C=US")
                .unwrap(),
            "duke@javasoft"
        );
        assert_eq!(m.name("OU=x,CN=Bob.Smith,O=y").unwrap(), "bob.smith");
        assert_eq!(m.name("O=nobody").unwrap(), "O=nobody");
    }

    #[test]
    fn upper_case_and_no_match() {
        let m = PrincipalMapper::parse(Some("RULE:^CN=(.*)$/$1/U")).unwrap();
        assert_eq!(m.name("CN=alice").unwrap(), "ALICE");
        assert!(m.name("O=acme").is_err());
    }

    #[test]
    fn replacement_references_follow_java() {
        let m = PrincipalMapper::parse(Some("RULE:^CN=(a)(b)$/$1$3\\$x$12/")).unwrap();
        // $3 does not exist: literal; \$ is a literal $; $12 is $1 then '2'.
        assert_eq!(m.name("CN=ab").unwrap(), "a$3$xa2");
        let m = PrincipalMapper::parse(Some("RULE:^CN=(?P<user>[a-z]+)\\/x$/${user}/")).unwrap();
        assert_eq!(m.name("CN=bob/x").unwrap(), "bob");
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(PrincipalMapper::parse(Some("RULE:^CN=(.*)$/$1")).is_err());
        assert!(PrincipalMapper::parse(Some("RULE:^CN=(.*)$/$1/Lx")).is_err());
        assert!(PrincipalMapper::parse(Some("NOPE")).is_err());
        assert!(PrincipalMapper::parse(Some("DEFAULT, ")).is_ok());
    }

    #[test]
    fn escaping_follows_java() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("#1=2"), "\\#1\\=2");
    }
}
