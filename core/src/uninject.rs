//! Removing what injection added (docs/behaviour.md §9.10, with docs/differences.md Q-9 fixed).
//!
//! Unlike inject, uninject edits the parsed object in place: it is a CLI-only transform and
//! also the silent first pass of `inject`, which makes injecting an injected manifest give the
//! same result as injecting the original. Besides Linkerd's own removals it also removes the
//! debug container, the network validator and the podinfo volume, so that
//! `uninject(inject(x)) == x`; containers or maps it empties disappear.

use serde_json::{Map, Value};

use crate::annotations as a;
use crate::decide::Report;
use crate::workload::{self, Category, Identity, ShapeError};

/// Uninjects `obj` in place; the report says whether anything was removed.
pub fn uninject(obj: &mut Value) -> Result<Report, ShapeError> {
    let identity = Identity::of(obj);
    let tokens = match workload::category(&identity.kind) {
        Category::Unsupported => return Ok(Report::without_template(identity, false)),
        Category::Annotatable => {
            let mut report = Report::without_template(identity, true);
            report.uninjected = strip_metadata(obj.get_mut("metadata"));
            return Ok(report);
        }
        Category::Injectable(tokens) => tokens,
    };
    // Validate shapes first so that the edits below can rely on them.
    if workload::locate(obj, tokens)?.is_none() {
        return Ok(Report::without_template(identity, false));
    }
    let mut report = Report {
        identity,
        automount: true,
        annotatable: true,
        ..Report::default()
    };
    let mut changed = false;
    if !tokens.is_empty() {
        changed |= strip_metadata(obj.get_mut("metadata"));
    }
    let mut template = &mut *obj;
    for t in tokens {
        match template.get_mut(*t) {
            Some(v) => template = v,
            None => return Ok(report),
        }
    }
    if let Some(spec) = template.get_mut("spec").and_then(Value::as_object_mut) {
        changed |= remove_named(
            spec,
            "initContainers",
            &[
                a::INIT_CONTAINER,
                a::PROXY_CONTAINER,
                a::VALIDATOR_CONTAINER,
            ],
        );
        changed |= remove_named(
            spec,
            "containers",
            &[a::PROXY_CONTAINER, a::DEBUG_CONTAINER],
        );
        changed |= remove_named(
            spec,
            "volumes",
            &[
                a::IDENTITY_END_ENTITY_VOLUME,
                a::XTABLES_LOCK_VOLUME,
                a::IDENTITY_TOKEN_VOLUME,
                a::PODINFO_VOLUME,
            ],
        );
    }
    let meta_changed = strip_metadata(template.get_mut("metadata"));
    if meta_changed {
        if let Some(t) = template.as_object_mut() {
            if t.get("metadata")
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                t.remove("metadata");
            }
        }
    }
    report.uninjected = changed || meta_changed;
    Ok(report)
}

/// Removes entries of `spec[list]` with one of `names`; drops the list if that empties it.
fn remove_named(spec: &mut Map<String, Value>, list: &str, names: &[&str]) -> bool {
    let Some(items) = spec.get_mut(list).and_then(Value::as_array_mut) else {
        return false;
    };
    let before = items.len();
    items.retain(|c| !names.contains(&workload::str_field(c, "name")));
    let removed = items.len() != before;
    if removed && items.is_empty() {
        spec.remove(list);
    }
    removed
}

/// Removes Linkerd's annotations (but an opt-out `linkerd.io/inject: disabled`) and labels,
/// unless the object is a control-plane component. Emptied maps are dropped.
fn strip_metadata(meta: Option<&mut Value>) -> bool {
    let Some(meta) = meta.and_then(Value::as_object_mut) else {
        return false;
    };
    let is_control_plane = meta
        .get("labels")
        .and_then(Value::as_object)
        .is_some_and(|l| l.contains_key(a::CONTROL_PLANE_COMPONENT_LABEL));
    if is_control_plane {
        return false;
    }
    let mut changed = false;
    for field in ["annotations", "labels"] {
        let Some(map) = meta.get_mut(field).and_then(Value::as_object_mut) else {
            continue;
        };
        let before = map.len();
        map.retain(|k, v| {
            !k.starts_with(a::LINKERD_PREFIX)
                || (field == "annotations"
                    && k == a::INJECT
                    && v.as_str() == Some(a::INJECT_DISABLED))
        });
        if map.len() != before {
            changed = true;
            if map.is_empty() {
                meta.remove(field);
            }
        }
    }
    changed
}
