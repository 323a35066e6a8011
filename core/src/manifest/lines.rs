//! Where the objects of a document are, in lines and columns, for reports that point into the
//! user's file (`check -o sarif`). The positions come from the YAML reader's own marks
//! (libyaml's, as the splicer uses them: `libyaml.rs`), never from searching the text.

use super::libyaml::{Event, Events, Kind};

/// A stretch of a document's text: 1-based lines, 1-based columns counted in characters
/// (Unicode code points); the end is the position just past the object's last character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start_line: usize,
    pub start_column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

/// The objects of one document: the root, and the entries of its `items` list when it has one
/// (a `kind: List`), in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Objects {
    pub root: Option<Region>,
    pub items: Vec<Region>,
}

/// Reads `doc` (one document of a stream, as `split` gives it) for the regions of its objects.
/// A document the reader refuses gives what was read before the error: the caller has parsed
/// the document already and reports its errors; positions are a help, not a verdict.
pub fn objects(doc: &str) -> Objects {
    let mut walk = Walk::default();
    for event in Events::new(doc) {
        let Ok(event) = event else { break };
        walk.step(&event);
    }
    let lines = Lines::new(doc);
    Objects {
        root: walk.root.map(|(start, end)| lines.region(start, end)),
        items: walk
            .items
            .iter()
            .map(|&(start, end)| lines.region(start, end))
            .collect(),
    }
}

/// The reader's position in the tree: how deep it is, and what the root's and the `items`
/// list's children are so far.
#[derive(Default)]
struct Walk {
    depth: usize,
    /// Nodes seen directly under the root mapping (even: a key, odd: its value).
    root_children: usize,
    /// The last key of the root mapping was `items`.
    after_items_key: bool,
    /// The depth of the `items` list's children while the reader is inside it.
    items_depth: Option<usize>,
    /// Where the root, or the current item, started (bytes).
    root_start: Option<usize>,
    item_start: Option<usize>,
    /// Just past the last character read: the end of the last scalar or flow collection. (A
    /// block collection's end event sits at the next token, past any comments between.)
    last_end: usize,
    /// Where the root and each item start and end.
    root: Option<(usize, usize)>,
    items: Vec<(usize, usize)>,
}

impl Walk {
    fn step(&mut self, event: &Event) {
        match &event.kind {
            Kind::MappingStart { .. } | Kind::SequenceStart { .. } => {
                let is_seq = matches!(event.kind, Kind::SequenceStart { .. });
                self.node_starts(event.start, is_seq);
                self.depth += 1;
            }
            Kind::MappingEnd | Kind::SequenceEnd => {
                self.depth = self.depth.saturating_sub(1);
                if event.end > event.start {
                    self.last_end = event.end;
                }
                self.node_ends();
            }
            Kind::Scalar { value, .. } => {
                let key_items = self.depth == 1 && self.root_children % 2 == 0 && value == "items";
                self.node_starts(event.start, false);
                self.last_end = event.end;
                self.node_ends();
                if self.depth == 1 && self.root_children % 2 == 1 {
                    self.after_items_key = key_items;
                }
            }
            Kind::Alias => {
                self.node_starts(event.start, false);
                self.last_end = event.end;
                self.node_ends();
            }
            Kind::DocumentStart | Kind::DocumentEnd => {}
        }
    }

    /// A node starts at the current depth (`self.depth` is its parent's depth + 1 for the root's
    /// children, and so on).
    fn node_starts(&mut self, start: usize, is_seq: bool) {
        match self.depth {
            0 => self.root_start = Some(start),
            1 if is_seq && self.root_children % 2 == 1 && self.after_items_key => {
                self.items_depth = Some(2);
            }
            1 => {}
            d if self.items_depth == Some(d) => self.item_start = Some(start),
            _ => {}
        }
    }

    /// A node ended, the reader now back at its parent's depth.
    fn node_ends(&mut self) {
        match self.depth {
            0 => {
                if let Some(start) = self.root_start.take() {
                    self.root = Some((start, self.last_end));
                }
            }
            1 => {
                self.root_children += 1;
                self.items_depth = None;
            }
            d if self.items_depth == Some(d) => {
                if let Some(start) = self.item_start.take() {
                    self.items.push((start, self.last_end));
                }
            }
            _ => {}
        }
    }
}

/// Where each line of a document starts, found once: a `List` of many items asks for a
/// position per item, and counting from the top each time would be quadratic.
struct Lines<'d> {
    doc: &'d str,
    /// Byte offsets of line starts; lines end with `\n`, as `split_numbered` counts them.
    starts: Vec<usize>,
}

impl<'d> Lines<'d> {
    fn new(doc: &'d str) -> Lines<'d> {
        let ends = doc.match_indices('\n').map(|(i, _)| i + 1);
        Lines {
            doc,
            starts: std::iter::once(0).chain(ends).collect(),
        }
    }

    fn region(&self, start: usize, end: usize) -> Region {
        let (start_line, start_column) = self.position(start);
        let (end_line, end_column) = self.position(end);
        Region {
            start_line,
            start_column,
            end_line,
            end_column,
        }
    }

    /// The 1-based line and column (in characters) of byte `at`.
    fn position(&self, at: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= at).max(1);
        let from = self.starts[line - 1];
        let column = self.doc.get(from..at).map_or(0, |s| s.chars().count());
        (line, column + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_documents_root_starts_at_its_first_key() {
        let doc = "# a comment\n\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n";
        let o = objects(doc);
        let root = o.root.expect("a root");
        assert_eq!(
            root,
            Region {
                start_line: 3,
                start_column: 1,
                end_line: 6,
                end_column: 12
            }
        );
        assert!(o.items.is_empty());
    }

    #[test]
    fn each_item_of_a_list_has_its_own_region() {
        let doc = "apiVersion: v1\nkind: List\nitems:\n- kind: Deployment\n  metadata: {name: a}\n# between\n-   kind: Pod\n    metadata:\n      name: b\nmetadata: {}\n";
        let o = objects(doc);
        assert_eq!(o.items.len(), 2, "{o:?}");
        assert_eq!((o.items[0].start_line, o.items[0].start_column), (4, 3));
        assert_eq!(o.items[0].end_line, 5);
        assert_eq!((o.items[1].start_line, o.items[1].start_column), (7, 5));
        assert_eq!(o.items[1].end_line, 9);
    }

    #[test]
    fn a_flow_document_and_nested_items_keys_are_not_confused() {
        let doc = "{\"kind\": \"List\", \"spec\": {\"items\": [1, 2]},\n \"items\": [{\"kind\": \"Pod\"}]}\n";
        let o = objects(doc);
        assert_eq!(o.items.len(), 1, "{o:?}");
        assert_eq!((o.items[0].start_line, o.items[0].start_column), (2, 12));
        assert_eq!(o.items[0].end_line, 2);
    }

    #[test]
    fn a_value_named_items_is_not_the_list() {
        let doc = "kind: ConfigMap\ndata:\n  x: items\nname: items\nother: [a]\n";
        assert!(objects(doc).items.is_empty());
    }

    #[test]
    fn an_unreadable_document_gives_what_was_read() {
        let o = objects("kind: List\nitems:\n- a: 1\n- b: [\n");
        assert_eq!(o.items.len(), 1);
        assert!(o.root.is_none());
    }
}
