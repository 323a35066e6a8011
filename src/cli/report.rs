//! The stderr report, byte for byte as `linkerd inject` / `linkerd uninject` print it
//! (docs/behaviour.md §9.8, docs/behaviour.md §9.10).

use std::fmt::Write;

use crate::decide::Report;

const WARN: &str = "\u{203c}";
const OK: &str = "\u{221a}";

/// Whether to colour the check marks: only on a terminal, and never with `NO_COLOR` or
/// `TERM=dumb`.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn mark(self, ok: bool) -> String {
        match (self.color, ok) {
            (false, true) => OK.into(),
            (false, false) => WARN.into(),
            (true, true) => format!("\x1b[32;1m{OK}\x1b[0m"),
            (true, false) => format!("\x1b[33;1m{WARN}\x1b[0m"),
        }
    }
}

fn list(reports: &[&Report]) -> String {
    reports
        .iter()
        .map(|r| r.identity.res_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `inject` report for a whole run.
pub fn inject(reports: &[Report], verbose: bool, style: Style) -> String {
    let mut s = String::from("\n");
    let mut warned = false;
    let with_template = |f: fn(&Report) -> bool| -> Vec<&Report> {
        reports.iter().filter(|r| !r.unsupported && f(r)).collect()
    };
    let mut check = |hits: Vec<&Report>, warning: String, ok: &str, s: &mut String| {
        if !hits.is_empty() {
            let _ = writeln!(s, "{} {warning}", style.mark(false));
            warned = true;
        } else if verbose {
            let _ = writeln!(s, "{} {ok}", style.mark(true));
        }
    };
    let host = with_template(|r| r.host_network);
    check(
        host.clone(),
        format!("\"hostNetwork: true\" detected in {}", list(&host)),
        "pods do not use host networking",
        &mut s,
    );
    let sidecar = with_template(|r| r.sidecar);
    check(
        sidecar.clone(),
        format!("known 3rd party sidecar detected in {}", list(&sidecar)),
        "pods do not have a 3rd party proxy or initContainer already injected",
        &mut s,
    );
    let disabled = with_template(|r| r.inject_disabled());
    check(
        disabled.clone(),
        format!(
            "\"linkerd.io/inject: disabled\" annotation set on {}",
            list(&disabled)
        ),
        "pods are not annotated to disable injection",
        &mut s,
    );
    let supported = reports.iter().any(|r| r.injectable() || r.annotatable);
    let placeholder = Report::default();
    check(
        if supported {
            vec![]
        } else {
            vec![&placeholder]
        },
        "no supported objects found".into(),
        "at least one resource can be injected or annotated",
        &mut s,
    );
    let udp = with_template(|r| r.udp);
    let verb = if udp.len() > 1 { "use" } else { "uses" };
    check(
        udp.clone(),
        format!("{} {verb} \"protocol: UDP\"", list(&udp)),
        "pod specs do not include UDP ports",
        &mut s,
    );
    if reports.iter().any(|r| !r.automount) {
        warned = true;
    } else if verbose {
        let _ = writeln!(
            s,
            "{} pods do not have automountServiceAccountToken set to \"false\" or service account token projection is enabled",
            style.mark(true)
        );
    }
    if warned || verbose {
        s.push('\n');
    }
    for r in reports {
        let _ = writeln!(
            s,
            "{}",
            result_line(
                r,
                if r.injectable() {
                    "injected"
                } else if r.annotated {
                    "annotated"
                } else {
                    "skipped"
                }
            )
        );
    }
    s.push('\n');
    s
}

/// The `uninject` report for one input stream.
pub fn uninject(reports: &[Report]) -> String {
    let mut s = String::from("\n");
    for r in reports {
        let _ = writeln!(
            s,
            "{}",
            result_line(
                r,
                if r.uninjected {
                    "uninjected"
                } else {
                    "skipped"
                }
            )
        );
    }
    s.push('\n');
    s
}

fn result_line(r: &Report, verb: &str) -> String {
    if r.identity.kind.is_empty() {
        "document missing \"kind\" field, skipped".into()
    } else {
        format!("{} \"{}\" {verb}", r.identity.kind, r.identity.name)
    }
}
