//! The floor of the offline benchmark (`benches/offline/run.py`): our manifest reader and
//! writer on a stream, injecting nothing. Every document is split, parsed and serialised
//! again (as `inject` does for every document it changes), then written to stdout.
//!
//! `cargo run --release --example yaml_floor -- FILE`

use std::io::Write;

use proxy_injector::manifest::{self, Format};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: yaml_floor FILE");
        std::process::exit(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let docs = match manifest::split(&text) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let mut out = manifest::Rope::new();
    let mut writer = manifest::Writer::new(Format::Yaml);
    for (i, doc) in docs.iter().enumerate() {
        match manifest::read(doc) {
            Ok(parsed) => {
                writer.write(&mut out, &parsed.value, None);
            }
            Err(e) => {
                eprintln!("{path}: document {}: {e}", i + 1);
                std::process::exit(1);
            }
        }
    }
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let written = out
        .pieces()
        .try_for_each(|p| stdout.write_all(p.as_bytes()))
        .and_then(|_| stdout.flush());
    if let Err(e) = written {
        eprintln!("stdout: {e}");
        std::process::exit(1);
    }
}
