//! Splicing: each kind of edit, the document's conventions, what falls back, and the round
//! trip (a change and its reverse give the original text back, byte for byte).

use serde_json::json;

use super::*;
use crate::manifest::parse;

/// Splices `new` into `text`; the result must read back as `new`.
fn changed(text: &str, new: &Value) -> String {
    let old = parse(text).expect("the input parses");
    let out = splice(text, &old, new).unwrap_or_else(|e| panic!("unspliceable: {e}"));
    assert_eq!(parse(&out).expect("the output parses"), *new);
    out
}

/// A splice that only adds: splicing the old value back removes exactly what was added.
fn spliced(text: &str, new: &Value) -> String {
    let out = changed(text, new);
    let old = parse(text).expect("the input parses");
    let back = splice(&out, new, &old).unwrap_or_else(|e| panic!("the reverse: {e}"));
    assert_eq!(back, text, "the reverse splice gives the text back");
    out
}

/// The lines of `out` that are not in `text`, in order, when `out` only adds lines.
fn added_lines(text: &str, out: &str) -> Vec<String> {
    let mut old = text.lines().peekable();
    let mut added = Vec::new();
    for line in out.lines() {
        if old.peek() == Some(&line) {
            old.next();
        } else {
            added.push(line.to_string());
        }
    }
    assert!(old.peek().is_none(), "a line of the input is gone:\n{out}");
    added
}

const DEPLOYMENT: &str = "\
# The web tier.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # public
spec:
  template:
    metadata:
      annotations:
        team: 'payments'
        # owner: someone
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: \"example/web:1\"  # pinned
          ports:
            - containerPort: 8080
      volumes:
      - name: data
        emptyDir: {}
";

#[test]
fn keys_are_added_after_the_last_entry_and_its_comments() {
    let mut v = parse(DEPLOYMENT).unwrap();
    v["spec"]["template"]["metadata"]["annotations"]["linkerd.io/inject"] = json!("enabled");
    v["spec"]["template"]["metadata"]["annotations"]["config.linkerd.io/proxy-cpu-request"] =
        json!("100m");
    let out = spliced(DEPLOYMENT, &v);
    assert_eq!(
        added_lines(DEPLOYMENT, &out),
        [
            "        linkerd.io/inject: enabled",
            "        config.linkerd.io/proxy-cpu-request: 100m"
        ]
    );
    assert!(out.contains("        # owner: someone\n        linkerd.io/inject: enabled\n"));
}

#[test]
fn a_missing_mapping_is_added_whole_at_the_documents_indentation() {
    let text = "kind: Pod\nmetadata:\n    name: p\nspec:\n    containers:\n    -   name: c\n";
    let mut v = parse(text).unwrap();
    v["metadata"]["annotations"] = json!({"a": "1", "b": {"c": [1, 2]}});
    let out = spliced(text, &v);
    assert_eq!(
        added_lines(text, &out),
        [
            "    annotations:",
            "        a: '1'",
            "        b:",
            "            c:",
            "            - 1",
            "            - 2"
        ]
    );
}

#[test]
fn list_items_follow_the_lists_style() {
    let mut v = parse(DEPLOYMENT).unwrap();
    let pod = &mut v["spec"]["template"]["spec"];
    pod["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "linkerd-identity-end-entity", "emptyDir": {"medium": "Memory"}}));
    pod["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "linkerd-proxy", "args": ["a"]}));
    let out = spliced(DEPLOYMENT, &v);
    assert_eq!(
        added_lines(DEPLOYMENT, &out),
        [
            "        - name: linkerd-proxy",
            "          args:",
            "            - a",
            "      - name: linkerd-identity-end-entity",
            "        emptyDir:",
            "          medium: Memory",
        ]
    );
}

#[test]
fn an_item_is_inserted_before_the_one_it_precedes() {
    let text = "spec:\n  initContainers:\n  - name: app-init\n    image: x\n";
    let mut v = parse(text).unwrap();
    v["spec"]["initContainers"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"name": "linkerd-init", "image": "y"}));
    let out = spliced(text, &v);
    assert_eq!(
        out,
        "spec:\n  initContainers:\n  - name: linkerd-init\n    image: y\n  - name: app-init\n    image: x\n"
    );
}

#[test]
fn a_new_list_under_a_new_key_uses_the_documents_list_style() {
    let mut v = parse(DEPLOYMENT).unwrap();
    v["spec"]["template"]["spec"]["initContainers"] = json!([{"name": "linkerd-init"}]);
    let out = spliced(DEPLOYMENT, &v);
    // The first list of the document (`containers`) is indented under its key.
    assert_eq!(
        added_lines(DEPLOYMENT, &out),
        ["      initContainers:", "        - name: linkerd-init"]
    );
}

#[test]
fn a_changed_flow_node_is_rewritten_alone_in_flow_style() {
    let mut v = parse(DEPLOYMENT).unwrap();
    v["spec"]["template"]["metadata"]["labels"]["linkerd.io/workload-ns"] = json!("shop");
    let out = changed(DEPLOYMENT, &v);
    assert!(
        out.contains("      labels: {app: web, linkerd.io/workload-ns: shop}\n"),
        "{out}"
    );
    assert_eq!(out.lines().count(), DEPLOYMENT.lines().count());
}

#[test]
fn a_scalar_is_replaced_in_place() {
    let text = "metadata:\n  annotations:\n    enabled: true # yes\n";
    let v = json!({"metadata": {"annotations": {"enabled": "true"}}});
    let out = changed(text, &v);
    assert_eq!(
        out,
        "metadata:\n  annotations:\n    enabled: 'true' # yes\n"
    );
}

#[test]
fn an_empty_value_gains_its_block_below_the_key() {
    let text = "metadata:\n  annotations:\n  name: p\n";
    let v = json!({"metadata": {"annotations": {"a": "b"}, "name": "p"}});
    let out = splice(text, &parse(text).unwrap(), &v).expect("spliced");
    assert_eq!(out, "metadata:\n  annotations:\n    a: b\n  name: p\n");
}

#[test]
fn removed_keys_and_items_lose_exactly_their_lines() {
    let mut v = parse(DEPLOYMENT).unwrap();
    v["spec"]["template"]["spec"]["volumes"] = json!([]);
    v["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("volumes");
    v["metadata"].as_object_mut().unwrap().remove("name");
    v["metadata"]["labels"] = json!({"x": "y"});
    let out = changed(DEPLOYMENT, &v);
    assert!(
        !out.contains("volumes") && !out.contains("emptyDir"),
        "{out}"
    );
    assert!(
        !out.contains("# public"),
        "the removed entry's own comment goes with it"
    );
    assert!(out.contains("# The web tier.\n") && out.contains("# owner: someone\n"));
}

#[test]
fn offsets_are_bytes_in_non_ascii_text() {
    let text = "metadata:\n  name: café # ☕\n  annotations:\n    note: naïve\n";
    let mut v = parse(text).unwrap();
    v["metadata"]["annotations"]["linkerd.io/inject"] = json!("enabled");
    let out = spliced(text, &v);
    assert_eq!(added_lines(text, &out), ["    linkerd.io/inject: enabled"]);
}

#[test]
fn what_cannot_be_spliced_safely_falls_back() {
    let cases = [
        ("a: &x {b: 1}\nc: *x\n", "an alias"),
        ("a: !!str 1\n", "a tag"),
        ("base: &b {x: 1}\nd:\n  <<: *b\n", "merge keys"),
        ("{\"kind\": \"Pod\", \"metadata\": {}}\n", "a JSON document"),
    ];
    for (text, what) in cases {
        let old = parse(text).unwrap();
        let mut new = old.clone();
        new["added"] = json!("x");
        assert!(splice(text, &old, &new).is_err(), "{what}");
    }
}

#[test]
fn a_text_without_a_final_newline_gets_one_before_new_lines() {
    let text = "metadata:\n  name: p";
    let mut v = parse(text).unwrap();
    v["metadata"]["labels"] = json!({"a": "b"});
    let out = splice(text, &parse(text).unwrap(), &v).expect("spliced");
    assert_eq!(out, "metadata:\n  name: p\n  labels:\n    a: b\n");
}

#[test]
fn multi_line_strings_are_literal_blocks() {
    let text = "data:\n  a: b\n";
    let mut v = parse(text).unwrap();
    v["data"]["pem"] = json!("-----BEGIN-----\nAAAA\n-----END-----\n");
    v["data"]["two"] = json!("x\n\ny");
    v["data"]["keep"] = json!("x\n\n");
    v["data"]["list"] = json!(["l1\nl2\n"]);
    let out = spliced(text, &v);
    assert_eq!(
        added_lines(text, &out),
        [
            "  pem: |",
            "    -----BEGIN-----",
            "    AAAA",
            "    -----END-----",
            "  two: |-",
            "    x",
            "",
            "    y",
            // `|+` would take in blank lines after it in the document: quoted instead.
            "  keep: \"x\\n\\n\"",
            "  list:",
            "  - |",
            "    l1",
            "    l2",
        ]
    );
}

#[test]
fn flow_scalars_are_quoted_when_flow_context_needs_it() {
    let text = "a: {x: 1}\nb: [p]\n";
    let v = json!({"a": {"x": 1, "k,1": "v]", "t": "true"}, "b": ["p", "{q}", 2]});
    let out = changed(text, &v);
    assert_eq!(
        out,
        "a: {x: 1, \"k,1\": \"v]\", t: 'true'}\nb: [p, '{q}', 2]\n"
    );
}

/// The plain-scalar shortcut agrees with the YAML emitter's own judgement: whatever it
/// writes plain reads back as the same string.
#[test]
fn plain_scalars_read_back_as_strings() {
    let samples = [
        "enabled",
        "cr.l5d.io/linkerd/proxy:edge-26.8.3",
        "$(_pod_ns)",
        "25,587,3306",
        "a=b",
        "/var/run/linkerd",
        "_x",
        "Yes",
        "NULL",
        "off",
        "y",
        "n",
        "on",
        "TRUE",
        "key:",
        "a: b",
        "x:y",
        "linkerd.io/inject",
        "e3",
        "nan",
        "inf",
        "Infinity",
        "-x",
        "4143",
        "proxy-injector/cli 0.1.0",
        "a #b",
        "a b ",
        "x  y",
        "a - b",
        "a: b c",
        "null x",
        "true false",
    ];
    for s in samples {
        let text = format!("k: {}\n", scalar(&json!(s)));
        assert_eq!(
            parse(&text).unwrap(),
            json!({"k": s}),
            "{s:?} written as {text:?}"
        );
    }
    assert!(is_plain("cr.l5d.io/linkerd/proxy:edge-26.8.3") && !is_plain("Yes"));
}

/// Whatever the writer gets wrong (here, a line separator inside a literal block, which
/// some YAML readers split) is caught by reading the result back, and the document is
/// re-serialised instead.
#[test]
fn a_value_that_would_not_read_back_is_refused() {
    let text = "data:\n  a: b\n";
    let old = parse(text).unwrap();
    let mut new = old.clone();
    new["data"]["odd"] = json!("x\u{2028}y\nz");
    match splice(text, &old, &new) {
        Ok(out) => assert_eq!(parse(&out).unwrap(), new, "{out}"),
        Err(e) => assert!(e.0.contains("does not read back"), "{e}"),
    }
}

#[test]
fn crlf_line_ends_are_kept() {
    let text =
        "metadata:\r\n  name: p # x\r\n  annotations:\r\nspec:\r\n  containers:\r\n  - name: c\r\n";
    let mut v = parse(text).unwrap();
    v["metadata"]["annotations"] = json!({"a": "b"});
    v["metadata"]["labels"] = json!({"l": "m"});
    v["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "d"}));
    let out = splice(text, &parse(text).unwrap(), &v).expect("spliced");
    assert_eq!(parse(&out).unwrap(), v);
    assert!(
        !out.replace("\r\n", "").contains('\n'),
        "a bare LF: {out:?}"
    );
    assert!(
        out.contains("  annotations:\r\n    a: b\r\n  labels:\r\n    l: m\r\n"),
        "{out:?}"
    );
}

/// Found by the fuzz regressions: a block list whose first item is a flow mapping or a flow
/// list is a block list (its event starts at the item, after the dash).
#[test]
fn a_block_list_of_flow_items_is_a_block_list() {
    let text = "spec:\n  containers:\n  - {name: app, image: a}\n  - {name: linkerd-proxy, image: p}\n  args:\n  - [a, b]\n  - [c]\n";
    let mut v = parse(text).unwrap();
    v["spec"]["containers"].as_array_mut().unwrap().pop();
    v["spec"]["args"].as_array_mut().unwrap().push(json!(["d"]));
    let out = changed(text, &v);
    assert_eq!(
        out,
        "spec:\n  containers:\n  - {name: app, image: a}\n  args:\n  - [a, b]\n  - [c]\n  - [d]\n"
    );
}

/// A stream's documents share one rendering of what is inserted into each of them, and the
/// skeleton confirms where it went without parsing it again.
#[test]
fn inserted_text_is_rendered_once_per_stream() {
    let proxy = json!({"name": "linkerd-proxy", "image": "x:1", "env": [
        {"name": "A", "value": "multi\nline\n"}, {"name": "B", "value": "true"}]});
    let mut splicer = Splicer::default();
    for i in 0..20 {
        let text = DEPLOYMENT.replace("name: web   # public", &format!("name: web-{i}"));
        let old = parse(&text).unwrap();
        let mut new = old.clone();
        let pod = &mut new["spec"]["template"]["spec"];
        pod["containers"]
            .as_array_mut()
            .unwrap()
            .push(proxy.clone());
        pod["volumes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "v"}));
        new["spec"]["template"]["metadata"]["labels"]["owner"] = json!(format!("web-{i}"));
        let out = splicer.splice(&text, &old, &new).expect("spliced");
        assert_eq!(parse(&out).unwrap(), new, "document {i}");
        assert_eq!(
            out,
            splice(&text, &old, &new).unwrap(),
            "as a fresh splicer"
        );
    }
    let counts = splicer.counts();
    // The proxy and the volume once; the flow mapping `labels: {app: web}` is rewritten in
    // place, not inserted.
    assert_eq!(counts.rendered, 2, "{counts:?}");
    assert_eq!(counts.reused, 38, "{counts:?}");
    assert_eq!(counts.full_checks, 0, "{counts:?}");
}

/// The skeleton proves only what it can; otherwise the whole result is parsed.
#[test]
fn what_the_skeleton_cannot_prove_is_checked_in_full() {
    let text = format!("metadata:\n  name: {PLACEHOLDER}0\nspec: {{}}\n");
    let old = parse(&text).unwrap();
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"a": "b"});
    let mut splicer = Splicer::default();
    let out = splicer.splice(&text, &old, &new).expect("spliced");
    assert_eq!(parse(&out).unwrap(), new);
    assert_eq!(
        splicer.counts().full_checks,
        1,
        "the input holds the placeholder"
    );
}

/// A placeholder counts only where its own part is: an equal value elsewhere does not do.
#[test]
fn a_placeholder_must_stand_where_its_part_is() {
    let new = json!({"a": {"x": 1}, "b": {"x": 1}});
    let part = &new["a"];
    let at_a = json!({"a": format!("{PLACEHOLDER}0"), "b": {"x": 1}});
    let at_b = json!({"a": {"x": 1}, "b": format!("{PLACEHOLDER}0")});
    assert!(placed(&at_a, &new, &[part]));
    assert!(!placed(&at_b, &new, &[part]), "an equal value elsewhere");
    assert!(!placed(&at_a, &new, &[]), "an unknown placeholder");
    let extra = json!({"a": format!("{PLACEHOLDER}0"), "b": {"x": 1}, "c": 2});
    assert!(!placed(&extra, &new, &[part]), "a key too many");
}

/// Found by fuzzing: a literal block runs on over the blank lines after it, which are not
/// its content (unless it keeps its line ends); removing it must leave them.
#[test]
fn blank_lines_after_a_literal_block_are_not_its_own() {
    let text = "spec:\n  c: d\n  \nz: 1\n";
    let mut v = parse(text).unwrap();
    v["spec"]["e"] = json!({"script": "one\ntwo\n"});
    let out = spliced(text, &v);
    assert!(
        out.contains("    script: |\n      one\n      two\n  \nz: 1\n"),
        "{out:?}"
    );
    v["spec"]["e"] = json!({"script": "kept\n\n"});
    spliced(text, &v);
}

/// Found by fuzzing: a literal block at the end of an inserted entry takes in a following
/// line of spaces deeper than its indentation. Such an entry is checked in place, not by its
/// placeholder, so the mistake is caught and the document falls back.
#[test]
fn an_entry_ending_in_a_literal_block_is_checked_in_place() {
    let text = "data: x\n        ";
    let old = parse(text).unwrap();
    let mut new = old.clone();
    new["env"] = json!([{"name": "X", "value": "1\n2\n"}]);
    let mut splicer = Splicer::default();
    match splicer.splice(text, &old, &new) {
        Ok(out) => assert_eq!(parse(&out).unwrap(), new, "{out:?}"),
        Err(e) => assert!(e.0.contains("does not read back"), "{e}"),
    }
    assert_eq!(
        splicer.counts().full_checks,
        1,
        "the skeleton did not suffice"
    );
    assert!(ends_in_literal(&new["env"]) && !ends_in_literal(&json!({"a": "1\n2\n", "b": 1})));
}

/// Found by fuzzing: a line of blanks with a tab after an inserted block list reads as an
/// error, though its placeholder reads fine; a block followed by blanks is checked in place.
#[test]
fn a_block_followed_by_a_line_of_blanks_is_checked_in_place() {
    let text = "data:\n 0o0o\n \t\n";
    let old = parse(text).unwrap();
    let mut new = old.clone();
    new["added"] = json!(["x", {"y": null}]);
    let mut splicer = Splicer::default();
    if let Ok(out) = splicer.splice(text, &old, &new) {
        assert_eq!(parse(&out).ok(), Some(new), "{out:?}");
    }
    assert_eq!(
        splicer.counts().full_checks,
        1,
        "the skeleton did not suffice"
    );
    assert!(blanks_follow("a\n\n \t\nb", 2) && !blanks_follow("a\n\nb\n \n", 2));
}
