use proptest::prelude::*;

use super::*;

/// The reader gives what serde_yaml gives: the same value, or the same error.
fn same_as_serde_yaml(text: &str) {
    assert_eq!(read(text).map(|p| p.value), parse(text), "{text:?}");
}

fn read_once(text: &str) -> (Value, Node) {
    one_pass(text).unwrap_or_else(|e| panic!("{text:?} was declined: {e}"))
}

#[test]
fn plain_scalars_resolve_as_serde_yaml_resolves_them() {
    let scalars = [
        "",
        "~",
        "null",
        "Null",
        "NULL",
        "nULL",
        "true",
        "True",
        "TRUE",
        "tRUE",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "y",
        "0",
        "-0",
        "+0",
        "7",
        "+7",
        "-7",
        "007",
        "-007",
        "+007",
        "08",
        "0x1F",
        "0x1f",
        "-0x1F",
        "+0x1F",
        "0x-1",
        "0x+1",
        "0o17",
        "-0o17",
        "0o8",
        "0b101",
        "-0b101",
        "0b2",
        "0x",
        "1_000",
        "1,000",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "340282366920938463463374607431768211455",
        "340282366920938463463374607431768211456",
        "1.5",
        "-1.5",
        "+1.5",
        ".5",
        "5.",
        "1e3",
        "1E-3",
        "-1e400",
        "1e400",
        ".inf",
        "-.inf",
        "+.inf",
        ".Inf",
        ".INF",
        ".nan",
        ".NaN",
        ".NAN",
        "-.nan",
        "inf",
        "nan",
        "infinity",
        "-",
        "+",
        ".",
        "0.",
        "00.5",
        "1:2",
        "12:30:00",
        "2024-01-01",
        "0755",
        "08.5",
        "+-1",
        "-+1",
        "1e",
        "0e0",
    ];
    for s in scalars {
        same_as_serde_yaml(&format!("v: {s}\n"));
        same_as_serde_yaml(&format!("- {s}\n"));
        // Keys are taken as written, whatever they would resolve to as values.
        same_as_serde_yaml(&format!("{s:?}: 1\n{s}x: 2\n"));
    }
}

#[test]
fn what_serde_yaml_decides_is_left_to_it() {
    let cases = [
        // Anchors, aliases, tags, merge keys.
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: !custom {b: 1}\n",
        "base: &b {a: 1}\nd:\n  <<: *b\n  c: 2\n",
        // Errors: duplicate keys, a mapping key, an integer beyond 64 bits, two documents,
        // a syntax error.
        "a: 1\na: 2\n",
        "[a]: 1\n",
        "{a: 1}: 2\n",
        "a: 340282366920938463463374607431768211455\n",
        "a: 1\n...\nb: 2\n",
        "a: [\n",
        "a: b: c\n",
        "\t- a\n",
        // Nothing at all, and only a scalar.
        "",
        "# a comment\n",
        "just text\n",
    ];
    for text in cases {
        same_as_serde_yaml(text);
    }
    for text in &cases[..9] {
        let declined = read(text).map(|p| p.spans.0.is_err());
        assert!(declined.unwrap_or(true), "{text:?}");
    }
}

#[test]
fn nesting_beyond_the_limit_is_left_to_serde_yaml() {
    for depth in [DEPTH - 1, DEPTH, 127, 128, 129, 200] {
        let text = format!("{}1{}\n", "[".repeat(depth), "]".repeat(depth));
        same_as_serde_yaml(&text);
        let block: String = (0..depth)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        same_as_serde_yaml(&block);
    }
    assert!(one_pass(&format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH))).is_ok());
    assert!(one_pass(&format!(
        "{}{}",
        "[".repeat(DEPTH + 1),
        "]".repeat(DEPTH + 1)
    ))
    .is_err());
}

#[test]
fn a_manifest_reads_in_one_pass() {
    let text = "# head\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: \"web\"  # the \
                site\n  labels: {app: web, tier: '1'}\nspec:\n  replicas: 2\n  template:\n    \
                spec:\n      containers:\n      - name: web\n        args:\n        - |\n          \
                line\n        - >-\n          folded\n        env: []\n";
    same_as_serde_yaml(text);
    let (value, _) = read_once(text);
    assert_eq!(value["spec"]["replicas"], 2);
    assert_eq!(value["metadata"]["labels"]["tier"], "1");
}

/// The text a node's span covers.
fn covered<'t>(text: &'t str, node: &Node) -> &'t str {
    &text[node.start()..node.end()]
}

fn entry<'n>(node: &'n Node, key: &str) -> &'n Node {
    let Node::Map { entries, .. } = node else {
        panic!("not a mapping: {node:?}")
    };
    &entries
        .iter()
        .find(|e| e.key == key)
        .unwrap_or_else(|| panic!("no {key}"))
        .value
}

#[test]
fn spans_are_where_the_text_is() {
    let text = "a: \"q\"   # a comment\nb:\n- x\n- |\n  lit\n\nc: {d: 1,\n  }\ne:\n  - [1]\né: ü\n";
    let (_, root) = read_once(text);
    // A quoted scalar ends at its quote, not at the comment after it.
    assert_eq!(covered(text, entry(&root, "a")), "\"q\"");
    // An indentless list starts at its first dash; a block scalar at its indicator, and it
    // ends with its last content line.
    let b = entry(&root, "b");
    assert_eq!(covered(text, b), "- x\n- |\n  lit");
    let Node::Seq { items, flow, .. } = b else {
        panic!("{b:?}")
    };
    assert!(!flow);
    assert_eq!(covered(text, &items[1]), "|\n  lit");
    assert!(matches!(items[1], Node::Scalar { block: true, .. }));
    // A flow mapping with a trailing comma ends at its bracket.
    let c = entry(&root, "c");
    assert!(matches!(c, Node::Map { flow: true, .. }));
    assert_eq!(covered(text, c), "{d: 1,\n  }");
    // `- [1]`: the block list, then the flow list as its item.
    let Node::Seq {
        flow: false, items, ..
    } = entry(&root, "e")
    else {
        panic!("a block list")
    };
    assert!(matches!(items[0], Node::Seq { flow: true, .. }));
    // Offsets are bytes.
    assert_eq!(covered(text, entry(&root, "é")), "ü");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Documents of random keys and scalars, nested in block and flow collections: the
    /// reader and serde_yaml agree on each.
    #[test]
    fn random_documents_read_as_serde_yaml_reads_them(doc in document()) {
        same_as_serde_yaml(&doc);
    }
}

fn scalar() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        "[-+]?(0[xob])?[0-9a-fA-F_.]{0,6}(e[-+]?[0-9]{1,3})?",
        "[a-zA-Z~. ]{0,8}",
        Just("~".to_string()),
        Just("'quoted'".to_string()),
        Just("\"dq \\t\"".to_string()),
        Just("true".to_string()),
        Just("0o777".to_string()),
    ]
}

fn document() -> impl Strategy<Value = String> {
    let leaf = scalar().prop_map(|s| s.trim().to_string()).boxed();
    let flow =
        prop::collection::vec(leaf.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", ")));
    let entries = prop::collection::vec(
        (
            "[a-z0-9~]{1,4}",
            prop_oneof![leaf.clone(), flow],
            any::<bool>(),
        ),
        1..6,
    );
    entries.prop_map(|es| {
        es.iter()
            .map(|(k, v, nested)| {
                if *nested {
                    format!("{k}:\n  - {v}\n  - {k}: {v}\n")
                } else {
                    format!("{k}: {v}\n")
                }
            })
            .collect()
    })
}
