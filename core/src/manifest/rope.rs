//! Output text as pieces, some of them shared between documents.
//!
//! `inject --manual` writes the same rendered texts into every pod of one config: the proxy,
//! the init container, the volumes, about 9 KB of YAML each time. Copied into one string,
//! the output of 100k Deployments was a gigabyte held in memory until the end (stdout stays
//! empty when any document fails), and faulting it in cost the kernel more time than
//! writing it (BENCHMARKS.md §2e, §2f). A [`Rope`] holds each shared text once, by reference, and
//! the rest in chunks of its own.

use std::fmt;
use std::sync::Arc;

/// Owned text goes into chunks of about this size: large enough that writing them costs few
/// calls, small enough that growing one never copies much.
const CHUNK: usize = 1 << 20;

#[derive(Clone, Debug)]
enum Piece {
    Own(String),
    Shared(Arc<str>),
}

impl Piece {
    fn as_str(&self) -> &str {
        match self {
            Piece::Own(s) => s,
            Piece::Shared(s) => s,
        }
    }
}

/// Text written in pieces: owned chunks, and shared texts held by reference.
#[derive(Clone, Debug, Default)]
pub struct Rope {
    pieces: Vec<Piece>,
    len: usize,
}

impl Rope {
    pub fn new() -> Rope {
        Rope::default()
    }

    /// Appends a copy of `s`.
    pub fn push_str(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        self.len += s.len();
        match self.pieces.last_mut() {
            Some(Piece::Own(last)) if last.len() + s.len() <= CHUNK => last.push_str(s),
            _ => self.pieces.push(Piece::Own(s.to_string())),
        }
    }

    /// Appends a shared text without copying it.
    pub fn push_shared(&mut self, s: &Arc<str>) {
        if !s.is_empty() {
            self.len += s.len();
            self.pieces.push(Piece::Shared(s.clone()));
        }
    }

    /// Appends another rope's pieces: shared ones by reference, owned ones moved, or copied
    /// into the last chunk where they fit.
    pub fn append(&mut self, other: Rope) {
        self.len += other.len;
        for piece in other.pieces {
            match (self.pieces.last_mut(), piece) {
                (Some(Piece::Own(last)), Piece::Own(s)) if last.len() + s.len() <= CHUNK => {
                    last.push_str(&s)
                }
                (_, piece) => self.pieces.push(piece),
            }
        }
    }

    /// The text with every `\n` written `\r\n`, for a document whose lines end so.
    pub fn with_crlf(&self) -> Rope {
        let mut out = Rope::new();
        for piece in self.pieces() {
            out.push_str(&piece.replace('\n', "\r\n"));
        }
        out
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces in order, for writing.
    pub fn pieces(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().map(Piece::as_str)
    }
}

impl fmt::Display for Rope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pieces().try_for_each(|p| f.write_str(p))
    }
}

impl fmt::Write for Rope {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

impl From<String> for Rope {
    fn from(s: String) -> Rope {
        let mut rope = Rope::new();
        if !s.is_empty() {
            rope.len = s.len();
            rope.pieces.push(Piece::Own(s));
        }
        rope
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_texts_are_held_once_and_read_in_order() {
        let proxy: Arc<str> = Arc::from("- name: linkerd-proxy\n");
        let mut out = Rope::new();
        for pod in ["a", "b"] {
            out.push_str(&format!("name: {pod}\n"));
            out.push_shared(&proxy);
        }
        out.push_str("");
        assert_eq!(
            out.to_string(),
            "name: a\n- name: linkerd-proxy\nname: b\n- name: linkerd-proxy\n"
        );
        assert_eq!(out.len(), out.to_string().len());
        assert_eq!(
            Arc::strong_count(&proxy),
            3,
            "held by reference, not copied"
        );
        assert_eq!(
            out.with_crlf().to_string(),
            out.to_string().replace('\n', "\r\n")
        );
    }

    #[test]
    fn owned_text_goes_into_bounded_chunks() {
        let mut out = Rope::new();
        let line = "x".repeat(1000) + "\n";
        for _ in 0..3000 {
            out.push_str(&line);
        }
        assert_eq!(out.len(), 3000 * 1001);
        let chunks: Vec<usize> = out.pieces().map(str::len).collect();
        assert!(chunks.len() >= 3, "{}", chunks.len());
        assert!(chunks.iter().all(|&c| c <= CHUNK), "{chunks:?}");
        let mut all = Rope::new();
        all.append(out.clone());
        all.append(Rope::from("end".to_string()));
        assert_eq!(all.len(), out.len() + 3);
        assert_eq!(all.to_string(), out.to_string() + "end");
    }
}
