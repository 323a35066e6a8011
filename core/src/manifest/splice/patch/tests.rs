use std::sync::Arc;

use serde_json::{json, Value};

use crate::manifest::{parse, Splicer};
use crate::patch::{Added, Patch, PatchBuilder, Shared};

fn set_ports(v: &mut Value, s: &str) {
    v["env"][0]["value"] = Value::String(s.to_string());
}

fn proxy() -> Arc<Shared> {
    let value = json!({
        "name": "linkerd-proxy",
        "env": [{"name": "LINKERD2_PROXY_INBOUND_PORTS", "value": ""}],
        "args": ["--log", "warn,linkerd=info"],
    });
    Arc::new(Shared::with_hole(value, set_ports))
}

fn patch(adds: Vec<(&[&str], Added)>) -> Patch {
    let mut b = PatchBuilder::new(&[]);
    for (path, value) in adds {
        b.add(path, value);
    }
    b.finish()
}

/// Splices `patch` into `text` and checks that the result reads as the patched value.
fn spliced(splicer: &mut Splicer, text: &str, patch: &Patch) -> String {
    let old = parse(text).unwrap();
    let out = splicer
        .splice_patches(text, &old, &[(None, patch.clone())])
        .unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let mut want = old;
    patch.apply(&mut want).unwrap();
    assert_eq!(parse(&out).unwrap(), want, "{out}");
    out
}

fn refused(text: &str, patch: &Patch) -> String {
    let old = parse(text).unwrap();
    Splicer::default()
        .splice_patches(text, &old, &[(None, patch.clone())])
        .expect_err("it is not spliced")
        .0
}

#[test]
fn what_goes_into_an_inner_mapping_comes_before_what_goes_after_it() {
    // `labels` and `metadata` end on the same line: the new label is written first.
    let text = "spec:\n  template:\n    metadata:\n      labels:\n        app: a\n";
    let p = patch(vec![
        (
            &["spec", "template", "metadata", "annotations"],
            json!({}).into(),
        ),
        (
            &["spec", "template", "metadata", "annotations", "x"],
            json!("1").into(),
        ),
        (
            &["spec", "template", "metadata", "labels", "l"],
            json!("2").into(),
        ),
    ]);
    assert_eq!(
        spliced(&mut Splicer::default(), text, &p),
        "spec:\n  template:\n    metadata:\n      labels:\n        app: a\n        l: '2'\n      \
         annotations:\n        x: '1'\n"
    );
}

#[test]
fn items_go_before_the_item_whose_place_they_take() {
    let text =
        "spec:\n  initContainers:\n  # the user's own\n  - name: mine\n  volumes:\n  - name: v\n";
    let p = patch(vec![
        (
            &["spec", "initContainers", "0"],
            json!({"name": "linkerd-init"}).into(),
        ),
        (
            &["spec", "initContainers", "1"],
            Added::Shared(proxy(), "8080".into()),
        ),
        (&["spec", "volumes", "-"], json!({"name": "end"}).into()),
    ]);
    let out = spliced(&mut Splicer::default(), text, &p);
    assert!(
        out.starts_with(
            "spec:\n  initContainers:\n  # the user's own\n  - name: linkerd-init\n  - name: \
             linkerd-proxy\n"
        ),
        "{out}"
    );
    assert!(out.ends_with("  - name: mine\n  volumes:\n  - name: v\n  - name: end\n"));
}

#[test]
fn a_shared_value_is_rendered_once_and_its_hole_filled_per_document() {
    let shared = proxy();
    let mut splicer = Splicer::default();
    let text = "spec:\n  containers:\n  - name: app\n";
    for ports in ["8080,9090", "", "a: b", "#x", "true", "two\nlines", "'q'"] {
        let p = patch(vec![(
            &["spec", "containers", "-"],
            Added::Shared(shared.clone(), ports.into()),
        )]);
        spliced(&mut splicer, text, &p);
    }
    let counts = splicer.counts();
    assert_eq!((counts.rendered, counts.reused, counts.patched), (1, 6, 7));
}

#[test]
fn created_containers_are_written_whole_in_the_document_style() {
    // Four spaces a level, lists indented under their key.
    let text = "kind: Pod\nspec:\n    containers:\n        -   name: app\n";
    let p = patch(vec![
        (&["metadata"], json!({}).into()),
        (&["metadata", "annotations"], json!({}).into()),
        (&["metadata", "annotations", "a"], json!("b").into()),
        (&["spec", "volumes"], json!([]).into()),
        (
            &["spec", "volumes", "-"],
            json!({"name": "v", "emptyDir": {}}).into(),
        ),
    ]);
    let out = spliced(&mut Splicer::default(), text, &p);
    assert!(
        out.contains("    volumes:\n        - name: v\n          emptyDir: {}\n"),
        "{out}"
    );
    assert!(
        out.ends_with("metadata:\n    annotations:\n        a: b\n"),
        "{out}"
    );
}

#[test]
fn line_ends_are_kept() {
    let text = "a:\r\n  b: 1\r\n  c: 2\r\n";
    let p = patch(vec![(&["a", "d"], json!({"e": [1]}).into())]);
    let out = spliced(&mut Splicer::default(), text, &p);
    assert_eq!(
        out,
        "a:\r\n  b: 1\r\n  c: 2\r\n  d:\r\n    e:\r\n    - 1\r\n"
    );
    // Without a final line end, what ends the text could take in the one lines would need.
    assert!(refused("a:\n  b: |\n    :", &p).contains("final line end"));
}

#[test]
fn an_item_goes_after_an_empty_last_item() {
    let p = patch(vec![(&["a", "-"], json!("x").into())]);
    assert_eq!(
        spliced(&mut Splicer::default(), "a:\n- 1\n-\nb: 2\n", &p),
        "a:\n- 1\n-\n- x\nb: 2\n"
    );
}

#[test]
fn a_scalar_given_another_value_is_replaced_in_place() {
    let text = "metadata:\n  annotations:\n    n: 1   # a number\n";
    let p = patch(vec![(&["metadata", "annotations", "n"], json!("1").into())]);
    assert_eq!(
        spliced(&mut Splicer::default(), text, &p),
        "metadata:\n  annotations:\n    n: '1'   # a number\n"
    );
}

#[test]
fn a_list_items_patches_go_into_its_items() {
    let text = "kind: List\nitems:\n- kind: A\n  metadata: {name: a}\n- kind: B\n";
    let old = parse(text).unwrap();
    let p = patch(vec![(&["spec"], json!({"x": 1}).into())]);
    let out = Splicer::default()
        .splice_patches(text, &old, &[(Some(1), p.clone())])
        .unwrap();
    let mut want = old;
    p.apply(&mut want["items"][1]).unwrap();
    assert_eq!(parse(&out).unwrap(), want);
    assert!(out.ends_with("- kind: B\n  spec:\n    x: 1\n"), "{out}");
}

#[test]
fn what_could_read_differently_is_refused() {
    let add = |path: &[&str]| patch(vec![(path, json!({"k": "v"}).into())]);
    let cases: Vec<(&str, Patch, &str)> = vec![
        ("a: {b: 1}\n", add(&["a", "c"]), "flow node"),
        ("a: x\nb: 0o0o\n \t\n", add(&["c"]), "blank lines"),
        ("a: &x\n  b: 1\nc: *x\n", add(&["a", "d"]), "anchor"),
        (
            "a:\n  b: 1\nc:\n  <<: {d: 1}\n",
            add(&["a", "e"]),
            "merge keys",
        ),
        ("a: [1]\n", add(&["a", "-"]), "flow node"),
        ("a:\n  b: 1\n", add(&["a", "b"]), "collection"),
        ("a:\n  b: 1\n", add(&["x", "y"]), "not there"),
        (
            "a:\n- - 1\n",
            add(&["a", "0", "-"]),
            "does not start its line",
        ),
        ("a:\n  b: 1\rc: 2\n", add(&["a", "d"]), "other than"),
        ("? \n  k\n", add(&["l"]), "explicit key"),
        ("a:\n  k: |+\n\nb: 1\n", add(&["a", "l"]), "blank lines"),
        ("a:\n- 1\nb:\n-\n-\n", add(&["c"]), "goes on after"),
        ("a:\n- ? k\n  : v\n", add(&["a", "0", "l"]), "explicit key"),
        (
            "a:\n  b: |\n   x\n    \nc: 1\n",
            add(&["a", "d"]),
            "blank lines",
        ),
        ("a:\n  b: 1\u{2028}c: 2\n", add(&["a", "d"]), "other than"),
    ];
    for (text, p, why) in cases {
        let got = refused(text, &p);
        assert!(got.contains(why), "{text:?}: {got}");
    }
    // A text ending in a literal block, before blank lines, could take them in.
    let literal = patch(vec![(&["a", "c"], json!({"d": "one\ntwo\n"}).into())]);
    assert!(refused("a:\n  b: 1\n\n  \nz: 1\n", &literal).contains("blank lines"));
    spliced(&mut Splicer::default(), "a:\n  b: 1\nz: 1\n", &literal);
    // A flow node with a trailing comma before its line end: libyaml's span ends at its
    // bracket (another parser's stopped at the comma, and the item went inside the node).
    let out = spliced(
        &mut Splicer::default(),
        "a:\n- {b: 1,\n  }\n",
        &add(&["a", "-"]),
    );
    assert_eq!(out, "a:\n- {b: 1,\n  }\n- k: v\n");
}

#[test]
fn a_value_that_is_not_what_the_text_says_is_refused() {
    let text = "a:\n  b: 1\n";
    let other = json!({"a": {"c": 1}});
    let p = patch(vec![(&["a", "d"], json!(1).into())]);
    let e = Splicer::default()
        .splice_patches(text, &other, &[(None, p)])
        .unwrap_err();
    assert!(e.0.contains("not what the text says"), "{e}");
}

/// What `inject --manual` adds to Deployments written in two styles (and a List of them)
/// goes the direct way, every document of a config after the first reuses the shared texts,
/// and each result reads as the patched value. Were the direct way to refuse, the output
/// would be the same, written the slow way: this keeps that from happening unnoticed.
#[test]
fn real_injection_patches_are_written_directly() {
    use crate::config::{self, overrides::Annotations};
    use crate::inject::{self, Mode, RenderCache, Request};
    use crate::manifest::{Format, Writer, Written};

    let mut values = config::load([]).unwrap();
    values.identity_trust_anchors_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n".into();
    let values = Arc::new(values);
    let (none, cache) = (Annotations::new(), RenderCache::default());
    let req =
        Request::cli(&values, "linkerd", "t", Mode::Full, &none, &none).cached(&cache, &values);
    let two_space = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web  # front\n\
                     spec:\n  template:\n    metadata:\n      labels:\n        app: web\n    \
                     spec:\n      containers:\n      - name: web\n        image: nginx\n        \
                     ports:\n        - containerPort: 8080\n";
    let four_space = "kind: Deployment\nmetadata:\n    name: api\nspec:\n    template:\n        \
                      spec:\n            initContainers:\n                - name: migrate\n\
                      \x20                 image: m\n            containers:\n                \
                      - {name: api, image: a}\n";
    let list = format!(
        "kind: List\nitems:\n- {}\n",
        two_space.replace('\n', "\n  ").trim_end()
    );
    let mut writer = Writer::new(Format::Yaml);
    let mut after = Vec::new();
    for text in [two_space, two_space, four_space, list.as_str()] {
        let parsed = crate::manifest::read(text).unwrap();
        let doc = parsed.value.clone();
        let patches: Vec<(Option<usize>, Patch)> = match doc["kind"].as_str() {
            Some("List") => vec![(
                Some(0),
                inject::inject(&doc["items"][0], &req).unwrap().patch,
            )],
            _ => vec![(None, inject::inject(&doc, &req).unwrap().patch)],
        };
        let mut out = crate::manifest::Rope::new();
        let written = writer
            .write_patched(&mut out, text, &parsed, &patches)
            .unwrap();
        assert_eq!(written, Written::Spliced, "{text}");
        let mut want = doc.clone();
        for (item, p) in &patches {
            let target = match item {
                Some(i) => &mut want["items"][*i],
                None => &mut want,
            };
            p.apply(target).unwrap();
        }
        let out = out.to_string();
        let body = out.strip_suffix("---\n").unwrap();
        assert_eq!(parse(body).unwrap(), want, "{body}");
        assert_eq!(body.contains("# front"), text.contains("# front"), "{body}");
        after.push(writer.counts());
    }
    let counts = writer.counts();
    assert_eq!((counts.patched, counts.full_checks), (4, 0));
    // The second document of a style renders nothing: the init container, the proxy and the
    // three volumes are copies.
    assert_eq!(after[1].rendered, after[0].rendered, "{after:?}");
    assert_eq!(after[1].reused - after[0].reused, 5, "{after:?}");
}
