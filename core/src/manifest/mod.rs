//! YAML/JSON streams: splitting into documents, parsing, and writing back (docs/behaviour.md §9.4,
//! §9.7).
//!
//! Splitting is line based, as Linkerd's reader does, so documents come out the way upstream
//! sees them. Each document keeps its text: a document the CLI does not change is written
//! back exactly as it was split, comments included, and a changed document gets the change
//! spliced into its text (`splice.rs`); only what cannot be spliced is re-serialised
//! (keeping its key order, since values preserve insertion order).

mod libyaml;
pub mod lines;
mod reader;
mod rope;
pub mod splice;
mod strict;

use serde_json::Value;

pub use reader::{read, Parsed};
pub use rope::Rope;
pub use splice::{Spans, Splicer, Unspliceable};
pub use strict::StrictValue;

/// Deeper flow nesting than this is refused before parsing: the YAML parser's own limit is
/// only checked after it has read the whole document, which takes quadratic time.
const MAX_FLOW_DEPTH: usize = 256;

/// A stream could not be split into documents.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid Yaml document separator: {0}")]
pub struct SplitError(pub String);

/// A document is not valid YAML.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("error converting YAML to JSON: yaml: line {line}: {problem}")]
pub struct ParseError {
    pub line: usize,
    pub problem: String,
}

/// Splits a stream at `---` lines. Each line keeps its line end (`\n` or `\r\n`; a last
/// line without one gets the stream's), so that a document written back verbatim or spliced
/// keeps them; a line that starts with `---` followed by anything but blanks or a comment is
/// an error.
pub fn split(stream: &str) -> Result<Vec<String>, SplitError> {
    Ok(split_numbered(stream)?
        .into_iter()
        .map(|d| d.text)
        .collect())
}

/// One document of a stream, with the line of the stream it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// 1-based: the stream's line that is the document's first line.
    pub first_line: usize,
    pub text: String,
}

/// [`split`], with where each document starts, for reports that point into the stream.
pub fn split_numbered(stream: &str) -> Result<Vec<Document>, SplitError> {
    // A byte-order mark is not content (kubectl drops it too).
    let stream = stream.strip_prefix('\u{feff}').unwrap_or(stream);
    let mut docs = Vec::new();
    let mut cur = String::new();
    let mut has_lines = false;
    let mut first_line = 1;
    let default_eol = if stream.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    for (number, raw) in (1..).zip(stream.split_inclusive('\n')) {
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let (line, eol) = match line.strip_suffix('\r') {
            Some(l) => (l, "\r\n"),
            None if raw.ends_with('\n') => (line, "\n"),
            None => (line, default_eol),
        };
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if rest.is_empty() || rest.starts_with('#') {
                if has_lines {
                    docs.push(Document {
                        first_line,
                        text: std::mem::take(&mut cur),
                    });
                    has_lines = false;
                }
                first_line = number + 1;
                continue;
            }
            return Err(SplitError(rest.to_string()));
        }
        cur.push_str(line);
        cur.push_str(eol);
        has_lines = true;
    }
    if has_lines {
        docs.push(Document {
            first_line,
            text: cur,
        });
    }
    Ok(docs)
}

/// Parses one document; blank and comment-only documents are `null`. YAML merge keys
/// (`<<: *defaults`) are applied, as Kubernetes' YAML reader does. This is serde_yaml alone;
/// the CLI reads its inputs with [`read`], which gives the same value (or error) and the
/// positions of the nodes in one pass, and comes here for what it leaves to serde_yaml.
pub fn parse(doc: &str) -> Result<Value, ParseError> {
    check_flow_depth(doc)?;
    if !doc.contains("<<") {
        return serde_yaml::from_str::<StrictValue>(doc)
            .map(|v| v.0)
            .map_err(parse_error);
    }
    // Rare: go through serde_yaml's own value to apply the merge keys.
    let mut v: serde_yaml::Value = serde_yaml::from_str(doc).map_err(parse_error)?;
    merge_recursively(&mut v).map_err(parse_error)?;
    serde_yaml::from_value::<StrictValue>(v)
        .map(|v| v.0)
        .map_err(parse_error)
}

/// Refuses documents whose `[`/`{` nesting (outside quotes and comments) is absurdly deep.
fn check_flow_depth(doc: &str) -> Result<(), ParseError> {
    let (mut depth, mut line) = (0usize, 1usize);
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let bytes = doc.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' {
            line += 1;
            comment = false;
        } else if comment {
        } else if let Some(q) = quote {
            if b == b'\\' && q == b'"' {
                i += 1;
            } else if b == q {
                quote = None;
            }
        } else {
            match b {
                b'"' | b'\'' => quote = Some(b),
                b'#' => comment = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Err(ParseError {
                            line,
                            problem: format!("nesting deeper than {MAX_FLOW_DEPTH} levels"),
                        });
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        i += 1;
    }
    Ok(())
}

fn merge_recursively(v: &mut serde_yaml::Value) -> Result<(), serde_yaml::Error> {
    v.apply_merge()?;
    match v {
        serde_yaml::Value::Mapping(m) => m.values_mut().try_for_each(merge_recursively),
        serde_yaml::Value::Sequence(s) => s.iter_mut().try_for_each(merge_recursively),
        serde_yaml::Value::Tagged(t) => merge_recursively(&mut t.value),
        _ => Ok(()),
    }
}

fn parse_error(e: serde_yaml::Error) -> ParseError {
    let text = e.to_string();
    let problem = text.split(" at line ").next().unwrap_or(&text).to_string();
    ParseError {
        line: e.location().map(|l| l.line()).unwrap_or(0),
        problem,
    }
}

/// Output format of the CLI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// How a document was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Written {
    /// As it was read, byte for byte.
    Unchanged,
    /// Its text with the change spliced in (`splice.rs`).
    Spliced,
    /// Serialised from the value: JSON output, a document with no text, or one whose change
    /// could not be spliced (the reason).
    Serialised(Option<Unspliceable>),
}

/// Writes the documents of one output, in one format; in YAML, one [`Splicer`] serves them
/// all, so that what injection inserts into every document is rendered once.
pub struct Writer {
    format: Format,
    splicer: Splicer,
}

impl Writer {
    pub fn new(format: Format) -> Writer {
        Writer {
            format,
            splicer: Splicer::default(),
        }
    }

    /// Writes one document followed by its separator: `---\n` after YAML, `\n` after JSON.
    /// `source` is the document's text as split and what it was read as: in YAML, an
    /// unchanged document is written verbatim and a changed one with the change spliced into
    /// its text, keeping comments and formatting.
    pub fn write(
        &mut self,
        out: &mut Rope,
        value: &Value,
        source: Option<(&str, &Parsed)>,
    ) -> Written {
        if self.format == Format::Json {
            out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".into()));
            out.push_str("\n");
            return Written::Serialised(None);
        }
        let written = match source {
            Some((text, old)) if old.value == *value => {
                out.push_str(text);
                Written::Unchanged
            }
            Some((text, old)) => match self
                .splicer
                .splice_with(text, &old.spans, &old.value, value)
            {
                Ok(spliced) => {
                    out.push_str(&spliced);
                    Written::Spliced
                }
                Err(why) => {
                    out.push_str(&to_yaml(value));
                    Written::Serialised(Some(why))
                }
            },
            None => {
                out.push_str(&to_yaml(value));
                Written::Serialised(None)
            }
        };
        separate(out, source.map(|(text, _)| text));
        written
    }

    /// Writes one document that `patches` change (each at the document's root, or at the
    /// given item of a `List`), as [`Writer::write`] does; in YAML the patches are written
    /// straight into the text where they can be (`splice/patch.rs`), and the patched value is
    /// built only where they cannot. `Err` when a patch does not apply to the document.
    pub fn write_patched(
        &mut self,
        out: &mut Rope,
        text: &str,
        doc: &Parsed,
        patches: &[(Option<usize>, crate::patch::Patch)],
    ) -> Result<Written, json_patch::PatchError> {
        if patches.iter().all(|(_, p)| p.is_empty()) {
            return Ok(self.write(out, &doc.value, Some((text, doc))));
        }
        if self.format == Format::Yaml {
            let spliced = self
                .splicer
                .splice_patches_with(text, &doc.spans, &doc.value, patches);
            if let Ok(spliced) = spliced {
                out.append(spliced);
                separate(out, Some(text));
                return Ok(Written::Spliced);
            }
        }
        let mut value = doc.value.clone();
        apply_patches(&mut value, patches)?;
        Ok(self.write(out, &value, Some((text, doc))))
    }

    /// What splicing did so far.
    pub fn counts(&self) -> splice::Counts {
        self.splicer.counts()
    }
}

/// Applies `patches` to a document: each at the document's root (`None`), or at the given
/// item of its `List`.
pub fn apply_patches(
    doc: &mut Value,
    patches: &[(Option<usize>, crate::patch::Patch)],
) -> Result<(), json_patch::PatchError> {
    for (item, patch) in patches.iter().filter(|(_, p)| !p.is_empty()) {
        let target = match item {
            Some(i) => &mut doc["items"][*i],
            None => &mut *doc,
        };
        patch.apply(target)?;
    }
    Ok(())
}

/// The separator after a YAML document, with the line end of its text.
fn separate(out: &mut Rope, text: Option<&str>) {
    let crlf = text.is_some_and(|t| t.ends_with("\r\n"));
    out.push_str(if crlf { "---\r\n" } else { "---\n" });
}

/// A value as block-style YAML (a `serde_json::Value` always serialises).
pub fn to_yaml(value: &Value) -> String {
    serde_yaml::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_linkerd() {
        assert_eq!(split("a: 1\n---\nb: 2").unwrap(), vec!["a: 1\n", "b: 2\n"]);
        assert_eq!(split("---\na: 1\n---\n---\n").unwrap(), vec!["a: 1\n"]);
        assert_eq!(
            split("a: 1\r\n--- # c\r\nb: 2\r\n").unwrap(),
            vec!["a: 1\r\n", "b: 2\r\n"]
        );
        assert_eq!(split("---\n\n---\n").unwrap(), vec!["\n"]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert_eq!(split("a: 1\n--- x\n"), Err(SplitError("x".into())));
        // `----` starts with `---`: upstream treats it the same way.
        assert_eq!(split("a: 1\n----\n"), Err(SplitError("-".into())));
    }

    #[test]
    fn numbered_documents_start_after_their_separator() {
        let docs =
            split_numbered("\u{feff}# head\na: 1\n---\n---\n\nb: 2\r\n--- # c\nc: 3").unwrap();
        let starts: Vec<(usize, &str)> = docs
            .iter()
            .map(|d| (d.first_line, d.text.as_str()))
            .collect();
        assert_eq!(
            starts,
            vec![(1, "# head\na: 1\n"), (5, "\nb: 2\r\n"), (8, "c: 3\r\n")]
        );
    }

    #[test]
    fn blank_and_comment_documents_are_null() {
        assert_eq!(parse("\n").unwrap(), Value::Null);
        assert_eq!(parse("# only a comment\n").unwrap(), Value::Null);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("metadata:\n  name: a\n  name: b\n").unwrap_err();
        assert!(e.problem.contains("duplicate key \"name\""), "{e}");
        assert!(
            parse("a: [{x: 1}, {x: 2}]\n").is_ok(),
            "equal keys in different maps are fine"
        );
    }

    #[test]
    fn absurd_nesting_is_refused_quickly() {
        let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse(&deep).unwrap_err();
        assert!(e.problem.starts_with("nesting deeper than"), "{e}");
        assert!(
            parse("a: \"[[[[\" # {{{{\n").is_ok(),
            "brackets in strings and comments do not count"
        );
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        assert_eq!(split("\u{feff}a: 1\n").unwrap(), vec!["a: 1\n"]);
    }

    #[test]
    fn merge_keys_are_applied() {
        let v = parse("base: &b {a: 1, b: 2}\nderived:\n  <<: *b\n  b: 3\n").unwrap();
        assert_eq!(v["derived"], serde_json::json!({"a": 1, "b": 3}));
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = parse("a: b\n  c: d\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.to_string()
                .starts_with("error converting YAML to JSON: yaml: line 2: "),
            "{e}"
        );
    }
}
