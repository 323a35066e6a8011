//! The decision: the webhook's truth table cell by cell, the CLI's rule, the report flags.

use super::*;

/// docs/behaviour.md §5.3's webhook table, every cell.
#[test]
fn webhook_truth_table() {
    use AnnotationAt as At;
    use SkipReason::*;
    let inject = |at| (None, at);
    let skip = |r, at| (Some(r), at);
    let rows = [
        ("", "", skip(InjectAnnotationAbsent, At::None)),
        ("", "enabled", inject(At::Workload)),
        ("", "ingress", inject(At::Workload)),
        ("", "disabled", skip(InjectAnnotationAbsent, At::None)),
        ("", "bogus", skip(InvalidInjectAtWorkload, At::None)),
        ("enabled", "", inject(At::Namespace)),
        ("ingress", "enabled", inject(At::Namespace)),
        (
            "enabled",
            "disabled",
            skip(InjectDisabledAnnotation, At::Workload),
        ),
        ("enabled", "bogus", skip(InvalidInjectAtWorkload, At::None)),
        ("disabled", "", skip(InjectAnnotationAbsent, At::None)),
        ("disabled", "enabled", inject(At::Workload)),
        (
            "disabled",
            "disabled",
            skip(InjectAnnotationAbsent, At::None),
        ),
        ("bogus", "enabled", skip(InvalidInjectAtNamespace, At::None)),
        ("Enabled", "", skip(InvalidInjectAtNamespace, At::None)),
    ];
    for (ns, pod, want) in rows {
        assert_eq!(webhook_decision(ns, pod), want, "ns={ns:?} pod={pod:?}");
    }
}

#[test]
fn reasons_keep_linkerds_order_codes_and_texts() {
    let r = Report {
        host_network: true,
        sidecar: true,
        disabled_reason: Some(SkipReason::InjectAnnotationAbsent),
        automount: false,
        ..Report::default()
    };
    assert_eq!(
        r.reason_codes(),
        "host_network_enabled,sidecar_already_exists,injection_enable_annotation_absent,disabled_automount_service_account_token_account"
    );
    assert!(r.reason_texts().starts_with(
        "hostNetwork is enabled, pod has a sidecar injected already, neither the namespace nor the pod have the annotation \"linkerd.io/inject:enabled\""
    ));
    assert!(!r.injectable());
}
