//! Relabeling semantics end to end: rules as users write them in YAML,
//! validated by this crate, applied by `ember_model::relabel`. Each case:
//! input labels, rules, and the expected output (or `None` for dropped).

use ember_config::RelabelConfig;
use ember_model::labels::Labels;
use ember_model::relabel::process_labels;

fn rules(yaml: &str) -> Vec<RelabelConfig> {
    let indented: String = yaml.lines().map(|l| format!("      {l}\n")).collect();
    let text = format!("scrape_configs:\n  - job_name: t\n    relabel_configs:\n{indented}");
    let config = ember_config::parse(&text, std::path::Path::new("test.yml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    ember_config::rules_only(&config.scrape_configs[0].relabel_configs)
        .expect("built-in rules only")
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().copied()).unwrap()
}

fn check(input: &[(&str, &str)], yaml: &str, expected: Option<&[(&str, &str)]>) {
    let got = process_labels(&labels(input), &rules(yaml));
    assert_eq!(got, expected.map(labels), "rules:\n{yaml}");
}

#[test]
fn replace_with_captures_and_templated_target() {
    check(
        &[("a", "foo"), ("b", "bar"), ("c", "baz")],
        "- source_labels: [a]\n  regex: f(.*)\n  target_label: d\n  separator: ';'\n  replacement: ch${1}-ch${1}\n",
        Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "choo-choo")]),
    );
    check(
        &[("a", "some-name-value")],
        "- source_labels: [a]\n  regex: some-([^-]+)-([^,]+)\n  target_label: ${1}\n  replacement: ${2}\n",
        Some(&[("a", "some-name-value"), ("name", "value")]),
    );
    // Several sources joined by the separator; a missing source is empty.
    check(
        &[("a", "foo"), ("b", "bar")],
        "- source_labels: [a, b, missing]\n  separator: '|'\n  regex: (.*)\n  target_label: joined\n",
        Some(&[("a", "foo"), ("b", "bar"), ("joined", "foo|bar|")]),
    );
}

#[test]
fn replace_without_match_changes_nothing_and_empty_result_deletes() {
    check(
        &[("a", "foo")],
        "- source_labels: [a]\n  regex: nomatch(.*)\n  target_label: d\n",
        Some(&[("a", "foo")]),
    );
    check(
        &[("a", "foo"), ("d", "old")],
        "- source_labels: [a]\n  regex: foo\n  target_label: d\n  replacement: ''\n",
        Some(&[("a", "foo")]),
    );
    // `$1x` names a group called "1x" (Go's and Rust's rule), which is empty.
    check(
        &[("a", "foo")],
        "- source_labels: [a]\n  regex: (f)oo\n  target_label: d\n  replacement: $1x\n",
        Some(&[("a", "foo")]),
    );
}

#[test]
fn replace_fast_path_sets_constant_labels() {
    check(
        &[("a", "foo")],
        "- target_label: env\n  replacement: prod\n",
        Some(&[("a", "foo"), ("env", "prod")]),
    );
}

#[test]
fn regexes_are_fully_anchored() {
    check(
        &[("a", "foobar")],
        "- source_labels: [a]\n  regex: foo\n  action: keep\n",
        None,
    );
    check(
        &[("a", "foo")],
        "- source_labels: [a]\n  regex: foo|bar\n  action: keep\n",
        Some(&[("a", "foo")]),
    );
}

#[test]
fn keep_and_drop() {
    check(
        &[("a", "foo")],
        "- source_labels: [a]\n  regex: f.*\n  action: drop\n",
        None,
    );
    check(
        &[("a", "boo")],
        "- source_labels: [a]\n  regex: f.*\n  action: drop\n",
        Some(&[("a", "boo")]),
    );
    check(
        &[("a", "boo")],
        "- source_labels: [a]\n  regex: f.*\n  action: keep\n",
        None,
    );
    // Keep on a missing label matches the empty string.
    check(
        &[("a", "x")],
        "- source_labels: [b]\n  regex: ''\n  action: keep\n",
        Some(&[("a", "x")]),
    );
}

#[test]
fn keepequal_and_dropequal_compare_with_the_target_label() {
    let input = [("a", "1"), ("b", "1"), ("c", "2")];
    check(
        &input,
        "- source_labels: [a]\n  target_label: b\n  action: keepequal\n",
        Some(&input),
    );
    check(
        &input,
        "- source_labels: [a]\n  target_label: c\n  action: keepequal\n",
        None,
    );
    check(
        &input,
        "- source_labels: [a]\n  target_label: b\n  action: dropequal\n",
        None,
    );
    check(
        &input,
        "- source_labels: [a]\n  target_label: c\n  action: dropequal\n",
        Some(&input),
    );
}

#[test]
fn hashmod_matches_prometheus() {
    // The last eight bytes of md5("baz"), big-endian, modulo 1000 are 976
    // (checked independently with Python's hashlib); Prometheus's own
    // relabel tests expect the same value for this input.
    check(
        &[("a", "foo"), ("b", "bar"), ("c", "baz")],
        "- source_labels: [c]\n  target_label: d\n  modulus: 1000\n  action: hashmod\n",
        Some(&[("a", "foo"), ("b", "bar"), ("c", "baz"), ("d", "976")]),
    );
}

#[test]
fn labelmap_labeldrop_labelkeep() {
    check(
        &[
            ("__meta_kubernetes_pod_label_app", "web"),
            ("__meta_kubernetes_pod_label_tier", "front"),
            ("job", "j"),
        ],
        "- regex: __meta_kubernetes_pod_label_(.+)\n  action: labelmap\n",
        Some(&[
            ("__meta_kubernetes_pod_label_app", "web"),
            ("__meta_kubernetes_pod_label_tier", "front"),
            ("app", "web"),
            ("job", "j"),
            ("tier", "front"),
        ]),
    );
    check(
        &[("a", "1"), ("b1", "2"), ("b2", "3")],
        "- regex: b.\n  action: labeldrop\n",
        Some(&[("a", "1")]),
    );
    check(
        &[("a", "1"), ("b1", "2"), ("b2", "3")],
        "- regex: b.\n  action: labelkeep\n",
        Some(&[("b1", "2"), ("b2", "3")]),
    );
}

#[test]
fn lowercase_and_uppercase() {
    check(
        &[("foo", "bAr123Foo")],
        "- source_labels: [foo]\n  target_label: foo_lower\n  action: lowercase\n- source_labels: [foo]\n  target_label: foo_upper\n  action: uppercase\n",
        Some(&[
            ("foo", "bAr123Foo"),
            ("foo_lower", "bar123foo"),
            ("foo_upper", "BAR123FOO"),
        ]),
    );
}

#[test]
fn rules_apply_in_order_and_see_earlier_results() {
    check(
        &[("__address__", "10.0.0.1:9100")],
        "- source_labels: [__address__]\n  regex: '([^:]+):.*'\n  target_label: host\n- source_labels: [host]\n  regex: 10\\..*\n  action: keep\n",
        Some(&[("__address__", "10.0.0.1:9100"), ("host", "10.0.0.1")]),
    );
}
