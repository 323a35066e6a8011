//! libyaml's parser as a safe iterator of events with byte offsets.
//!
//! This is the parser serde_yaml runs (`unsafe-libyaml`, the same crate and version), so a
//! document is accepted and structured here exactly as [`super::parse`] accepts and structures
//! it; what serde_yaml adds on top (resolving plain scalars, refusing duplicate keys) is in
//! `reader.rs`. Its marks are byte offsets into the text, which the splicer edits.
//!
//! All `unsafe` code of the manifest reader is in this file. It follows serde_yaml's own
//! wrapper (`serde_yaml/src/libyaml/parser.rs`): the parser lives in a `Box` that never moves,
//! reads from a `&str` that outlives it, and each event is copied out and deleted before the
//! next one is parsed.

use std::mem::MaybeUninit;

use unsafe_libyaml as unsafe_sys;

/// One event, with where its token starts and ends in the text (bytes).
#[derive(Debug)]
pub(crate) struct Event {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Scalar {
        value: String,
        style: Style,
        /// It has an anchor (`&a`) or a tag (`!t`).
        marked: bool,
    },
    SequenceStart {
        flow: bool,
        marked: bool,
    },
    MappingStart {
        flow: bool,
        marked: bool,
    },
    SequenceEnd,
    MappingEnd,
    Alias,
    DocumentStart,
    DocumentEnd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Quoted,
    /// A literal (`|`) or folded (`>`) block.
    Block,
}

/// libyaml refused the text (the caller asks serde_yaml for the message), or gave a scalar
/// that is not UTF-8.
#[derive(Debug)]
pub(crate) struct Refused;

/// The events of one text, up to the end of the stream or the first error.
pub(crate) struct Events<'t> {
    parser: Box<MaybeUninit<unsafe_sys::yaml_parser_t>>,
    _text: std::marker::PhantomData<&'t str>,
    done: bool,
}

impl<'t> Events<'t> {
    pub fn new(text: &'t str) -> Events<'t> {
        let mut parser = Box::new(MaybeUninit::<unsafe_sys::yaml_parser_t>::uninit());
        let p = parser.as_mut_ptr();
        // SAFETY: `p` points to memory owned by the box, which stays where it is until `drop`;
        // initialisation only fails when malloc does (as serde_yaml, we then stop at once).
        // The input is borrowed for `'t`, which the iterator cannot outlive.
        let ok = unsafe {
            let ok = unsafe_sys::yaml_parser_initialize(p).ok;
            if ok {
                unsafe_sys::yaml_parser_set_encoding(p, unsafe_sys::YAML_UTF8_ENCODING);
                unsafe_sys::yaml_parser_set_input_string(p, text.as_ptr(), text.len() as u64);
            }
            ok
        };
        assert!(ok, "libyaml could not allocate its parser");
        Events {
            parser,
            _text: std::marker::PhantomData,
            done: false,
        }
    }
}

impl Iterator for Events<'_> {
    type Item = Result<Event, Refused>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let p = self.parser.as_mut_ptr();
        loop {
            let mut event = MaybeUninit::<unsafe_sys::yaml_event_t>::uninit();
            // SAFETY: the parser was initialised in `new`; after an error or the end of the
            // stream it is not called again (`done`). A parsed event is read, then deleted
            // once (which zeroes it: its type is read before).
            let (ty, converted) = unsafe {
                let e = event.as_mut_ptr();
                if unsafe_sys::yaml_parser_parse(p, e).fail {
                    self.done = true;
                    return Some(Err(Refused));
                }
                let ty = (*e).type_;
                let converted = convert(&*e);
                unsafe_sys::yaml_event_delete(e);
                (ty, converted)
            };
            if ty == unsafe_sys::YAML_STREAM_END_EVENT {
                self.done = true;
                return None;
            }
            if let Some(result) = converted {
                self.done |= result.is_err();
                return Some(result);
            }
        }
    }
}

/// Copies what the reader needs out of a libyaml event; `None` for stream events.
///
/// # Safety
/// `e` is an event that `yaml_parser_parse` filled and that has not been deleted yet.
unsafe fn convert(e: &unsafe_sys::yaml_event_t) -> Option<Result<Event, Refused>> {
    let marked = |anchor: *const u8, tag: *const u8| !anchor.is_null() || !tag.is_null();
    let kind = match e.type_ {
        unsafe_sys::YAML_SCALAR_EVENT => {
            // SAFETY: for a scalar event, `data.scalar` is the union's live field, and
            // `value` points to `length` bytes owned by the event.
            let (s, bytes) = unsafe {
                let s = e.data.scalar;
                (s, std::slice::from_raw_parts(s.value, s.length as usize))
            };
            let Ok(value) = std::str::from_utf8(bytes) else {
                return Some(Err(Refused));
            };
            Kind::Scalar {
                value: value.to_owned(),
                style: match s.style {
                    unsafe_sys::YAML_PLAIN_SCALAR_STYLE => Style::Plain,
                    unsafe_sys::YAML_LITERAL_SCALAR_STYLE
                    | unsafe_sys::YAML_FOLDED_SCALAR_STYLE => Style::Block,
                    _ => Style::Quoted,
                },
                marked: marked(s.anchor, s.tag),
            }
        }
        unsafe_sys::YAML_SEQUENCE_START_EVENT => {
            // SAFETY: the live field of a sequence start.
            let s = unsafe { e.data.sequence_start };
            Kind::SequenceStart {
                flow: s.style == unsafe_sys::YAML_FLOW_SEQUENCE_STYLE,
                marked: marked(s.anchor, s.tag),
            }
        }
        unsafe_sys::YAML_MAPPING_START_EVENT => {
            // SAFETY: the live field of a mapping start.
            let m = unsafe { e.data.mapping_start };
            Kind::MappingStart {
                flow: m.style == unsafe_sys::YAML_FLOW_MAPPING_STYLE,
                marked: marked(m.anchor, m.tag),
            }
        }
        unsafe_sys::YAML_SEQUENCE_END_EVENT => Kind::SequenceEnd,
        unsafe_sys::YAML_MAPPING_END_EVENT => Kind::MappingEnd,
        unsafe_sys::YAML_ALIAS_EVENT => Kind::Alias,
        unsafe_sys::YAML_DOCUMENT_START_EVENT => Kind::DocumentStart,
        unsafe_sys::YAML_DOCUMENT_END_EVENT => Kind::DocumentEnd,
        _ => return None,
    };
    Some(Ok(Event {
        kind,
        start: e.start_mark.index as usize,
        end: e.end_mark.index as usize,
    }))
}

impl Drop for Events<'_> {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` (which panics otherwise), deleted once, here.
        unsafe { unsafe_sys::yaml_parser_delete(self.parser.as_mut_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Kind, usize, usize)> {
        Events::new(text)
            .map(|e| e.map(|e| (e.kind, e.start, e.end)))
            .collect::<Result<_, _>>()
            .expect("readable")
    }

    #[test]
    fn offsets_are_bytes_and_styles_are_known() {
        let ev = kinds("é: [x, 'y']\n");
        let scalar = |v: &str, style| Kind::Scalar {
            value: v.into(),
            style,
            marked: false,
        };
        assert_eq!(
            ev,
            vec![
                (Kind::DocumentStart, 0, 0),
                (
                    Kind::MappingStart {
                        flow: false,
                        marked: false
                    },
                    0,
                    0
                ),
                (scalar("é", Style::Plain), 0, 2),
                (
                    Kind::SequenceStart {
                        flow: true,
                        marked: false
                    },
                    4,
                    5
                ),
                (scalar("x", Style::Plain), 5, 6),
                (scalar("y", Style::Quoted), 8, 11),
                (Kind::SequenceEnd, 11, 12),
                (Kind::MappingEnd, 13, 13),
                (Kind::DocumentEnd, 13, 13),
            ]
        );
    }

    #[test]
    fn anchors_tags_and_errors_are_reported() {
        let ev = kinds("a: &x 1\nb: *x\nc: !t [1]\n");
        assert!(ev.iter().any(|(k, ..)| *k == Kind::Alias));
        let marked = ev
            .iter()
            .filter(|(k, ..)| {
                matches!(
                    k,
                    Kind::Scalar { marked: true, .. } | Kind::SequenceStart { marked: true, .. }
                )
            })
            .count();
        assert_eq!(marked, 2);
        let events: Vec<_> = Events::new("a: [\n").collect();
        assert!(matches!(events.last(), Some(Err(Refused))), "{events:?}");
        assert_eq!(Events::new("a: b: c\n").filter(Result::is_err).count(), 1);
    }
}
