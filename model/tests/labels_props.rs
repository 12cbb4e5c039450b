//! Property tests: `Labels` behaves like a sorted map of strings, and its
//! hash is Prometheus's definition.

use std::collections::BTreeMap;

use ember_model::labels::{Labels, LabelsBuilder};
use proptest::prelude::*;
use xxhash_rust::xxh64::xxh64;

fn name() -> impl Strategy<Value = String> {
    // Short names collide often (exercising duplicates); some are long
    // enough to need multi-byte length prefixes.
    prop_oneof!["[a-c_]{1,2}", "[a-zA-Z_.é]{1,12}", "x{120,140}",]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9]{0,8}", "\\PC{0,20}", "v{100,300}"]
}

fn pairs() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(name(), value(), 0..12)
}

fn reference_hash(map: &BTreeMap<String, String>) -> u64 {
    let mut input = Vec::new();
    for (name, value) in map {
        input.extend_from_slice(name.as_bytes());
        input.push(0xff);
        input.extend_from_slice(value.as_bytes());
        input.push(0xff);
    }
    xxh64(&input, 0)
}

proptest! {
    #[test]
    fn behaves_like_a_sorted_map(map in pairs()) {
        // Feed the pairs in reverse to exercise sorting.
        let labels = Labels::new(map.iter().rev()).expect("unique names");
        prop_assert_eq!(labels.len(), map.len());
        prop_assert_eq!(labels.is_empty(), map.is_empty());
        let listed: Vec<(&str, &str)> = labels.iter().collect();
        let expected: Vec<(&str, &str)> =
            map.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        prop_assert_eq!(listed, expected);
        for (name, value) in &map {
            prop_assert_eq!(labels.get(name), Some(value.as_str()));
        }
        prop_assert_eq!(labels.get("\u{10FFFF}"), None);
        prop_assert_eq!(labels.hash(), reference_hash(&map));
        let json = serde_json::to_string(&labels).expect("serialises");
        let back: Labels = serde_json::from_str(&json).expect("deserialises");
        prop_assert_eq!(back, labels);
    }

    #[test]
    fn order_and_equality_follow_the_pairs(a in pairs(), b in pairs()) {
        let la = Labels::new(&a).expect("unique");
        let lb = Labels::new(&b).expect("unique");
        let va: Vec<(&String, &String)> = a.iter().collect();
        let vb: Vec<(&String, &String)> = b.iter().collect();
        prop_assert_eq!(la.cmp(&lb), va.cmp(&vb));
        prop_assert_eq!(la == lb, a == b);
    }

    #[test]
    fn duplicate_names_are_rejected(map in pairs(), pick in any::<proptest::sample::Index>()) {
        prop_assume!(!map.is_empty());
        let mut list: Vec<(String, String)> = map.into_iter().collect();
        let duplicate = list[pick.index(list.len())].clone();
        list.push((duplicate.0, "other".to_owned()));
        prop_assert!(Labels::new(list).is_err());
    }

    #[test]
    fn builder_matches_a_map_model(
        base in pairs(),
        ops in proptest::collection::vec((0..3u8, name(), value()), 0..16),
    ) {
        let mut model = base.clone();
        let mut builder = LabelsBuilder::new(Labels::new(&base).expect("unique"));
        for (op, name, value) in ops {
            match op {
                0 => {
                    builder.set(&name, &value);
                    if value.is_empty() {
                        model.remove(&name);
                    } else {
                        model.insert(name, value);
                    }
                }
                1 => {
                    builder.del(&name);
                    model.remove(&name);
                }
                _ => {
                    let keep: Vec<&str> = model.keys().map(String::as_str)
                        .filter(|n| n.len() % 2 == 0).collect();
                    builder.keep(&keep);
                    model.retain(|n, _| n.len() % 2 == 0);
                }
            }
            for (name, value) in &model {
                prop_assert_eq!(builder.get(name), Some(value.as_str()));
            }
        }
        prop_assert_eq!(builder.labels(), Labels::new(&model).expect("unique"));
    }

    #[test]
    fn grouping_hashes_equal_hashes_of_restricted_sets(map in pairs(), mask in any::<u16>()) {
        let labels = Labels::new(&map).expect("unique");
        let names: Vec<&str> = map.keys().enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0).map(|(_, n)| n.as_str()).collect();
        prop_assert_eq!(labels.hash_for_labels(&names), labels.keep_only(&names).hash());
        let mut without = names.clone();
        without.push("__name__");
        prop_assert_eq!(labels.hash_without_labels(&names), labels.without(&without).hash());
    }
}
