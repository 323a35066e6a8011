//! Splicing a patch's additions straight into a document's text.
//!
//! `inject` knows its change exactly: a few `add` operations (`core/src/patch.rs`). Applying
//! them to a copy of the document and comparing the two values along the text (the diff in
//! `splice.rs`) costs more than reading the document did, and most of it goes to copying the
//! proxy container into a value only to find it again. Here each add goes to the node of the
//! text its path names instead, and what it adds is written there:
//!
//! - a new key of a block mapping goes after the mapping's last entry and that entry's comments,
//!   at the mapping's indentation; a new item of a block list goes before the item whose place
//!   it takes (its dash line), or after the last one, at the list's dash column: the places
//!   the diff uses;
//! - a mapping or list that an add creates and later adds fill is written whole, as one entry;
//! - the shared proxy, init container and volumes (`Added::Shared`) are rendered and checked
//!   once per config, lead, column and document style, and then held by reference in the
//!   output (a [`Rope`]), the pod's inbound ports written into the proxy's one hole as a
//!   one-line scalar; other values go through the splicer's memory of checked texts
//!   (`Splicer::part`).
//!
//! Nothing is read back, so nothing is placed where the surroundings could change how it
//! reads. Every mapping and list on a path must be in block style and hold what the
//! document's value holds there (the same keys in the same order, the same number of items);
//! the text may not use anchors, aliases, tags, merge keys or explicit keys, nor break lines
//! other than with LF or CRLF; what follows inserted lines must not belong to the collection
//! they go into, nor be a line of blanks (or an empty line, where a literal block could take
//! it in: [`following`]). Each of these was found by fuzzing or by the tests. Where any
//! fails this returns [`Unspliceable`], and the caller applies the patch and writes the
//! document the general way, which checks what it writes.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::Value;

use super::{
    blanks_follow, ends_in_literal, in_order, scalar, unspliceable, Doc, Lead, Node, Part, Spans,
    Splicer, Unspliceable, REMEMBERED,
};
use crate::manifest::Rope;
use crate::patch::{Added, Patch, Shared};

/// A value an add writes into the text.
enum New<'p> {
    Value(&'p Value),
    /// Shared by the documents of one config, with this document's text for its hole.
    Shared(&'p Arc<Shared>, &'p str),
    /// A mapping created by an add, filled by the adds after it.
    Map(Vec<(String, New<'p>)>),
    /// A list created by an add, filled by the adds after it.
    Seq(Vec<New<'p>>),
}

impl<'p> New<'p> {
    fn of(added: &'p Added) -> New<'p> {
        match added {
            Added::Value(Value::Object(m)) if m.is_empty() => New::Map(Vec::new()),
            Added::Value(Value::Array(a)) if a.is_empty() => New::Seq(Vec::new()),
            Added::Value(v) => New::Value(v),
            Added::Shared(s, fill) => New::Shared(s, fill),
        }
    }

    /// Adds `value` at `tokens` (not empty) inside this new value, as RFC 6902 does.
    fn add(&mut self, tokens: &[Cow<'_, str>], value: New<'p>) -> Result<(), Unspliceable> {
        let Some((token, tail)) = tokens.split_first() else {
            return unspliceable("an add replaces what an earlier add wrote");
        };
        match self {
            New::Map(entries) => match entries.iter_mut().find(|(k, _)| k == token) {
                Some((_, v)) if tail.is_empty() => *v = value,
                Some((_, v)) => v.add(tail, value)?,
                None if tail.is_empty() => entries.push((token.to_string(), value)),
                None => return unspliceable("an add goes into a key that is not there"),
            },
            New::Seq(items) if tail.is_empty() => {
                let at = index(token, items.len() + 1)?;
                items.insert(at, value);
            }
            New::Seq(items) => {
                let at = index(token, items.len())?;
                items[at].add(tail, value)?;
            }
            New::Value(_) | New::Shared(..) => {
                return unspliceable("an add goes into a value an earlier add wrote whole")
            }
        }
        Ok(())
    }
}

/// A list index of a path (`-` is one past the last item), below `bound`.
fn index(token: &str, bound: usize) -> Result<usize, Unspliceable> {
    let at = if token == "-" {
        bound.saturating_sub(1)
    } else {
        token
            .parse::<usize>()
            .map_err(|_| Unspliceable(format!("{token:?} is not a list index")))?
    };
    if at >= bound {
        return unspliceable("an add goes past the end of a list");
    }
    Ok(at)
}

/// A path token unescaped (RFC 6901), borrowed when it holds no escape (a patch's paths are
/// built from unescaped tokens, so each is well escaped).
fn decoded(token: &str) -> Cow<'_, str> {
    match jsonptr::Token::from_encoded(token) {
        Ok(t) if token.contains('~') => Cow::Owned(t.decoded().into_owned()),
        _ => Cow::Borrowed(token),
    }
}

/// What the adds do to one block collection of the text.
enum Change<'p> {
    /// New entries after the mapping's last.
    Entries(Vec<(String, New<'p>)>),
    /// The list's items: those of the text by index, and new ones among them.
    Items(Vec<Slot<'p>>),
}

enum Slot<'p> {
    Old(usize),
    New(New<'p>),
}

/// The adds of a document, placed on the nodes of its text.
#[derive(Default)]
struct Placed<'n, 'p> {
    /// Each changed collection, with its depth in the document.
    changes: Vec<(&'n Node, usize, Change<'p>)>,
    /// Scalars of the text an add gives another scalar value: their span and that value.
    scalars: Vec<(usize, usize, &'p Value)>,
}

impl<'n, 'p> Placed<'n, 'p> {
    /// The change of `node`, `fresh` until something was placed there.
    fn change(
        &mut self,
        node: &'n Node,
        depth: usize,
        fresh: impl FnOnce() -> Change<'p>,
    ) -> usize {
        match self
            .changes
            .iter()
            .position(|(n, ..)| std::ptr::eq(*n, node))
        {
            Some(i) => i,
            None => {
                self.changes.push((node, depth, fresh()));
                self.changes.len() - 1
            }
        }
    }

    /// Places one add: `tokens` from the document's root, `value` what it adds.
    fn place(
        &mut self,
        root: &'n Node,
        doc: &Value,
        tokens: &[Cow<'_, str>],
        value: New<'p>,
    ) -> Result<(), Unspliceable> {
        let (mut node, mut val, mut rest) = (root, doc, tokens);
        loop {
            let Some((token, tail)) = rest.split_first() else {
                return unspliceable("an add replaces the whole document");
            };
            let depth = tokens.len() - rest.len();
            match node {
                Node::Map {
                    flow: false,
                    entries,
                    ..
                } => {
                    let same_keys = val.as_object().is_some_and(|m| {
                        m.len() == entries.len() && m.keys().zip(entries).all(|(k, e)| *k == e.key)
                    });
                    if !same_keys {
                        return unspliceable("a mapping is not what the text says");
                    }
                    let i = self.change(node, depth, || Change::Entries(Vec::new()));
                    let Change::Entries(added) = &mut self.changes[i].2 else {
                        return unspliceable("a mapping taken for a list");
                    };
                    if let Some((_, new)) = added.iter_mut().find(|(k, _)| k == token) {
                        if !tail.is_empty() {
                            return new.add(tail, value);
                        }
                        *new = value;
                        return Ok(());
                    }
                    match entries.iter().find(|e| e.key == **token) {
                        Some(e) if tail.is_empty() => {
                            return self.replace(&e.value, &val[token.as_ref()], value)
                        }
                        Some(e) => (node, val, rest) = (&e.value, &val[token.as_ref()], tail),
                        None if tail.is_empty() => {
                            added.push((token.to_string(), value));
                            return Ok(());
                        }
                        None => return unspliceable("an add goes into a key that is not there"),
                    }
                }
                Node::Seq {
                    flow: false, items, ..
                } => {
                    let Some(vals) = val.as_array().filter(|a| a.len() == items.len()) else {
                        return unspliceable("a list is not what the text says");
                    };
                    let fresh = || Change::Items((0..items.len()).map(Slot::Old).collect());
                    let i = self.change(node, depth, fresh);
                    let Change::Items(slots) = &mut self.changes[i].2 else {
                        return unspliceable("a list taken for a mapping");
                    };
                    if tail.is_empty() {
                        let at = index(token, slots.len() + 1)?;
                        slots.insert(at, Slot::New(value));
                        return Ok(());
                    }
                    let at = index(token, slots.len())?;
                    match &mut slots[at] {
                        Slot::Old(k) => (node, val, rest) = (&items[*k], &vals[*k], tail),
                        Slot::New(new) => return new.add(tail, value),
                    }
                }
                _ => return unspliceable("an add goes into a flow node or a scalar"),
            }
        }
    }

    /// An add to a key the text has: a scalar given another scalar is replaced in place (the
    /// same value is no change at all); anything else is not spliced here.
    fn replace(&mut self, node: &Node, old: &Value, value: New<'p>) -> Result<(), Unspliceable> {
        let New::Value(new) = value else {
            return unspliceable("an add replaces a key with a collection");
        };
        match node {
            _ if old == new => Ok(()),
            Node::Scalar {
                start,
                end,
                block: false,
            } if start < end && !new.is_object() && !new.is_array() => {
                self.scalars.push((*start, *end, new));
                Ok(())
            }
            _ => unspliceable("an add replaces a collection or a block scalar"),
        }
    }
}

/// The text of one shared value at one place, checked on its own: before and after its hole.
pub(super) struct SharedText {
    shared: Arc<Shared>,
    lead: Lead,
    col: usize,
    step: usize,
    indented_lists: bool,
    /// Shared by every document that gets this text: held once in the output ([`Rope`]).
    before: Arc<str>,
    /// `None`: the value has no hole, and `before` is all of it.
    after: Option<Arc<str>>,
    literal_end: bool,
}

/// What a hole holds while its value is rendered: a plain scalar no rendering produces.
const MARK: &str = "proxy-injector-hole-5b3f0c";

impl Splicer {
    /// `text` with `patches` (each at the document's root, or at the given item of a `List`)
    /// written into it; `doc` is the value the text reads as.
    pub fn splice_patches(
        &mut self,
        text: &str,
        doc: &Value,
        patches: &[(Option<usize>, Patch)],
    ) -> Result<String, Unspliceable> {
        self.splice_patches_with(text, &Spans::of(text), doc, patches)
            .map(|rope| rope.to_string())
    }

    /// [`Splicer::splice_patches`], with the text's spans read already (with `doc`), as a
    /// [`Rope`] that holds the shared texts by reference.
    pub fn splice_patches_with(
        &mut self,
        text: &str,
        spans: &Spans,
        doc: &Value,
        patches: &[(Option<usize>, Patch)],
    ) -> Result<Rope, Unspliceable> {
        // Merge keys, anchors, tags and the like left the text without spans (`reader.rs`).
        let root = spans.root()?;
        if other_line_breaks(text) {
            return unspliceable("it breaks lines other than with LF or CRLF");
        }
        if explicit_keys(text) {
            return unspliceable("it has an explicit key (`? `)");
        }
        let mut placed = Placed::default();
        for (item, patch) in patches {
            let prefix = item.map(|i| [Cow::Borrowed("items"), Cow::Owned(i.to_string())]);
            for (path, added) in patch.adds() {
                let mut tokens: Vec<Cow<'_, str>> = prefix.iter().flatten().cloned().collect();
                tokens.extend(path.as_str().split('/').skip(1).map(decoded));
                placed.place(root, doc, &tokens, New::of(added))?;
            }
        }
        let doc = Doc::new(text, root);
        let mut edits: Vec<(usize, usize, Rope)> = placed
            .scalars
            .iter()
            .map(|&(from, to, v)| (from, to, Rope::from(scalar(v))))
            .collect();
        // Where a collection ends, the one it is in may end too: what goes into the inner one
        // is written first.
        placed
            .changes
            .sort_by_key(|(_, depth, _)| std::cmp::Reverse(*depth));
        for (node, _, change) in &placed.changes {
            self.write_change(&doc, node, change, &mut edits)?;
        }
        if text.contains("\r\n") {
            for e in &mut edits {
                e.2 = e.2.with_crlf();
            }
        }
        self.counts.patched += 1;
        let mut out = Rope::new();
        for (stretch, edit) in in_order(text, &edits)? {
            out.push_str(&text[stretch]);
            if let Some(i) = edit {
                out.append(std::mem::take(&mut edits[i].2));
            }
        }
        Ok(out)
    }

    /// The insertions of one collection's change.
    fn write_change(
        &mut self,
        doc: &Doc<'_>,
        node: &Node,
        change: &Change<'_>,
        edits: &mut Vec<(usize, usize, Rope)>,
    ) -> Result<(), Unspliceable> {
        match (node, change) {
            (Node::Map { entries, end, .. }, Change::Entries(added)) if !added.is_empty() => {
                let Some(first) = entries.first() else {
                    return unspliceable("an empty block mapping");
                };
                let line = doc.line_start(first.key_start);
                if !doc.text[line..first.key_start]
                    .bytes()
                    .all(|b| b == b' ' || b == b'-')
                {
                    return unspliceable("a mapping's first key is not indented by spaces");
                }
                let indent = doc.col(first.key_start);
                let at = doc.after(*end, indent);
                if next_content(doc, at).is_some_and(|(col, _)| col >= indent) {
                    return unspliceable("the mapping goes on after its last entry's text");
                }
                let mut lines = Rope::new();
                let mut literal_end = false;
                for (k, new) in added {
                    literal_end =
                        self.render(doc, &Lead::Key(k.clone()), indent, new, &mut lines)?;
                }
                following(doc, at, literal_end)?;
                edits.push((at, at, lines));
            }
            (Node::Seq { items, end, .. }, Change::Items(slots)) => {
                let dashes: Vec<usize> = items
                    .iter()
                    .map(|i| doc.dash(i))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                    Unspliceable("a list item does not start its line".into())
                })?;
                let Some(dash_col) = dashes.first().map(|d| doc.col(*d)) else {
                    return unspliceable("an empty block list");
                };
                let mut lines = Rope::new();
                let mut literal_end = false;
                for slot in slots {
                    match slot {
                        Slot::New(new) => {
                            literal_end =
                                self.render(doc, &Lead::Dash, dash_col, new, &mut lines)?
                        }
                        Slot::Old(k) if !lines.is_empty() => {
                            let at = doc.line_start(dashes[*k]);
                            edits.push((at, at, std::mem::take(&mut lines)));
                        }
                        Slot::Old(_) => {}
                    }
                }
                if !lines.is_empty() {
                    // An empty last item has no text to end: the list ends after its dash
                    // (found by fuzzing).
                    let last = dashes.last().map_or(*end, |d| (*end).max(d + 1));
                    let at = doc.after(last, dash_col);
                    let goes_on = |(col, item)| col > dash_col || col == dash_col && item;
                    if next_content(doc, at).is_some_and(goes_on) {
                        return unspliceable("the list goes on after its last item's text");
                    }
                    following(doc, at, literal_end)?;
                    edits.push((at, at, lines));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes `new` as an entry (`Lead::Key`) or item (`Lead::Dash`) at column `col`; says
    /// whether its text ends in a literal block.
    fn render(
        &mut self,
        doc: &Doc<'_>,
        lead: &Lead,
        col: usize,
        new: &New<'_>,
        out: &mut Rope,
    ) -> Result<bool, Unspliceable> {
        match (new, lead) {
            (New::Value(value), _) => {
                let part = Part {
                    lead: lead.clone(),
                    col,
                    value,
                };
                out.push_str(&self.part(doc, &part)?);
                Ok(ends_in_literal(value))
            }
            (New::Shared(shared, fill), _) => self.shared(doc, lead, col, shared, fill, out),
            (New::Map(entries), Lead::Key(k)) => {
                let children = entries
                    .iter()
                    .map(|(k, v)| (Lead::Key(k.clone()), col + doc.step, v));
                self.created(doc, k, col, "{}", children, out)
            }
            (New::Seq(items), Lead::Key(k)) => {
                let children = items.iter().map(|v| (Lead::Dash, doc.list_col(col), v));
                self.created(doc, k, col, "[]", children, out)
            }
            (New::Map(_) | New::Seq(_), Lead::Dash) => {
                unspliceable("a list item that later adds fill")
            }
        }
    }

    /// Writes a mapping or list an add created, as the entry `key` at column `col`: its
    /// children on the lines below, each at its own lead and column, or `empty` on the line.
    fn created<'c, 'p: 'c>(
        &mut self,
        doc: &Doc<'_>,
        key: &str,
        col: usize,
        empty: &str,
        children: impl ExactSizeIterator<Item = (Lead, usize, &'c New<'p>)>,
        out: &mut Rope,
    ) -> Result<bool, Unspliceable> {
        let key = scalar(&Value::String(key.to_string()));
        if children.len() == 0 {
            let _ = writeln!(out, "{:col$}{key}: {empty}", "");
            return Ok(false);
        }
        let _ = writeln!(out, "{:col$}{key}:", "");
        let mut literal_end = false;
        for (lead, col, child) in children {
            literal_end = self.render(doc, &lead, col, child, out)?;
        }
        Ok(literal_end)
    }

    /// Writes a shared value: its text at this place rendered and checked once, this
    /// document's text in its hole.
    fn shared(
        &mut self,
        doc: &Doc<'_>,
        lead: &Lead,
        col: usize,
        shared: &Arc<Shared>,
        fill: &str,
        out: &mut Rope,
    ) -> Result<bool, Unspliceable> {
        let found = self.shared.iter().position(|t| {
            Arc::ptr_eq(&t.shared, shared)
                && t.lead == *lead
                && (t.col, t.step, t.indented_lists) == (col, doc.step, doc.indented_lists)
        });
        let i = match found {
            Some(i) => {
                self.counts.reused += 1;
                i
            }
            None => {
                let text = shared_text(doc, lead, col, shared)?;
                self.counts.rendered += 1;
                if self.shared.len() >= REMEMBERED {
                    self.shared.clear();
                }
                self.shared.push(text);
                self.shared.len() - 1
            }
        };
        let text = &self.shared[i];
        out.push_shared(&text.before);
        if let Some(after) = &text.after {
            out.push_str(&scalar(&Value::String(fill.to_string())));
            out.push_shared(after);
        }
        Ok(text.literal_end)
    }
}

/// Whether the text may hold a block scalar that keeps its final line ends (`|+`, `>2+`, …).
fn keeps_empty_lines(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter()
        .enumerate()
        .any(|(i, &c)| matches!(c, b'|' | b'>') && b[i + 1..b.len().min(i + 3)].contains(&b'+'))
}

/// The first line from `at` on that holds more than blanks or a comment: its indentation,
/// and whether it is a list item (`-` and a blank). Where a collection's text ends is known
/// from its last node's span, and an empty node has none (found by fuzzing): what follows
/// must not belong to the collection.
fn next_content(doc: &Doc<'_>, at: usize) -> Option<(usize, bool)> {
    doc.text.get(at..)?.split('\n').find_map(|line| {
        let content = line.trim_start_matches(' ');
        let blank = content.trim_matches([' ', '\t', '\r']).is_empty();
        if blank || content.starts_with('#') {
            return None;
        }
        let item = content
            .strip_prefix('-')
            .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '\r']));
        Some((line.len() - content.len(), item))
    })
}

/// Whether the text breaks a line in a way YAML reads and the line arithmetic here does not:
/// a carriage return alone, or (YAML 1.1, which libyaml reads) NEL, LS or PS (a bare carriage
/// return found by fuzzing).
fn other_line_breaks(text: &str) -> bool {
    let bare_cr = text.contains('\r')
        && text
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == b'\r' && w[1] != b'\n')
        || text.ends_with('\r');
    bare_cr || !text.is_ascii() && text.contains(['\u{85}', '\u{2028}', '\u{2029}'])
}

/// Whether a line starts (after its indentation and any list dashes) with `?`, the explicit
/// key indicator: such a key can start on a later line, deeper than its mapping's entries,
/// and the mapping's indentation is no longer its first key's column (found by fuzzing).
fn explicit_keys(text: &str) -> bool {
    text.contains('?')
        && text.lines().any(|line| {
            let mut rest = line.trim_start_matches(' ');
            while let Some(r) = rest
                .strip_prefix('-')
                .filter(|r| r.starts_with([' ', '\t']))
            {
                rest = r.trim_start_matches([' ', '\t']);
            }
            rest.strip_prefix('?')
                .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t', '\r']))
        })
}

/// Renders a shared value at one place, with [`MARK`] in its hole, and checks it: alone, it
/// must read as the one entry or item it stands for, and the mark must stand once, as a
/// plain scalar ending its line, where any one-line scalar can stand instead.
fn shared_text(
    doc: &Doc<'_>,
    lead: &Lead,
    col: usize,
    shared: &Arc<Shared>,
) -> Result<SharedText, Unspliceable> {
    let value = shared.filled(MARK);
    let part = Part {
        lead: lead.clone(),
        col,
        value: &value,
    };
    let text = part.render(doc);
    if crate::manifest::parse(&text).ok().as_ref() != Some(&part.standing_alone()) {
        return unspliceable("an inserted entry does not read back as itself");
    }
    let (before, after) = match text.split_once(MARK) {
        _ if !shared.has_hole() => (Arc::from(text.as_str()), None),
        Some((b, a))
            if (b.ends_with(": ") || b.ends_with("- "))
                && a.starts_with('\n')
                && !a.contains(MARK) =>
        {
            (Arc::from(b), Some(Arc::from(a)))
        }
        _ => return unspliceable("a shared value's hole is not a one-line scalar"),
    };
    Ok(SharedText {
        shared: shared.clone(),
        lead: lead.clone(),
        col,
        step: doc.step,
        indented_lists: doc.indented_lists,
        before,
        after,
        literal_end: ends_in_literal(&value),
    })
}

/// Whether lines may be inserted at `at`, by what follows. A line of blanks there is refused
/// (`blanks_follow`): with a tab it can read differently after them (an error after a block
/// list), and with spaces deeper than a literal block before it, it is that block's content,
/// which the lines would cut off (found by fuzzing). An empty line there is refused where a
/// literal block could take it in: the inserted text's own last one, or a block before `at`
/// that keeps its final line ends (`|+`, found by fuzzing). Nothing is inserted at the end of
/// a text that lacks a final line end: the one it would need first can be the content of a
/// literal block ending there (found by fuzzing; the CLI's documents always end their lines).
fn following(doc: &Doc<'_>, at: usize, literal_end: bool) -> Result<(), Unspliceable> {
    if at == doc.text.len() && !doc.text.is_empty() && !doc.text.ends_with('\n') {
        return unspliceable("the text lacks a final line end");
    }
    let rest = doc.text.get(at..).unwrap_or_default();
    let empty_next = rest.starts_with('\n') || rest.starts_with("\r\n");
    if blanks_follow(doc.text, at) || empty_next && (literal_end || keeps_empty_lines(doc.text)) {
        return unspliceable("blank lines follow where lines are inserted");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
