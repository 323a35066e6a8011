//! Writing a changed document by splicing the change into its original text.
//!
//! A changed document used to be re-serialised: its comments, quoting, indentation and list
//! style were lost, and a diff of the file showed every line moved. Here the document's text
//! is read (with its value, in one pass of libyaml: `reader.rs`) into a tree of spans giving
//! the position of every node ([`Node`]); the old and new values are compared along that tree; and each
//! difference becomes one edit of the text:
//!
//! - a key added to a block mapping becomes lines inserted after its last entry (and that
//!   entry's trailing comments), at the mapping's indentation;
//! - an item added to a block sequence becomes lines inserted before the item it precedes,
//!   or after the last one, at the sequence's dash column;
//! - a removed key or item loses exactly its lines;
//! - a changed scalar is replaced in place; a flow node (`{…}`, `[…]`) that changes is
//!   rewritten as that one node, in flow style;
//! - new values are written in block style with the document's own indentation step and
//!   list style (`- ` at the parent key's column, or indented).
//!
//! What cannot be spliced safely — anchors, aliases, tags, merge keys, a flow-style root
//! (a JSON document), a removal that does not own its lines — returns [`Unspliceable`], and
//! the caller re-serialises the document. So does a splice whose result does not parse back
//! to the new value: the text is checked before it is used.
//!
//! A [`Splicer`] does this for a stream. What injection inserts is the same for every pod of
//! one config (the proxy, the init container, the volumes), so the text of each inserted
//! entry or item that spans lines is rendered once, checked once, and remembered. The check
//! of a whole document then does not parse those again: it parses the document with each of
//! them collapsed to one placeholder line (the *skeleton*, where one-line insertions stand
//! as written), which proves where the insertions landed, while each collapsed text was
//! proved on its own when it was first rendered. Block structure is decided by indentation,
//! so an entry whose lines parse on their own, placed on its own lines where its placeholder
//! parses, parses to the same value in place — as long as its text does not end in a
//! literal block, which takes in a following line of spaces deeper than its indentation,
//! and no line of blanks follows it (a tab there can be an error after a block list): such
//! entries stand in the skeleton as written. (No `|+` block is written at all.)
//! Anything the skeleton does not confirm is checked the slow way: the whole result parsed
//! again.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hash, Hasher};

use serde_json::{Map, Value};

/// Why a document was re-serialised instead of spliced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unspliceable(pub String);

pub(super) fn unspliceable<T>(why: impl Into<String>) -> Result<T, Unspliceable> {
    Err(Unspliceable(why.into()))
}

/// A node of the document, with byte offsets into its text (read by `reader.rs`).
#[derive(Debug)]
pub(super) enum Node {
    Scalar {
        start: usize,
        end: usize,
        /// A literal (`|`) or folded (`>`) block: its span starts at its indicator.
        block: bool,
    },
    Map {
        flow: bool,
        start: usize,
        end: usize,
        entries: Vec<Entry>,
    },
    Seq {
        flow: bool,
        start: usize,
        end: usize,
        items: Vec<Node>,
    },
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) key: String,
    pub(super) key_start: usize,
    pub(super) key_end: usize,
    pub(super) value: Node,
}

/// Where the nodes of a document's text are, read with its value (`reader.rs`), or why the
/// splicer cannot use them.
#[derive(Debug)]
pub struct Spans(pub(super) Result<Node, Unspliceable>);

impl Spans {
    /// Reads the spans of a text the caller has not read.
    pub fn of(text: &str) -> Spans {
        Spans(super::reader::spans(text))
    }

    pub(super) fn root(&self) -> Result<&Node, Unspliceable> {
        self.0.as_ref().map_err(Clone::clone)
    }
}

impl Entry {
    /// One past the last byte of the entry's text.
    fn end(&self) -> usize {
        match self.value {
            Node::Scalar { start, end, .. } if start == end => self.key_end,
            ref v => v.end().max(self.key_end),
        }
    }
}

impl Node {
    pub(super) fn start(&self) -> usize {
        match self {
            Node::Scalar { start, .. } | Node::Map { start, .. } | Node::Seq { start, .. } => {
                *start
            }
        }
    }

    /// One past the last byte of the node's content.
    pub(super) fn end(&self) -> usize {
        match self {
            Node::Scalar { end, .. } | Node::Map { end, .. } | Node::Seq { end, .. } => *end,
        }
    }
}

/// `text` with `old`'s value changed into `new`'s, by edits of the text (one document; a
/// stream uses one [`Splicer`] for all of its documents).
pub fn splice(text: &str, old: &Value, new: &Value) -> Result<String, Unspliceable> {
    Splicer::default().splice(text, old, new)
}

/// Remembered inserted texts, beyond which the memory starts over: a stream holds a few
/// configs, each inserting a handful of entries; a stream whose pods all differ gains
/// nothing from remembering them.
const REMEMBERED: usize = 512;

/// Splices the documents of a stream, rendering each distinct inserted entry or item once.
#[derive(Default)]
pub struct Splicer {
    /// Inserted texts by the hash of what they render ([`Part::key`]).
    texts: HashMap<u64, Vec<Rendered>>,
    remembered: usize,
    /// Shared values' texts, by the value and the place (`patch.rs`).
    shared: Vec<patch::SharedText>,
    counts: Counts,
}

/// What a [`Splicer`] did, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Inserted multi-line entries or items rendered (and checked on their own).
    pub rendered: usize,
    /// Inserted multi-line entries or items whose text was remembered.
    pub reused: usize,
    /// Documents checked by parsing the whole result, the skeleton not sufficing.
    pub full_checks: usize,
    /// Documents written straight from their patches ([`Splicer::splice_patches`]).
    pub patched: usize,
}

/// The checked text of one inserted entry or item.
struct Rendered {
    lead: Lead,
    col: usize,
    value: Value,
    text: String,
}

impl Splicer {
    /// `text` with `old`'s value changed into `new`'s, by edits of the text.
    pub fn splice(&mut self, text: &str, old: &Value, new: &Value) -> Result<String, Unspliceable> {
        self.splice_with(text, &Spans::of(text), old, new)
    }

    /// [`Splicer::splice`], with the text's spans read already (with `old`).
    pub fn splice_with(
        &mut self,
        text: &str,
        spans: &Spans,
        old: &Value,
        new: &Value,
    ) -> Result<String, Unspliceable> {
        // Merge keys, anchors, tags and the like left the text without spans (`reader.rs`).
        let root = spans.root()?;
        let doc = Doc::new(text, root);
        if matches!(
            root,
            Node::Map { flow: true, .. } | Node::Seq { flow: true, .. }
        ) {
            return unspliceable("it is written in flow style (JSON)");
        }
        let mut edits = Vec::new();
        doc.diff(root, old, new, None, &mut edits)?;
        let crlf = text.contains("\r\n");
        let ends = |s: String| if crlf { s.replace('\n', "\r\n") } else { s };
        let (mut written, mut skeleton, mut placed) = (Vec::new(), Vec::new(), Vec::new());
        for e in &edits {
            let (insert, stands_for) = self.write(&doc, e, &mut placed)?;
            written.push((e.from, e.to, ends(insert)));
            skeleton.push((e.from, e.to, ends(stands_for)));
        }
        let out = apply(text, &written)?;
        // The result is checked before it is used: a splicing mistake costs a re-serialised
        // document, never a wrong one.
        if !text.contains(PLACEHOLDER) && skeleton_holds(text, &skeleton, new, &placed) {
            return Ok(out);
        }
        self.counts.full_checks += 1;
        match super::parse(&out) {
            Ok(v) if v == *new => Ok(out),
            _ => unspliceable("the spliced text does not read back as the new document"),
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The text an edit inserts, and what stands for it in the skeleton: each multi-line part
    /// collapsed to a placeholder line, unless it must be checked in place. `placed` collects
    /// the values the placeholders stand for, in order.
    fn write<'v>(
        &mut self,
        doc: &Doc<'_>,
        edit: &Edit<'v>,
        placed: &mut Vec<&'v Value>,
    ) -> Result<(String, String), Unspliceable> {
        let block = match &edit.insert {
            Insert::Text(t) => return Ok((t.clone(), t.clone())),
            Insert::Block(b) => b,
        };
        let next = if block.open_end {
            doc.next_line(edit.to)
        } else {
            edit.to
        };
        let exposed = blanks_follow(doc.text, next);
        let mut out = String::from(block.before);
        let mut skeleton = out.clone();
        for part in &block.parts {
            let text = self.part(doc, part)?;
            out.push_str(&text);
            if !part.is_block() || ends_in_literal(part.value) || exposed {
                skeleton.push_str(&text);
            } else {
                part.placeholder(placed.len(), &mut skeleton);
                placed.push(part.value);
            }
        }
        if block.open_end {
            out.pop();
            skeleton.pop();
        }
        Ok((out, skeleton))
    }

    /// The text of one inserted entry or item: remembered, or rendered and checked on its
    /// own (parsed, it must be the one-entry mapping or one-item list it stands for).
    fn part(&mut self, doc: &Doc<'_>, part: &Part<'_>) -> Result<String, Unspliceable> {
        if !part.is_block() {
            // One line, written as is into the skeleton too, which checks it in place.
            return Ok(part.render(doc));
        }
        let key = part.key(doc);
        let found = self.texts.get(&key).and_then(|list| {
            list.iter().position(|r| {
                r.col == part.col && r.lead == part.lead && identical(&r.value, part.value)
            })
        });
        if let Some(i) = found {
            self.counts.reused += 1;
            return Ok(self.texts[&key][i].text.clone());
        }
        let text = part.render(doc);
        if super::parse(&text).ok().as_ref() != Some(&part.standing_alone()) {
            return unspliceable("an inserted entry does not read back as itself");
        }
        self.counts.rendered += 1;
        if self.remembered >= REMEMBERED {
            self.texts.clear();
            self.remembered = 0;
        }
        self.remembered += 1;
        self.texts.entry(key).or_default().push(Rendered {
            lead: part.lead.clone(),
            col: part.col,
            value: part.value.clone(),
            text: text.clone(),
        });
        Ok(text)
    }
}

/// What an inserted entry's or item's value is replaced with in the skeleton, followed by
/// its index.
const PLACEHOLDER: &str = "__proxy_injector_splice_";

/// Whether the text with the skeleton's edits parses to `new` with each placeholder exactly
/// where its part's value is.
fn skeleton_holds(
    text: &str,
    skeleton: &[(usize, usize, String)],
    new: &Value,
    parts: &[&Value],
) -> bool {
    let Ok(skeleton) = apply(text, skeleton) else {
        return false;
    };
    super::parse(&skeleton).is_ok_and(|v| placed(&v, new, parts))
}

/// Whether the first line from `at` on that is not empty holds blanks only (spaces, tabs, a
/// carriage return): such a line after an inserted block can change how it reads (a tab
/// where a block list expects indentation is an error; found by fuzzing), so the block is
/// checked in place.
fn blanks_follow(text: &str, at: usize) -> bool {
    let rest = text.get(at..).unwrap_or_default();
    for line in rest.split('\n') {
        if line.is_empty() || line == "\r" {
            continue;
        }
        return line.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r'));
    }
    false
}

/// Whether `skeleton` is `new` with placeholder `i` standing for the value `parts[i]` (the
/// very node of `new`, not an equal one elsewhere).
fn placed(skeleton: &Value, new: &Value, parts: &[&Value]) -> bool {
    if let Some(i) = skeleton
        .as_str()
        .and_then(|s| s.strip_prefix(PLACEHOLDER))
        .and_then(|i| i.parse::<usize>().ok())
    {
        return parts.get(i).is_some_and(|p| std::ptr::eq(*p, new));
    }
    match (skeleton, new) {
        (Value::Object(s), Value::Object(n)) => {
            s.len() == n.len()
                && s.iter()
                    .all(|(k, v)| n.get(k).is_some_and(|w| placed(v, w, parts)))
        }
        (Value::Array(s), Value::Array(n)) => {
            s.len() == n.len() && s.iter().zip(n).all(|(v, w)| placed(v, w, parts))
        }
        (s, n) => s == n,
    }
}

/// Equal and in the same key order (which decides the text).
fn identical(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && identical(va, vb))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| identical(x, y))
        }
        (a, b) => a == b,
    }
}

fn hash_value(v: &Value, h: &mut impl Hasher) {
    match v {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => (1u8, b).hash(h),
        Value::Number(n) => (2u8, n).hash(h),
        Value::String(s) => (3u8, s).hash(h),
        Value::Array(a) => {
            (4u8, a.len()).hash(h);
            a.iter().for_each(|x| hash_value(x, h));
        }
        Value::Object(m) => {
            (5u8, m.len()).hash(h);
            for (k, x) in m {
                k.hash(h);
                hash_value(x, h);
            }
        }
    }
}

/// One edit: the bytes `from..to` replaced by `insert`.
#[derive(Debug)]
struct Edit<'v> {
    from: usize,
    to: usize,
    insert: Insert<'v>,
}

#[derive(Debug)]
enum Insert<'v> {
    /// Written as is (`\n` line ends, made the document's own when written).
    Text(String),
    /// New entries or items in block style, rendered by the [`Splicer`].
    Block(Block<'v>),
}

/// Lines of new entries of one block mapping, or new items of one block sequence.
#[derive(Debug)]
struct Block<'v> {
    /// Written first: a line end after a key whose value was empty, or at the end of a text
    /// that lacks a final one.
    before: &'static str,
    parts: Vec<Part<'v>>,
    /// The last line end is left out: the block ends where a line end already is.
    open_end: bool,
}

impl<'v> Block<'v> {
    fn lines(parts: Vec<Part<'v>>) -> Insert<'v> {
        Insert::Block(Block {
            before: "",
            parts,
            open_end: false,
        })
    }
}

/// One new entry (`key: value`) or item (`- value`), its first line at column `col`.
#[derive(Debug)]
struct Part<'v> {
    lead: Lead,
    col: usize,
    value: &'v Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Lead {
    Key(String),
    Dash,
}

impl Part<'_> {
    /// Whether the part spans lines below its first (a non-empty mapping or list): such
    /// parts are remembered, and stand as a placeholder in the skeleton.
    fn is_block(&self) -> bool {
        match self.value {
            Value::Object(m) => !m.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => false,
        }
    }

    fn key(&self, doc: &Doc<'_>) -> u64 {
        // The whole inserted value is hashed for every document: foldhash, several times
        // faster than SipHash on its many short writes (a found entry is compared in full).
        let mut h = foldhash::fast::FixedState::default().build_hasher();
        (&self.lead, self.col, doc.step, doc.indented_lists).hash(&mut h);
        hash_value(self.value, &mut h);
        h.finish()
    }

    fn render(&self, doc: &Doc<'_>) -> String {
        let mut out = String::new();
        match &self.lead {
            Lead::Key(k) => doc.block_entry(k, self.value, self.col, &mut out),
            Lead::Dash => doc.block_seq(std::slice::from_ref(self.value), self.col, &mut out),
        }
        out
    }

    /// Its placeholder line in the skeleton: the same lead, the `i`th placeholder for value.
    fn placeholder(&self, i: usize, out: &mut String) {
        let _ = write!(out, "{:col$}", "", col = self.col);
        match &self.lead {
            Lead::Key(k) => {
                let key = scalar(&Value::String(k.clone()));
                let _ = writeln!(out, "{key}: {PLACEHOLDER}{i}");
            }
            Lead::Dash => {
                let _ = writeln!(out, "- {PLACEHOLDER}{i}");
            }
        }
    }

    /// What its text alone parses to.
    fn standing_alone(&self) -> Value {
        match &self.lead {
            Lead::Key(k) => Value::Object(Map::from_iter([(k.clone(), self.value.clone())])),
            Lead::Dash => Value::Array(vec![self.value.clone()]),
        }
    }
}

impl<'v> Edit<'v> {
    fn replace(from: usize, to: usize, insert: String) -> Edit<'v> {
        Edit {
            from,
            to,
            insert: Insert::Text(insert),
        }
    }

    fn insert(at: usize, insert: Insert<'v>) -> Edit<'v> {
        Edit {
            from: at,
            to: at,
            insert,
        }
    }
}

/// `text` with each `(from, to, insert)` applied, in the order given for equal positions.
fn apply(text: &str, edits: &[(usize, usize, String)]) -> Result<String, Unspliceable> {
    let mut out =
        String::with_capacity(text.len() + edits.iter().map(|e| e.2.len()).sum::<usize>());
    for (stretch, edit) in in_order(text, edits)? {
        out.push_str(&text[stretch]);
        if let Some(i) = edit {
            out.push_str(&edits[i].2);
        }
    }
    Ok(out)
}

/// Stretches of a text, each followed by the index of the edit that comes after it.
type Stretches = Vec<(std::ops::Range<usize>, Option<usize>)>;

/// The text cut at the edits: each stretch of it in order, then the index of the edit that
/// follows it (`None` after the last stretch). Edits at one position keep the order in which
/// they were made (a stable sort); edits that overlap are refused.
fn in_order<T>(text: &str, edits: &[(usize, usize, T)]) -> Result<Stretches, Unspliceable> {
    let mut order: Vec<usize> = (0..edits.len()).collect();
    order.sort_by_key(|&i| edits[i].0);
    let mut out = Vec::with_capacity(order.len() + 1);
    let mut at = 0;
    for i in order {
        let (from, to, _) = &edits[i];
        if *from < at || to < from || *to > text.len() {
            return unspliceable("two changes overlap");
        }
        out.push((at..*from, Some(i)));
        at = *to;
    }
    out.push((at..text.len(), None));
    Ok(out)
}

/// The document's text and its writing conventions.
struct Doc<'t> {
    text: &'t str,
    /// Spaces per nesting level of block mappings.
    step: usize,
    /// Whether block sequences under a key are indented (`key:\n  - a`) or not (`key:\n- a`).
    indented_lists: bool,
}

impl<'t> Doc<'t> {
    fn new(text: &'t str, root: &Node) -> Doc<'t> {
        let mut doc = Doc {
            text,
            step: 2,
            indented_lists: false,
        };
        let (mut step, mut lists) = (None, None);
        doc.conventions(root, &mut step, &mut lists);
        doc.step = step.filter(|s| (1..=8).contains(s)).unwrap_or(2);
        doc.indented_lists = lists.unwrap_or(false);
        doc
    }

    /// The first nested block mapping's indentation step, and the first block sequence's
    /// position relative to its key.
    fn conventions(&self, node: &Node, step: &mut Option<usize>, lists: &mut Option<bool>) {
        let Node::Map {
            flow: false,
            entries,
            ..
        } = node
        else {
            if let Node::Seq { items, .. } = node {
                items.iter().for_each(|i| self.conventions(i, step, lists));
            }
            return;
        };
        for e in entries {
            let key_col = self.col(e.key_start);
            match &e.value {
                Node::Map {
                    flow: false,
                    entries: inner,
                    ..
                } if step.is_none() => {
                    if let Some(first) = inner.first() {
                        *step = self.col(first.key_start).checked_sub(key_col);
                    }
                }
                Node::Seq {
                    flow: false, items, ..
                } if lists.is_none() => {
                    if let Some(dash) = items.first().and_then(|i| self.dash(i)) {
                        *lists = Some(self.col(dash) > key_col);
                    }
                }
                _ => {}
            }
            self.conventions(&e.value, step, lists);
        }
    }

    // Both search bytes, not characters: `at` may be inside a multi-byte character (one past
    // a node's end, minus one, found by fuzzing), and a line end is one byte either way.
    fn line_start(&self, at: usize) -> usize {
        let bytes = &self.text.as_bytes()[..at.min(self.text.len())];
        bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
    }

    /// The start of the line after the one holding byte `at`.
    fn next_line(&self, at: usize) -> usize {
        let bytes = self.text.as_bytes().get(at..).unwrap_or_default();
        bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.text.len(), |i| at + i + 1)
    }

    fn col(&self, at: usize) -> usize {
        at - self.line_start(at)
    }

    /// Whether only spaces precede `at` on its line.
    fn starts_line(&self, at: usize) -> bool {
        self.text[self.line_start(at)..at]
            .bytes()
            .all(|b| b == b' ')
    }

    /// The `-` of a block sequence item: the last one before the item on its line.
    fn dash(&self, item: &Node) -> Option<usize> {
        let start = item.start();
        let line = self.line_start(start);
        let before = &self.text[line..start];
        let dash = line + before.rfind('-')?;
        let after = &self.text[dash + 1..start];
        (after.bytes().all(|b| b == b' ') && self.starts_line(dash)).then_some(dash)
    }

    /// Where lines go after a node ending at `end`: the next line, past the comment lines
    /// that follow at `indent` or deeper (they belong to the node).
    fn after(&self, end: usize, indent: usize) -> usize {
        let mut at = self.next_line(end.saturating_sub(1));
        while at < self.text.len() {
            let line = &self.text[at..self.next_line(at)];
            let content = line.trim_start_matches(' ');
            if !content.starts_with('#') || line.len() - content.len() < indent {
                break;
            }
            at = self.next_line(at);
        }
        at
    }

    fn diff<'v>(
        &self,
        node: &Node,
        old: &Value,
        new: &'v Value,
        key_line: Option<usize>,
        edits: &mut Vec<Edit<'v>>,
    ) -> Result<(), Unspliceable> {
        if old == new {
            return Ok(());
        }
        match (node, old, new) {
            (
                Node::Map {
                    flow: false,
                    entries,
                    end,
                    ..
                },
                Value::Object(o),
                Value::Object(n),
            ) => self.diff_map(entries, *end, o, n, edits),
            (
                Node::Seq {
                    flow: false,
                    items,
                    end,
                    ..
                },
                Value::Array(o),
                Value::Array(n),
            ) => self.diff_seq(items, *end, o, n, edits),
            (Node::Map { flow: true, .. } | Node::Seq { flow: true, .. }, _, _) => {
                edits.push(Edit::replace(node.start(), node.end(), flow(new)));
                Ok(())
            }
            (Node::Scalar { block: true, .. }, _, _) => {
                unspliceable("a literal or folded block scalar changed")
            }
            (Node::Scalar { start, end, .. }, _, n) if !n.is_object() && !n.is_array() => {
                edits.push(Edit::replace(*start, *end, scalar(n)));
                Ok(())
            }
            // `key:` with nothing after it, now holding a mapping or a list: the block goes
            // on the lines below the key.
            (Node::Scalar { start, end, .. }, Value::Null, n) if start == end => {
                let Some(key_start) = key_line else {
                    return unspliceable("an empty node outside a mapping gains content");
                };
                let mut line_end = self.next_line(key_start) - 1;
                if self.text.as_bytes().get(line_end) != Some(&b'\n') {
                    return unspliceable("an empty value at the end of the text");
                }
                if line_end > 0 && self.text.as_bytes()[line_end - 1] == b'\r' {
                    line_end -= 1;
                }
                let parts = match n {
                    Value::Object(m) => self.entries(m.iter(), self.col(key_start) + self.step),
                    Value::Array(a) => self.items(a, self.list_col(self.col(key_start))),
                    _ => return unspliceable("a value changed type"),
                };
                let block = Block {
                    before: "\n",
                    parts,
                    open_end: true,
                };
                edits.push(Edit::insert(line_end, Insert::Block(block)));
                Ok(())
            }
            _ => unspliceable("a value changed type"),
        }
    }

    fn diff_map<'v>(
        &self,
        entries: &[Entry],
        end: usize,
        old: &Map<String, Value>,
        new: &'v Map<String, Value>,
        edits: &mut Vec<Edit<'v>>,
    ) -> Result<(), Unspliceable> {
        let Some(first) = entries.first() else {
            return unspliceable("an empty block mapping");
        };
        let indent = self.col(first.key_start);
        for e in entries {
            let Some(o) = old.get(&e.key) else {
                return unspliceable(format!("key {:?} is not what the text says", e.key));
            };
            match new.get(&e.key) {
                Some(n) => self.diff(&e.value, o, n, Some(e.key_start), edits)?,
                None => {
                    if !self.starts_line(e.key_start) {
                        return unspliceable(format!("key {:?} does not start its line", e.key));
                    }
                    let (from, to) = (self.line_start(e.key_start), self.next_line(e.end() - 1));
                    edits.push(Edit::replace(from, to, String::new()));
                }
            }
        }
        let added = self.entries(new.iter().filter(|(k, _)| !old.contains_key(*k)), indent);
        if !added.is_empty() {
            let at = self.after(end, indent);
            edits.push(Edit::insert(at, self.terminated(at, added)));
        }
        Ok(())
    }

    /// Old items are matched to new ones in order: an equal item is kept; an item found
    /// nowhere later on either side was changed in place; otherwise new items are inserted
    /// before the old one, or the old one was removed.
    fn diff_seq<'v>(
        &self,
        items: &[Node],
        end: usize,
        old: &[Value],
        new: &'v [Value],
        edits: &mut Vec<Edit<'v>>,
    ) -> Result<(), Unspliceable> {
        if items.len() != old.len() {
            return unspliceable("a list is not what the text says");
        }
        // Matching is quadratic when many items change; injection changes a few.
        if old.len().saturating_mul(new.len()) > 1_000_000 {
            return unspliceable("a long list changed");
        }
        let dashes: Vec<usize> = items
            .iter()
            .map(|i| self.dash(i))
            .collect::<Option<_>>()
            .ok_or_else(|| Unspliceable("a list item does not start its line".into()))?;
        let dash_col = dashes.first().map(|d| self.col(*d)).unwrap_or(0);
        // An item's lines, from its dash to the end of its last line.
        let removal = |k: usize| {
            let to = self.next_line(items[k].end().max(dashes[k] + 1) - 1);
            Edit::replace(self.line_start(dashes[k]), to, String::new())
        };
        let (mut i, mut j) = (0, 0);
        while i < old.len() && j < new.len() {
            if old[i] == new[j] {
                (i, j) = (i + 1, j + 1);
                continue;
            }
            let old_stays = new[j..].contains(&old[i]);
            if !old_stays && !old[i..].contains(&new[j]) {
                self.diff(&items[i], &old[i], &new[j], None, edits)?;
                (i, j) = (i + 1, j + 1);
            } else if !old_stays {
                edits.push(removal(i));
                i += 1;
            } else {
                let block = Block::lines(self.items(&new[j..j + 1], dash_col));
                edits.push(Edit::insert(self.line_start(dashes[i]), block));
                j += 1;
            }
        }
        edits.extend((i..old.len()).map(removal));
        if j < new.len() {
            let at = self.after(end, dash_col);
            let parts = self.items(&new[j..], dash_col);
            edits.push(Edit::insert(at, self.terminated(at, parts)));
        }
        Ok(())
    }

    /// Lines inserted at `at`; at the very end of a text that lacks a final line end, they
    /// need one first.
    fn terminated<'v>(&self, at: usize, parts: Vec<Part<'v>>) -> Insert<'v> {
        let unterminated =
            at == self.text.len() && !self.text.is_empty() && !self.text.ends_with('\n');
        Insert::Block(Block {
            before: if unterminated { "\n" } else { "" },
            parts,
            open_end: false,
        })
    }

    /// New entries of a block mapping whose keys are at column `indent`.
    fn entries<'v>(
        &self,
        entries: impl Iterator<Item = (&'v String, &'v Value)>,
        indent: usize,
    ) -> Vec<Part<'v>> {
        entries
            .map(|(k, value)| Part {
                lead: Lead::Key(k.clone()),
                col: indent,
                value,
            })
            .collect()
    }

    /// New items of a block sequence whose dashes are at column `dash_col`.
    fn items<'v>(&self, items: &'v [Value], dash_col: usize) -> Vec<Part<'v>> {
        items
            .iter()
            .map(|value| Part {
                lead: Lead::Dash,
                col: dash_col,
                value,
            })
            .collect()
    }

    /// The dash column of a list under a key at `key_col`, in the document's list style.
    fn list_col(&self, key_col: usize) -> usize {
        if self.indented_lists {
            key_col + self.step
        } else {
            key_col
        }
    }

    fn block_entry(&self, key: &str, value: &Value, indent: usize, out: &mut String) {
        let key = scalar(&Value::String(key.into()));
        let _ = write!(out, "{:indent$}{key}:", "");
        match value {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                self.block_map(m, indent + self.step, out);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                self.block_seq(a, self.list_col(indent), out);
            }
            v => {
                let text = self.block_scalar(v, indent + self.step);
                let _ = writeln!(out, " {text}");
            }
        }
    }

    /// A scalar in block context: a multi-line string as a literal block (`|`) indented at
    /// `indent`, anything else on the line.
    fn block_scalar(&self, v: &Value, indent: usize) -> String {
        match v {
            Value::String(s) if is_literal(s) => literal(s, indent),
            v => inline(v),
        }
    }

    fn block_map(&self, map: &Map<String, Value>, indent: usize, out: &mut String) {
        for (k, v) in map {
            self.block_entry(k, v, indent, out);
        }
    }

    fn block_seq(&self, items: &[Value], dash_col: usize, out: &mut String) {
        for item in items {
            match item {
                Value::Object(m) if !m.is_empty() => {
                    let mut lines = String::new();
                    self.block_map(m, dash_col + 2, &mut lines);
                    let _ = write!(out, "{:dash_col$}- {}", "", &lines[dash_col + 2..]);
                }
                v => {
                    let text = self.block_scalar(v, dash_col + 2);
                    let _ = writeln!(out, "{:dash_col$}- {text}", "");
                }
            }
        }
    }
}

/// A value on one line: a scalar, or an empty or nested collection in flow style.
fn inline(v: &Value) -> String {
    match v {
        Value::Object(_) | Value::Array(_) => flow(v),
        v => scalar(v),
    }
}

/// Whether a string is written as a literal block: it spans lines, every character
/// prints, it does not start with a blank, and it has at most one final line end — two
/// would need `|+`, which takes in the blank lines that follow it in the document (found by
/// a test of the skeleton check), so such strings stay on one line, quoted.
fn is_literal(s: &str) -> bool {
    let printable = s.chars().all(|c| c == '\n' || c == '\t' || !c.is_control());
    s.contains('\n') && printable && !s.starts_with([' ', '\t', '\n']) && !s.ends_with("\n\n")
}

/// Whether a value's text ends inside a literal block (its last leaf is one): a literal
/// takes in a following line of spaces deeper than its own indentation, so what reads right
/// alone can read wrong in place (found by fuzzing the splicer).
fn ends_in_literal(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.values().next_back().is_some_and(ends_in_literal),
        Value::Array(a) => a.last().is_some_and(ends_in_literal),
        Value::String(s) => is_literal(s),
        _ => false,
    }
}

/// A multi-line string with at most one final line end as a literal block scalar (`|` or
/// `|-`), its lines indented at `indent`.
fn literal(s: &str, indent: usize) -> String {
    let body = s.strip_suffix('\n');
    let mut text = String::from(if body.is_some() { "|" } else { "|-" });
    for line in body.unwrap_or(s).split('\n') {
        text.push('\n');
        if !line.is_empty() {
            let _ = write!(text, "{:indent$}{line}", "");
        }
    }
    text
}

/// A value in flow style, `{key: value, …}` / `[a, b]`, with scalars quoted where flow
/// context needs it.
fn flow(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let entries: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", flow_scalar(&Value::String(k.clone())), flow(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        v => flow_scalar(v),
    }
}

/// A scalar in flow context: as in block context unless it holds a flow indicator, then
/// double-quoted.
fn flow_scalar(v: &Value) -> String {
    let text = scalar(v);
    let indicators = |c: char| matches!(c, ',' | '[' | ']' | '{' | '}');
    if v.is_string() && !text.starts_with(['"', '\'']) && text.contains(indicators) {
        serde_json::to_string(v).unwrap_or_default()
    } else {
        text
    }
}

/// A scalar as YAML writes it, quoted only when it must be; a multi-line string in double
/// quotes, so that it stays on one line.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) if is_plain(s) => s.clone(),
        Value::String(s) => {
            let text = serde_yaml::to_string(s).unwrap_or_default();
            let text = text.strip_suffix('\n').unwrap_or(&text);
            if text.contains('\n') || text.starts_with('|') || text.starts_with('>') {
                serde_json::to_string(v).unwrap_or_default()
            } else {
                text.to_string()
            }
        }
        v => serde_json::to_string(v).unwrap_or_default(),
    }
}

/// Whether a string can be written plain and read back as the same string, by a rule
/// simpler than YAML's (anything else goes through the YAML emitter, which knows them all):
/// a letter, `/`, `_` or `$` first, then letters, digits and `./_-$(),=`, a `:` not
/// followed by a space and not last, or a space not last and not followed by `#`; never a
/// word YAML reads as a boolean or null.
fn is_plain(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || matches!(first, b'/' | b'_' | b'$')) {
        return false;
    }
    let body_ok = bytes.iter().enumerate().all(|(i, &b)| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'.' | b'/' | b'_' | b'-' | b'$' | b'(' | b')' | b',' | b'='
            )
            || b == b':' && bytes.get(i + 1).is_some_and(|n| *n != b' ')
            || b == b' ' && bytes.get(i + 1).is_some_and(|n| *n != b'#' && *n != b' ')
    });
    const WORDS: &[&str] = &["true", "false", "yes", "no", "on", "off", "y", "n", "null"];
    body_ok && !WORDS.iter().any(|w| s.eq_ignore_ascii_case(w))
}

mod patch;

#[cfg(test)]
mod tests;
