//! Resolving INPUT arguments into named text streams (docs/behaviour.md §9.3).

use std::io::Read;
use std::path::{Path, PathBuf};

/// An input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("only HTTPS URLs are allowed")]
    NotHttps,
    #[error("unable to read URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("unable to read URL {url:?}, server reported {status}, status code={code}")]
    Status {
        url: String,
        status: String,
        code: u16,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: line {line} (document {document}): not valid UTF-8 text")]
    NotUtf8 {
        path: String,
        document: usize,
        line: usize,
    },
}

/// The name of standard input in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// One input stream: where it came from, and its text.
pub struct Stream {
    pub name: String,
    pub text: String,
}

/// Reads every input, in order; a directory yields one stream per regular file.
pub fn read_all(inputs: &[String], stdin: &mut dyn Read) -> Result<Vec<Stream>, InputError> {
    let mut out = Vec::new();
    for arg in inputs {
        if arg == "-" {
            let mut buf = Vec::new();
            stdin.read_to_end(&mut buf).map_err(|e| io(STDIN_NAME, e))?;
            out.push(Stream {
                name: STDIN_NAME.into(),
                text: utf8(STDIN_NAME, buf)?,
            });
        } else if let Some(scheme) = url_scheme(arg) {
            if !scheme.eq_ignore_ascii_case("https") {
                return Err(InputError::NotHttps);
            }
            out.push(Stream {
                name: arg.clone(),
                text: fetch(arg)?,
            });
        } else {
            let mut files = Vec::new();
            walk(Path::new(arg), &mut files)?;
            for f in files {
                let name = f.display().to_string();
                let bytes = std::fs::read(&f).map_err(|e| io(&name, e))?;
                out.push(Stream {
                    text: utf8(&name, bytes)?,
                    name,
                });
            }
        }
    }
    Ok(out)
}

/// The scheme of an absolute URL with a host (`https://host/...`), if `s` is one.
pub fn url_scheme(s: &str) -> Option<&str> {
    let (scheme, rest) = s.split_once("://")?;
    let valid = !scheme.is_empty()
        && scheme
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    (valid && !host.is_empty()).then_some(scheme)
}

fn fetch(url: &str) -> Result<String, InputError> {
    let err = |message: String| InputError::Url {
        url: url.to_string(),
        message,
    };
    // The system's trust store (and SSL_CERT_FILE / SSL_CERT_DIR), as other CLIs use.
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let mut resp = agent.get(url).call().map_err(|e| err(e.to_string()))?;
    let status = resp.status();
    if status != 200 {
        return Err(InputError::Status {
            url: url.to_string(),
            status: format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
            code: status.as_u16(),
        });
    }
    resp.body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| err(e.to_string()))
}

/// A file, or every regular file under a directory in lexical order.
fn walk(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| io(&format!("stat {name}"), e))?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| io(&name, e))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| io(&name, e))?;
    entries.sort();
    for e in entries {
        let meta = std::fs::metadata(&e).map_err(|err| io(&e.display().to_string(), err))?;
        if meta.is_dir() {
            walk(&e, out)?;
        } else if meta.is_file() {
            out.push(e);
        }
    }
    Ok(())
}

fn io(path: &str, source: std::io::Error) -> InputError {
    InputError::Io {
        path: path.to_string(),
        source,
    }
}

/// The text of an input; bytes that are not UTF-8 are an error naming the document and line.
fn utf8(path: &str, bytes: Vec<u8>) -> Result<String, InputError> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let before = String::from_utf8_lossy(valid);
        let line = before.matches('\n').count() + 1;
        let separators = before.lines().filter(|l| l.starts_with("---")).count();
        InputError::NotUtf8 {
            path: path.to_string(),
            document: separators + 1,
            line,
        }
    })
}
