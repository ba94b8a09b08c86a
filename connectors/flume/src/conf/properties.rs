//! Reading a `.properties` file the way `java.util.Properties.load` does, which is how
//! `flume-ng` reads its configuration. This module only turns bytes into key/value entries
//! (with the line each key starts on); Flume's own post-processing (trimming, agent
//! prefixes, substitution, validation) lives in `load`.
//!
//! The rules copied from `Properties.load` (CONNECTORS.md A1):
//! - a line ends at `\n`, `\r` or `\r\n`; a line holding only blanks (space, tab, form
//!   feed) is skipped;
//! - `#` or `!` starts a comment only as the first non-blank character of a line (indented
//!   comments are comments); a comment line ending in `\` does not continue;
//! - an odd number of trailing backslashes joins the next line, whose leading blanks are
//!   dropped; a continuation line is never a comment, even if it starts with `#`;
//! - the key runs to the first unescaped `=`, `:` or blank; then blanks, at most one `=` or
//!   `:`, and blanks again are skipped; the rest of the logical line is the value, trailing
//!   blanks included;
//! - escapes `\t \n \r \f \uXXXX` in keys and values; a backslash before anything else
//!   yields that character (`\#` is `#`); a malformed `\uXXXX` is an error;
//! - duplicates are all returned, in file order: the caller applies last-wins.
//!
//! Documented deviations from Flume:
//! - **Charset.** Bytes that are valid UTF-8 are decoded as UTF-8 (a leading byte-order mark
//!   is dropped), so UTF-8 configs just work; anything else is decoded as ISO-8859-1, as
//!   Flume 1.10+ does for every file, so legacy (e.g. GBK) comments never break parsing.
//! - **Trailing comments.** See [`parse`]: `port = 44445  ## listen port` gives `44445` and a
//!   [`Warning`], where Flume would keep `44445  ## listen port` as the value.
//! - A `\uXXXX` escape that leaves a lone UTF-16 surrogate (Java keeps it) cannot be held in
//!   a Rust string: it becomes U+FFFD, with a warning.

use std::path::Path;

use super::{ConfigError, Warning};

/// The warning given when a trailing comment is cut off a value.
pub const TRAILING_COMMENT_REMOVED: &str =
    "trailing comment removed (Flume would keep it as part of the value)";

/// One key/value from a properties file, with the 1-based line its key started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, escapes resolved (not trimmed: Flume trims later).
    pub key: String,
    /// The value, escapes resolved, trailing blanks kept (as `Properties` keeps them).
    pub value: String,
    /// 1-based line of the first character of the key.
    pub line: usize,
}

/// Parses bytes with `java.util.Properties.load` semantics plus one documented deviation:
/// a trailing comment after a value is removed, with a [`Warning`].
///
/// The trailing-comment rule: in a value (never in a key), an unescaped `#` that follows an
/// unescaped blank (space, tab or form feed) starts a comment that runs to the end of the
/// logical line; the comment and the blanks before it are dropped. So
/// `port = 44445  ## 服务启动的端口` gives `44445`. `\#` is a literal `#` and never starts a
/// comment, a `#` not preceded by a blank (`a#b`) stays literal, and so does a `#` that
/// starts the value (`type = #x` is `#x`). Flume itself keeps the comment in the value,
/// which breaks numbers, booleans and lists in ways that are hard to see (A1).
///
/// Returns the entries in file order (duplicates kept, in order) and the warnings. A
/// malformed `\uXXXX` escape is a [`ConfigError`] naming `file` and the line.
pub fn parse(bytes: &[u8], file: &Path) -> Result<(Vec<Entry>, Vec<Warning>), ConfigError> {
    let text = decode(bytes);
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    for logical in logical_lines(&text) {
        let (entry, comment_removed, lone_surrogate) = split_line(&logical.chars, logical.line)
            .map_err(|bad| ConfigError {
                file: Some(file.to_path_buf()),
                line: logical.line,
                key: bad.key,
                message: "malformed \\uXXXX escape (four hex digits must follow \\u)".to_string(),
            })?;
        let warn = |message: &str| Warning {
            file: Some(file.to_path_buf()),
            line: entry.line,
            key: entry.key.clone(),
            message: message.to_string(),
        };
        if comment_removed {
            warnings.push(warn(TRAILING_COMMENT_REMOVED));
        }
        if lone_surrogate {
            warnings.push(warn(
                "a \\uXXXX escape leaves a lone UTF-16 surrogate; replaced by U+FFFD",
            ));
        }
        entries.push(entry);
    }
    Ok((entries, warnings))
}

/// UTF-8 when valid (minus a byte-order mark), ISO-8859-1 otherwise.
fn decode(bytes: &[u8]) -> Vec<char> {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.strip_prefix('\u{feff}').unwrap_or(s).chars().collect(),
        // ISO-8859-1: every byte is the code point of the same value.
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// The blanks `Properties` skips: space, tab, form feed (not line breaks).
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// One logical line: natural lines joined by continuations, leading blanks and the
/// continuation backslashes removed, escapes not yet resolved.
struct LogicalLine {
    chars: Vec<char>,
    /// 1-based line of its first character.
    line: usize,
}

/// Splits text into logical lines as `Properties`' `LineReader` (JDK 9 and later) does:
/// skips blank and comment lines, joins continuations. Its quirks are kept: a logical line
/// that is still empty after a continuation (a line holding only `\`) may be followed by
/// a comment line, and a file ending in a lone `\` gives one empty key.
fn logical_lines(text: &[char]) -> Vec<LogicalLine> {
    let lines = line_numbers(text);
    let line_at = |i: usize| lines.get(i).copied().unwrap_or(1);
    let mut out = Vec::new();
    let mut chars: Vec<char> = Vec::new();
    let mut start = 1;
    let mut skip_blanks = true;
    let mut continued = false;
    let mut backslash = false;
    let mut i = 0;
    while let Some(&c) = text.get(i) {
        i += 1;
        let eol = c == '\r' || c == '\n';
        if skip_blanks {
            if is_blank(c) || (eol && !continued) {
                continue;
            }
            skip_blanks = false;
            continued = false;
        }
        if chars.is_empty() && (c == '#' || c == '!') {
            // A comment runs to the end of its natural line, backslash or not.
            while text.get(i).is_some_and(|&c| c != '\r' && c != '\n') {
                i += 1;
            }
            skip_blanks = true;
            continue;
        }
        if !eol {
            if chars.is_empty() {
                start = line_at(i - 1);
            }
            chars.push(c);
            backslash = c == '\\' && !backslash;
            continue;
        }
        if chars.is_empty() {
            skip_blanks = true;
            continue;
        }
        if backslash && i < text.len() {
            // An odd number of trailing backslashes: drop the last one and join the next
            // line without its leading blanks.
            chars.pop();
            skip_blanks = true;
            continued = true;
            backslash = false;
            if c == '\r' && text.get(i) == Some(&'\n') {
                i += 1;
            }
            continue;
        }
        if backslash {
            chars.pop();
        }
        out.push(LogicalLine {
            chars: std::mem::take(&mut chars),
            line: start,
        });
        skip_blanks = true;
        continued = false;
        backslash = false;
    }
    if !chars.is_empty() {
        if backslash {
            chars.pop();
        }
        out.push(LogicalLine { chars, line: start });
    }
    out
}

/// The 1-based line of every character (`\r\n` is one line break).
fn line_numbers(text: &[char]) -> Vec<usize> {
    let mut line = 1;
    let mut out = Vec::with_capacity(text.len());
    for (i, &c) in text.iter().enumerate() {
        out.push(line);
        if c == '\n' || (c == '\r' && text.get(i + 1) != Some(&'\n')) {
            line += 1;
        }
    }
    out
}

/// A malformed escape, and the key it was found in (raw text when the key itself is bad).
struct BadEscape {
    key: String,
}

/// Splits a logical line into key and value as `Properties.load` does, cutting a trailing
/// comment off the value first. Returns the entry, whether a comment was removed and
/// whether a lone surrogate was replaced.
fn split_line(chars: &[char], line: usize) -> Result<(Entry, bool, bool), BadEscape> {
    let mut key_len = 0;
    let mut value_start = chars.len();
    let mut has_separator = false;
    let mut backslash = false;
    while let Some(&c) = chars.get(key_len) {
        if (c == '=' || c == ':') && !backslash {
            value_start = key_len + 1;
            has_separator = true;
            break;
        }
        if is_blank(c) && !backslash {
            value_start = key_len + 1;
            break;
        }
        backslash = c == '\\' && !backslash;
        key_len += 1;
    }
    while let Some(&c) = chars.get(value_start) {
        if !is_blank(c) {
            if !has_separator && (c == '=' || c == ':') {
                has_separator = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    let raw_key = chars.get(..key_len).unwrap_or_default();
    let raw_value = chars.get(value_start..).unwrap_or_default();
    let (raw_value, comment_removed) = match trailing_comment(raw_value) {
        Some(end) => (raw_value.get(..end).unwrap_or_default(), true),
        None => (raw_value, false),
    };
    let bad_key = || BadEscape {
        key: raw_key.iter().collect(),
    };
    let (key, key_surrogate) = unescape(raw_key).ok_or_else(bad_key)?;
    let (value, value_surrogate) =
        unescape(raw_value).ok_or_else(|| BadEscape { key: key.clone() })?;
    let entry = Entry { key, value, line };
    Ok((entry, comment_removed, key_surrogate || value_surrogate))
}

/// Where the value ends when it carries a trailing comment: the index of the first kept
/// character after the value's last one (the blanks before the `#` are cut too).
fn trailing_comment(raw: &[char]) -> Option<usize> {
    let mut escaped = false;
    let mut after_blank = false;
    let mut hash = None;
    for (i, &c) in raw.iter().enumerate() {
        if escaped {
            escaped = false;
            after_blank = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            after_blank = false;
        } else if c == '#' && after_blank {
            hash = Some(i);
            break;
        } else {
            after_blank = is_blank(c);
        }
    }
    let mut end = hash?;
    // Cut the unescaped blanks before the `#` (at least one; an escaped blank stays).
    while end > 0 && raw.get(end - 1).is_some_and(|&c| is_blank(c)) && !is_escaped(raw, end - 1) {
        end -= 1;
    }
    Some(end)
}

/// True when the character at `at` follows an odd run of backslashes.
fn is_escaped(raw: &[char], at: usize) -> bool {
    let run = raw
        .get(..at)
        .unwrap_or_default()
        .iter()
        .rev()
        .take_while(|&&c| c == '\\')
        .count();
    run % 2 == 1
}

/// Resolves `Properties` escapes. `None` on a malformed `\uXXXX`; the flag says a lone
/// surrogate was replaced by U+FFFD.
fn unescape(raw: &[char]) -> Option<(String, bool)> {
    // Java strings are UTF-16 and `\uXXXX` escapes are code units, so a pair of escapes can
    // form one character: collect code units, then decode.
    let mut units: Vec<u16> = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&c) = it.next() {
        let c = if c == '\\' {
            match it.next() {
                // A lone backslash cannot end a logical line; drop it if it ever does.
                None => break,
                Some('u') => {
                    let mut unit: u16 = 0;
                    for _ in 0..4 {
                        let digit = it.next().and_then(|d| d.to_digit(16))?;
                        unit = unit * 16 + u16::try_from(digit).ok()?;
                    }
                    units.push(unit);
                    continue;
                }
                Some('t') => '\t',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('f') => '\x0c',
                Some(&other) => other,
            }
        } else {
            c
        };
        let mut buf = [0u16; 2];
        units.extend_from_slice(c.encode_utf16(&mut buf));
    }
    match String::from_utf16(&units) {
        Ok(s) => Some((s, false)),
        Err(_) => Some((String::from_utf16_lossy(&units), true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(String, String, usize)> {
        bytes_entries(text.as_bytes())
    }

    fn bytes_entries(bytes: &[u8]) -> Vec<(String, String, usize)> {
        let (entries, _) = parse(bytes, Path::new("t.properties")).unwrap();
        entries
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect()
    }

    fn e(key: &str, value: &str, line: usize) -> (String, String, usize) {
        (key.to_string(), value.to_string(), line)
    }

    fn warnings(text: &str) -> Vec<Warning> {
        parse(text.as_bytes(), Path::new("t.properties")).unwrap().1
    }

    #[test]
    fn separators_equals_colon_and_blank() {
        assert_eq!(
            entries("a=1\nb:2\nc 3\nd = 4\ne : 5\nf\t6\ng  =  7\nh=\ni\n"),
            vec![
                e("a", "1", 1),
                e("b", "2", 2),
                e("c", "3", 3),
                e("d", "4", 4),
                e("e", "5", 5),
                e("f", "6", 6),
                e("g", "7", 7),
                e("h", "", 8),
                e("i", "", 9),
            ]
        );
    }

    #[test]
    fn only_one_separator_is_skipped() {
        // `k = = v`: the second `=` belongs to the value; `k :=v` likewise.
        assert_eq!(
            entries("k = = v\nj :=w\n"),
            vec![e("k", "= v", 1), e("j", "=w", 2)]
        );
        // A blank then `=`: the blank ends the key, the `=` is the separator.
        assert_eq!(entries("k =v\n"), vec![e("k", "v", 1)]);
    }

    #[test]
    fn escaped_separators_stay_in_the_key() {
        assert_eq!(
            entries("a\\=b = c\nx\\:y:z\nsp\\ ace v\n"),
            vec![e("a=b", "c", 1), e("x:y", "z", 2), e("sp ace", "v", 3)]
        );
    }

    #[test]
    fn hash_and_bang_comment_only_at_line_start() {
        assert_eq!(
            entries("# c\n! c\n   # indented\n\t! indented\na = 1\n"),
            vec![e("a", "1", 5)]
        );
        // A `#` inside a key is literal.
        assert_eq!(entries("a1.hash#key = v\n"), vec![e("a1.hash#key", "v", 1)]);
        // `!` after a value is literal, and so is a `#` glued to the value.
        assert_eq!(
            entries("a = x ! y\nb = a#b\n"),
            vec![e("a", "x ! y", 1), e("b", "a#b", 2)]
        );
    }

    #[test]
    fn comment_lines_are_not_continued() {
        assert_eq!(
            entries("# comment \\\na = 1\n! other \\\nb = 2\n"),
            vec![e("a", "1", 2), e("b", "2", 4)]
        );
    }

    #[test]
    fn continuation_joins_and_drops_leading_blanks() {
        assert_eq!(entries("k = one \\\n    two\n"), vec![e("k", "one two", 1)]);
        assert_eq!(
            entries("k = a\\\n  b\\\n\tc\nnext = 1\n"),
            vec![e("k", "abc", 1), e("next", "1", 4)]
        );
        // An even number of trailing backslashes is an escaped backslash, not a continuation.
        assert_eq!(
            entries("k = a\\\\\nb = 2\n"),
            vec![e("k", "a\\", 1), e("b", "2", 2)]
        );
        // Three: one escaped backslash plus a continuation.
        assert_eq!(entries("k = a\\\\\\\n b\n"), vec![e("k", "a\\b", 1)]);
    }

    #[test]
    fn continuation_line_starting_with_hash_is_not_a_comment() {
        assert_eq!(entries("k = a\\\n  # b\n"), vec![e("k", "a# b", 1)]);
        assert_eq!(entries("k = a \\\n  ! b\n"), vec![e("k", "a ! b", 1)]);
    }

    #[test]
    fn continuation_into_key() {
        assert_eq!(entries("ke\\\n  y = v\n"), vec![e("key", "v", 1)]);
    }

    #[test]
    fn continuation_then_blank_line_ends_the_value() {
        assert_eq!(
            entries("k = a \\\n   \nb = 1\n"),
            vec![e("k", "a ", 1), e("b", "1", 3)]
        );
    }

    #[test]
    fn backslash_at_end_of_file_is_dropped() {
        assert_eq!(entries("k = v\\"), vec![e("k", "v", 1)]);
    }

    #[test]
    fn escapes() {
        assert_eq!(
            entries("k = a\\tb\\nc\\rd\\fe\\\\f\\zg\\#h\\!i\\=j\\:k\\ l\n"),
            vec![e("k", "a\tb\nc\rd\x0ce\\fzg#h!i=j:k l", 1)]
        );
        assert_eq!(
            entries("k = \\u0041\\u00e9\\u4E2D\n"),
            vec![e("k", "Aé中", 1)]
        );
        assert_eq!(entries("\\u0041b = c\n"), vec![e("Ab", "c", 1)]);
        // A surrogate pair written as two escapes is one character.
        assert_eq!(entries("k = \\uD83D\\uDE00\n"), vec![e("k", "😀", 1)]);
    }

    #[test]
    fn lone_surrogate_is_replaced_with_a_warning() {
        let (entries, warnings) = parse(b"k = a\\uD83Db\n", Path::new("t.properties")).unwrap();
        assert_eq!(entries[0].value, "a\u{fffd}b");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].message.contains("surrogate"), "{}", warnings[0]);
    }

    #[test]
    fn malformed_unicode_escape_is_an_error_with_file_and_line() {
        let err = parse(b"a = 1\nbad = x\\u12G4\n", Path::new("conf/x.properties")).unwrap_err();
        assert_eq!(err.file.as_deref(), Some(Path::new("conf/x.properties")));
        assert_eq!(err.line, 2);
        assert_eq!(err.key, "bad");
        assert!(
            err.to_string()
                .starts_with("conf/x.properties:2: bad: malformed \\uXXXX"),
            "{err}"
        );
        // Too short at the end of the line, and in a key.
        let err = parse(b"\n\nk = \\u12\n", Path::new("f")).unwrap_err();
        assert_eq!(err.line, 3);
        let err = parse(b"k\\uzzzz = v\n", Path::new("f")).unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (1, "k\\uzzzz"));
    }

    #[test]
    fn trailing_blanks_are_kept_leading_blanks_dropped() {
        assert_eq!(entries("   k =   v  \t\n"), vec![e("k", "v  \t", 1)]);
    }

    #[test]
    fn blank_lines_and_whitespace_only_lines_are_skipped() {
        assert_eq!(entries("\n   \n\t\x0c\n  a = 1\n\n"), vec![e("a", "1", 4)]);
    }

    #[test]
    fn line_endings_cr_lf_crlf_and_mixed() {
        let expected = vec![e("a", "1", 1), e("b", "2", 2), e("c", "3", 3)];
        assert_eq!(entries("a=1\nb=2\nc=3\n"), expected);
        assert_eq!(entries("a=1\rb=2\rc=3\r"), expected);
        assert_eq!(entries("a=1\r\nb=2\r\nc=3\r\n"), expected);
        assert_eq!(entries("a=1\r\nb=2\rc=3"), expected);
        // Blank lines in each style count as lines.
        assert_eq!(entries("\r\n\r\r\n\na=1"), vec![e("a", "1", 5)]);
        // Continuation over CRLF and CR.
        assert_eq!(
            entries("k = a \\\r\n  b\r\nj = c\\\r d\r"),
            vec![e("k", "a b", 1), e("j", "cd", 3)]
        );
    }

    #[test]
    fn duplicates_are_kept_in_order() {
        assert_eq!(
            entries("k = 1\nk = 2\nj = 3\nk = 4\n"),
            vec![
                e("k", "1", 1),
                e("k", "2", 2),
                e("j", "3", 3),
                e("k", "4", 4)
            ]
        );
    }

    #[test]
    fn line_is_where_the_key_starts() {
        assert_eq!(
            entries("# c\n\na = 1 \\\n  2 \\\n  3\nb = 4\n"),
            vec![e("a", "1 2 3", 3), e("b", "4", 6)]
        );
    }

    #[test]
    fn trailing_comment_is_removed_with_a_warning() {
        let text = "port = 44445  ## 服务启动的端口\nhost = a\n";
        assert_eq!(
            entries(text),
            vec![e("port", "44445", 1), e("host", "a", 2)]
        );
        let w = warnings(text);
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].to_string(),
            "t.properties:1: port: trailing comment removed (Flume would keep it as part of the value)"
        );
        // A tab before the `#` counts; so does a single blank.
        assert_eq!(
            entries("a = x\t# c\nb = y # c\n"),
            vec![e("a", "x", 1), e("b", "y", 2)]
        );
        // The comment runs to the end of the logical line, continuation included.
        assert_eq!(entries("a = x # c \\\n  more\n"), vec![e("a", "x", 1)]);
        // A value on a continuation line, then a comment.
        assert_eq!(entries("a = x \\\n  y # c\n"), vec![e("a", "x y", 1)]);
    }

    #[test]
    fn escaped_hash_is_literal_and_not_a_comment() {
        let text = "a = x \\# y\nb = 50\\# # c\n";
        assert_eq!(entries(text), vec![e("a", "x # y", 1), e("b", "50#", 2)]);
        let w = warnings(text);
        assert_eq!(w.len(), 1);
        assert_eq!((w[0].line, w[0].key.as_str()), (2, "b"));
    }

    #[test]
    fn hash_not_after_blank_or_at_value_start_stays() {
        let text = "a = a#b\nb = #x\nc = #x # y\n";
        assert_eq!(
            entries(text),
            vec![e("a", "a#b", 1), e("b", "#x", 2), e("c", "#x", 3)]
        );
        assert_eq!(warnings(text).len(), 1);
    }

    #[test]
    fn escaped_blank_before_hash_is_kept_and_no_comment() {
        // `\ ` is a literal space: it neither starts a comment nor is cut.
        assert_eq!(entries("a = x\\ #y\n"), vec![e("a", "x #y", 1)]);
        // An escaped blank before the cut blanks stays.
        assert_eq!(entries("a = x\\  # y\n"), vec![e("a", "x ", 1)]);
    }

    #[test]
    fn key_is_never_cut_for_a_comment() {
        // The blank after `a` ends the key; the value then starts with `#`: literal.
        assert_eq!(entries("a #b\n"), vec![e("a", "#b", 1)]);
        assert_eq!(warnings("a #b\n"), vec![]);
        assert_eq!(entries("a\\ #b = v\n"), vec![e("a #b", "v", 1)]);
    }

    #[test]
    fn iso_8859_1_fallback_for_gbk_bytes() {
        // "## 定义" and a value comment in GBK: not UTF-8, so every byte is one char.
        let mut bytes = b"## ".to_vec();
        bytes.extend_from_slice(&[0xb6, 0xa8, 0xd2, 0xe5]);
        bytes.extend_from_slice(b"\na = 1 # ");
        bytes.extend_from_slice(&[0xb6, 0xcb, 0xbf, 0xda]);
        bytes.extend_from_slice(b"\nb = \xe9t\xe9\n");
        let (entries, warnings) = parse(&bytes, Path::new("gbk.properties")).unwrap();
        let got: Vec<_> = entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(got, vec![("a", "1"), ("b", "\u{e9}t\u{e9}")]);
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn utf8_is_decoded_as_utf8_and_bom_dropped() {
        assert_eq!(entries("\u{feff}a.名字 = 值\n"), vec![e("a.名字", "值", 1)]);
    }

    #[test]
    fn jdk_line_reader_quirks() {
        // A line holding only a continuation leaves the logical line empty, so the next line
        // can still be a comment, and a key on a later line starts there.
        assert_eq!(entries("\\\n# comment\nk = v\n"), vec![e("k", "v", 3)]);
        assert_eq!(entries("\\\n  x = y\n"), vec![e("x", "y", 2)]);
        // A lone backslash ending the file gives one empty key; before a final CRLF, nothing.
        assert_eq!(entries("k = v\n\\"), vec![e("k", "v", 1), e("", "", 2)]);
        assert_eq!(entries("k = v\n\\\n"), vec![e("k", "v", 1), e("", "", 2)]);
        assert_eq!(entries("k = v\n\\\r\n"), vec![e("k", "v", 1)]);
    }

    #[test]
    fn empty_input() {
        assert_eq!(entries(""), vec![]);
        assert_eq!(entries("# only\n\n"), vec![]);
    }
}
