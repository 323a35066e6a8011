//! `inject` and `uninject` over streams of documents (docs/behaviour.md §9.5–§9.10).
//!
//! Every document is uninjected first (silently), then injected; the core's patch is applied
//! to the parsed document. A document whose value ends up unchanged is written back exactly as
//! it was read. Errors are collected per document; if there is any, stdout stays empty.

use std::io::{IsTerminal, Read};

use serde_json::Value;

use super::args::{InjectArgs, UninjectArgs};
use super::input::{self, Stream};
use super::report::{self, Style};
use super::{flags, Output, UsageError};
use crate::config::{self, Values};
use crate::decide::Report;
use crate::inject::{self, Mode, Request};
use crate::manifest::{self, Format, Rope, Writer, Written};
use crate::patch::Patch;
use crate::uninject;

/// `-L`, checked.
pub(super) fn control_plane_ns(cp: &super::ControlPlane) -> Result<&str, UsageError> {
    cp.namespace().map_err(|ns| UsageError::Namespace { ns })
}

pub(super) fn load_values(files: &[std::path::PathBuf]) -> Result<Values, UsageError> {
    let mut texts = Vec::new();
    for f in files {
        let name = f.display().to_string();
        let text = std::fs::read_to_string(f).map_err(|source| {
            UsageError::Input(input::InputError::Io {
                path: name.clone(),
                source,
            })
        })?;
        texts.push((name, text));
    }
    Ok(config::load(
        texts.iter().map(|(n, t)| (n.as_str(), t.as_str())),
    )?)
}

fn style() -> Style {
    let no_color =
        std::env::var_os("NO_COLOR").is_some() || std::env::var("TERM").is_ok_and(|t| t == "dumb");
    Style {
        color: !no_color && std::io::stderr().is_terminal(),
    }
}

/// Writes one document (its text, the value it was read as, and the value to write); a
/// changed document that could not be spliced gets a `--verbose` line saying why.
fn write(
    out: &mut Rope,
    (text, original, value): (&str, &manifest::Parsed, &Value),
    writer: &mut Writer,
    name: impl FnOnce() -> String,
    notes: &mut Vec<String>,
) {
    note(
        writer.write(out, value, Some((text, original))),
        name,
        notes,
    );
}

/// The `--verbose` line of a changed document that could not be spliced.
fn note(written: Written, name: impl FnOnce() -> String, notes: &mut Vec<String>) {
    if let Written::Serialised(Some(why)) = written {
        let note = format!("{}: re-serialised, not spliced: {why}", name());
        notes.push(format!("level=info msg={note:?}\n"));
    }
}

fn locate(stream: &Stream, index: usize) -> String {
    format!("{}: document {}", stream.name, index + 1)
}

/// Everything `inject` derives from its flags before reading any document.
pub struct InjectPlan {
    /// Shared with the render cache, which knows its Values by this `Arc`.
    pub values: std::sync::Arc<Values>,
    pub overrides: crate::config::overrides::Annotations,
    pub scheduled: crate::config::overrides::Annotations,
    pub created_by: String,
    pub mode: Mode,
    pub control_plane_ns: String,
    /// Every document of the run with the same config shares one rendering.
    pub renders: crate::inject::RenderCache,
}

impl InjectPlan {
    pub fn from_args(args: &InjectArgs) -> Result<InjectPlan, UsageError> {
        let ns = control_plane_ns(&args.common.control_plane)?;
        let base = load_values(&args.values)?;
        let mut values = base.clone();
        flags::apply(&args.proxy, &mut values)?;
        Ok(InjectPlan {
            overrides: crate::config::overrides::write_back(&base, &values),
            scheduled: flags::scheduled_annotations(args)?,
            values: std::sync::Arc::new(values),
            created_by: format!("proxy-injector/cli {}", crate::VERSION),
            mode: if args.manual == Some(true) {
                Mode::Full
            } else {
                Mode::AnnotateOnly
            },
            control_plane_ns: ns.to_string(),
            renders: Default::default(),
        })
    }

    /// The core request for every document of the run.
    pub fn request(&self) -> Request<'_> {
        Request::cli(
            &self.values,
            &self.control_plane_ns,
            &self.created_by,
            self.mode,
            &self.overrides,
            &self.scheduled,
        )
        .cached(&self.renders, &self.values)
    }
}

pub fn inject(args: &InjectArgs, stdin: &mut dyn Read) -> Result<Output, UsageError> {
    let plan = InjectPlan::from_args(args)?;
    let streams = input::read_all(&args.inputs, stdin)?;
    let req = plan.request();
    let mut writer = Writer::new(Format::from(args.common.output));
    // Injected output is up to ~7× its input (the proxy is ~7 KB of YAML), most of it the
    // same rendered texts in every pod: the rope holds them once.
    let mut out = Rope::new();
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    // Changed documents that could not be spliced, said with --verbose.
    let mut notes = Vec::new();
    'streams: for stream in &streams {
        let docs = match manifest::split(&stream.text) {
            Ok(d) => d,
            Err(e) => {
                errors.push(format!("{}: {e}", stream.name));
                continue;
            }
        };
        for (i, text) in docs.iter().enumerate() {
            let original = match manifest::read(text) {
                Ok(v) => v,
                Err(e) => {
                    // A document that does not parse ends its stream, as upstream.
                    errors.push(format!("{}: {e}", locate(stream, i)));
                    continue 'streams;
                }
            };
            let result =
                inject_doc(&original.value, &req, &mut warnings).and_then(|(injected, rs)| {
                    reports.extend(rs);
                    if !errors.is_empty() {
                        return Ok(());
                    }
                    let written = match injected {
                        Injected::Patches(patches) => writer
                            .write_patched(&mut out, text, &original, &patches)
                            .map_err(|e| {
                                DocError::Other(format!("applying the injection patch: {e}"))
                            })?,
                        Injected::Value(value) => {
                            writer.write(&mut out, &value, Some((text, &original)))
                        }
                    };
                    note(written, || locate(stream, i), &mut notes);
                    Ok(())
                });
            match result {
                Ok(()) => {}
                Err(DocError::Refused(e)) => errors.push(e),
                Err(DocError::Other(e)) => errors.push(format!("{}: {e}", locate(stream, i))),
            }
        }
    }
    let mut stderr = String::new();
    if args.common.verbose {
        for w in &warnings {
            stderr.push_str(&format!("level=warning msg={w:?}\n"));
        }
        stderr.push_str(&notes.concat());
    }
    if !errors.is_empty() {
        stderr.push_str("Error transforming resources:\n");
        stderr.push_str(&errors.join("\n"));
        return Ok(Output {
            stdout: Rope::new(),
            stderr,
            code: 1,
        });
    }
    stderr.push_str(&report::inject(&reports, args.common.verbose, style()));
    Ok(Output {
        stdout: out,
        stderr,
        code: 0,
    })
}

pub fn uninject(args: &UninjectArgs, stdin: &mut dyn Read) -> Result<Output, UsageError> {
    let streams = input::read_all(&args.inputs, stdin)?;
    let mut writer = Writer::new(Format::from(args.common.output));
    let mut output = Output::default();
    for stream in &streams {
        let mut out = Rope::new();
        let mut reports = Vec::new();
        let mut errors = Vec::new();
        let mut notes = Vec::new();
        match manifest::split(&stream.text) {
            Err(e) => errors.push(format!("{}: {e}", stream.name)),
            Ok(docs) => {
                for (i, text) in docs.iter().enumerate() {
                    let original = match manifest::read(text) {
                        Ok(v) => v,
                        Err(e) => {
                            errors.push(format!("{}: {e}", locate(stream, i)));
                            break;
                        }
                    };
                    let result = transform(&original.value, |v| {
                        check_object(v)?;
                        uninject::uninject(v).map_err(|e| DocError::Other(e.to_string()))
                    });
                    match result {
                        Ok((value, rs)) => {
                            reports.extend(rs.into_iter().map(|(_, r)| r));
                            let doc = (text.as_str(), &original, &value);
                            write(&mut out, doc, &mut writer, || locate(stream, i), &mut notes);
                        }
                        Err(DocError::Refused(e)) => errors.push(e),
                        Err(DocError::Other(e)) => {
                            errors.push(format!("{}: {e}", locate(stream, i)))
                        }
                    }
                }
            }
        }
        if errors.is_empty() {
            output.stdout.append(out);
            if args.common.verbose {
                output.stderr.push_str(&notes.concat());
            }
            output.stderr.push_str(&report::uninject(&reports));
        } else {
            output.stderr.push_str("Error transforming resources:\n");
            output.stderr.push_str(&errors.join("\n"));
            output.stderr.push('\n');
            output.code = 1;
        }
    }
    Ok(output)
}

enum DocError {
    /// Linkerd's own wording, printed as is.
    Refused(String),
    /// Anything else; the caller prefixes where the document came from.
    Other(String),
}

/// Results of a document (`None`) or of each item of its `List`.
type ByItem<T> = Vec<(Option<usize>, T)>;

/// Runs `f` on a copy of the document, or on each item of a `kind: List` (its first failing
/// item fails the whole list; `null` items stay and are reported as missing their kind); each
/// result comes with the item it is of (`None`: the document).
fn transform<T>(
    original: &Value,
    mut f: impl FnMut(&mut Value) -> Result<T, DocError>,
) -> Result<(Value, ByItem<T>), DocError> {
    let mut value = original.clone();
    let is_list = value.get("kind").and_then(Value::as_str) == Some("List");
    if !is_list {
        let result = f(&mut value)?;
        return Ok((value, vec![(None, result)]));
    }
    let mut results = Vec::new();
    if let Some(items) = value.get_mut("items").and_then(Value::as_array_mut) {
        for (i, item) in items.iter_mut().enumerate() {
            let result = f(item).map_err(|e| match e {
                DocError::Other(m) => DocError::Other(format!("items[{i}]: {m}")),
                refused => refused,
            })?;
            results.push((Some(i), result));
        }
    }
    Ok((value, results))
}

/// A document must be a mapping (or blank).
fn check_object(v: &Value) -> Result<(), DocError> {
    match v {
        Value::Object(_) | Value::Null => Ok(()),
        other => Err(DocError::Other(format!(
            "expected a Kubernetes object (a mapping), found {}",
            crate::config::json_type(other)
        ))),
    }
}

/// What injecting one document gives.
enum Injected {
    /// The silent uninject removed nothing: the patches of the document (`None`) or of each
    /// item of its `List`, to be written into its text as they are.
    Patches(ByItem<Patch>),
    /// The value to write: uninjected, then patched.
    Value(Value),
}

/// The silent uninject pass, then inject, of one document, or of each item of a `kind: List`
/// (its first failing item fails the whole list).
fn inject_doc(
    original: &Value,
    req: &Request<'_>,
    warnings: &mut Vec<String>,
) -> Result<(Injected, Vec<Report>), DocError> {
    let (mut value, results) = transform(original, |v| inject_one(v, req, warnings))?;
    let uninjected = results.iter().any(|(_, (_, _, removed))| *removed);
    let (patches, reports): (Vec<_>, Vec<_>) = results
        .into_iter()
        .map(|(item, (report, patch, _))| ((item, patch), report))
        .unzip();
    if !uninjected {
        return Ok((Injected::Patches(patches), reports));
    }
    manifest::apply_patches(&mut value, &patches)
        .map_err(|e| DocError::Other(format!("applying the injection patch: {e}")))?;
    Ok((Injected::Value(value), reports))
}

/// The silent uninject pass of one object, in place, then its injection patch; says whether
/// the uninject removed anything.
fn inject_one(
    v: &mut Value,
    req: &Request<'_>,
    warnings: &mut Vec<String>,
) -> Result<(Report, Patch, bool), DocError> {
    check_object(v)?;
    let uninjected = uninject::uninject(v)
        .map_err(|e| DocError::Other(e.to_string()))?
        .uninjected;
    let outcome = inject::inject(v, req).map_err(|e| match e {
        inject::InjectError::Refused { .. } | inject::InjectError::ControlPlaneNeedsManual => {
            DocError::Refused(e.to_string())
        }
        other => DocError::Other(other.to_string()),
    })?;
    let id = outcome.report.identity.res_name();
    warnings.extend(outcome.warnings.iter().map(|w| format!("{id}: {w}")));
    Ok((outcome.report, outcome.patch, uninjected))
}
