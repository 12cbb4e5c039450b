//! The head's inverted index: label name → value → ascending series ids,
//! and the evaluation of matchers over it.
//!
//! Series ids are issued in increasing order and a series is added to the
//! index once, when it is created, so every list stays sorted by pushing at
//! the end. Values of one name are kept in a `BTreeMap`, which gives sorted
//! `label_values` for free and turns a regex with literal prefixes into range
//! scans.
//!
//! A matcher becomes a set operation (Prometheus's `PostingsForMatchers`):
//! a matcher that does not match the empty string selects the union of the
//! lists of the values it matches; one that does (`a=""`, `a!="x"`,
//! `a!~"x|y"`, `a=~"|x"`) selects *every* series minus the union of the
//! values it does not match, because a series without the label matches it.
//! The lists of the first kind are intersected, those of the second kind are
//! subtracted, and when there are only the second kind, they are subtracted
//! from the list of all series. Value lookups avoid scanning where the
//! matcher allows: `=` and `!=` look one value up, alternations
//! ([`Matcher::set_matches`]) look their values up, and literal prefixes
//! ([`Matcher::prefixes`]) scan only their ranges.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use ember_model::labels::Labels;
use ember_model::matcher::{MatchOp, Matcher};

/// A sorted, duplicate-free list of series ids.
pub(crate) type Ids = Vec<u64>;

/// The inverted index. Not synchronised; the head wraps it in a lock.
#[derive(Debug, Default)]
pub(crate) struct Postings {
    by_name: HashMap<Box<str>, BTreeMap<Box<str>, Ids>>,
    all: Ids,
}

impl Postings {
    /// Adds a new series, whose id must be larger than every id added so
    /// far (otherwise it is inserted in place, which is slower).
    pub(crate) fn add(&mut self, id: u64, labels: &Labels) {
        insert_sorted(&mut self.all, id);
        for (name, value) in labels {
            let values = match self.by_name.get_mut(name) {
                Some(values) => values,
                None => self.by_name.entry(name.into()).or_default(),
            };
            match values.get_mut(value) {
                Some(ids) => insert_sorted(ids, id),
                None => {
                    values.insert(value.into(), vec![id]);
                }
            }
        }
    }

    /// Removes series (id and labels) from the index: every list they are
    /// in is filtered once, however many of the removed series it holds.
    pub(crate) fn remove<'a>(&mut self, series: impl IntoIterator<Item = (u64, &'a Labels)>) {
        let mut ids: Vec<u64> = Vec::new();
        let mut affected: HashMap<&'a str, Vec<&'a str>> = HashMap::new();
        for (id, labels) in series {
            ids.push(id);
            for (name, value) in labels {
                affected.entry(name).or_default().push(value);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let gone = |id: &u64| ids.binary_search(id).is_ok();
        self.all.retain(|id| !gone(id));
        for (name, mut values) in affected {
            values.sort_unstable();
            values.dedup();
            let Some(by_value) = self.by_name.get_mut(name) else {
                continue;
            };
            for value in values {
                if let Some(list) = by_value.get_mut(value) {
                    list.retain(|id| !gone(id));
                    if list.is_empty() {
                        by_value.remove(value);
                    } else {
                        list.shrink_to_fit();
                    }
                }
            }
            if by_value.is_empty() {
                self.by_name.remove(name);
            }
        }
    }

    /// Label names, ascending.
    pub(crate) fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_name.keys().map(|n| &**n).collect();
        names.sort_unstable();
        names
    }

    /// The values of `name` with their ids, ascending by value.
    pub(crate) fn values(&self, name: &str) -> impl Iterator<Item = (&str, &[u64])> + '_ {
        self.by_name
            .get(name)
            .into_iter()
            .flat_map(|values| values.iter().map(|(v, ids)| (&**v, ids.as_slice())))
    }

    /// The ids of the series that satisfy every matcher.
    pub(crate) fn select(&self, matchers: &[Matcher]) -> Ids {
        let mut intersect: Vec<Ids> = Vec::new();
        let mut subtract: Vec<Ids> = Vec::new();
        for matcher in matchers {
            if is_match_all(matcher) {
                continue;
            }
            if matcher.matches_empty() {
                subtract.push(self.values_not_matching(matcher));
            } else {
                let ids = self.values_matching(matcher);
                if ids.is_empty() {
                    return Ids::new();
                }
                intersect.push(ids);
            }
        }
        let mut result = if intersect.is_empty() {
            self.all.clone()
        } else {
            intersect.sort_by_key(Vec::len);
            let mut lists = intersect.into_iter();
            let first = lists.next().unwrap_or_default();
            lists.fold(first, |acc, list| intersect_sorted(&acc, &list))
        };
        for list in subtract {
            if result.is_empty() {
                break;
            }
            result = subtract_sorted(&result, &list);
        }
        result
    }

    /// Union of the lists of `name`'s values that `matcher` matches.
    fn values_matching(&self, matcher: &Matcher) -> Ids {
        let Some(values) = self.by_name.get(matcher.name()) else {
            return Ids::new();
        };
        let mut lists: Vec<&[u64]> = Vec::new();
        match matcher.op() {
            MatchOp::Equal => lists.extend(values.get(matcher.value()).map(Vec::as_slice)),
            MatchOp::Regex => {
                if let Some(set) = matcher.set_matches() {
                    lists.extend(
                        set.iter()
                            .filter_map(|v| values.get(v.as_str()))
                            .map(Vec::as_slice),
                    );
                } else if let Some(prefixes) = matcher.prefixes() {
                    for prefix in prefixes {
                        let range = values
                            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded));
                        for (value, ids) in range {
                            if !value.starts_with(prefix.as_str()) {
                                break;
                            }
                            if matcher.matches(value) {
                                lists.push(ids);
                            }
                        }
                    }
                } else {
                    lists.extend(
                        values
                            .iter()
                            .filter(|(v, _)| matcher.matches(v))
                            .map(|(_, ids)| ids.as_slice()),
                    );
                }
            }
            MatchOp::NotEqual | MatchOp::NotRegex => lists.extend(
                values
                    .iter()
                    .filter(|(v, _)| matcher.matches(v))
                    .map(|(_, ids)| ids.as_slice()),
            ),
        }
        union_sorted(&lists)
    }

    /// Union of the lists of `name`'s values that `matcher` does not match
    /// (for a matcher that matches the empty string).
    fn values_not_matching(&self, matcher: &Matcher) -> Ids {
        let Some(values) = self.by_name.get(matcher.name()) else {
            return Ids::new();
        };
        let mut lists: Vec<&[u64]> = Vec::new();
        match matcher.op() {
            // `a!="x"` excludes exactly `a="x"`.
            MatchOp::NotEqual => lists.extend(values.get(matcher.value()).map(Vec::as_slice)),
            // `a!~"x|y"` excludes exactly the values of the set.
            MatchOp::NotRegex if matcher.set_matches().is_some() => {
                let set = matcher.set_matches().unwrap_or_default();
                lists.extend(
                    set.iter()
                        .filter_map(|v| values.get(v.as_str()))
                        .map(Vec::as_slice),
                );
            }
            _ => lists.extend(
                values
                    .iter()
                    .filter(|(v, _)| !matcher.matches(v))
                    .map(|(_, ids)| ids.as_slice()),
            ),
        }
        union_sorted(&lists)
    }
}

/// `=~".*"`: matches every value and the absent label, so it restricts
/// nothing.
fn is_match_all(matcher: &Matcher) -> bool {
    matcher.op() == MatchOp::Regex && matcher.value() == ".*"
}

fn insert_sorted(ids: &mut Ids, id: u64) {
    match ids.last() {
        Some(&last) if last >= id => {
            if let Err(i) = ids.binary_search(&id) {
                ids.insert(i, id);
            }
        }
        _ => ids.push(id),
    }
}

/// The sorted union of sorted lists.
pub(crate) fn union_sorted(lists: &[&[u64]]) -> Ids {
    match lists {
        [] => Ids::new(),
        [one] => one.to_vec(),
        [a, b] => {
            let mut out = Vec::with_capacity(a.len() + b.len());
            let (mut i, mut j) = (0, 0);
            while i < a.len() && j < b.len() {
                match a[i].cmp(&b[j]) {
                    std::cmp::Ordering::Less => {
                        out.push(a[i]);
                        i += 1;
                    }
                    std::cmp::Ordering::Greater => {
                        out.push(b[j]);
                        j += 1;
                    }
                    std::cmp::Ordering::Equal => {
                        out.push(a[i]);
                        i += 1;
                        j += 1;
                    }
                }
            }
            out.extend_from_slice(&a[i..]);
            out.extend_from_slice(&b[j..]);
            out
        }
        many => {
            let mut out: Ids = many.iter().flat_map(|l| l.iter().copied()).collect();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

/// The sorted intersection of two sorted lists, galloping through the
/// longer one.
pub(crate) fn intersect_sorted(a: &[u64], b: &[u64]) -> Ids {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(short.len());
    let mut rest = long;
    for &id in short {
        let i = gallop(rest, id);
        rest = &rest[i..];
        match rest.first() {
            Some(&found) if found == id => out.push(id),
            Some(_) => {}
            None => break,
        }
    }
    out
}

/// `a` without the ids in `b`, both sorted.
pub(crate) fn subtract_sorted(a: &[u64], b: &[u64]) -> Ids {
    let mut out = Vec::with_capacity(a.len());
    let mut rest = b;
    for &id in a {
        let i = gallop(rest, id);
        rest = &rest[i..];
        if rest.first() != Some(&id) {
            out.push(id);
        }
    }
    out
}

/// The index of the first element `>= id`, found by exponential then
/// binary search (fast when the answer is near the front).
fn gallop(list: &[u64], id: u64) -> usize {
    let mut bound = 1;
    while bound < list.len() && list[bound - 1] < id {
        bound *= 2;
    }
    let lo = bound / 2;
    let hi = bound.min(list.len());
    lo + list[lo..hi].partition_point(|&x| x < id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::new(pairs.iter().copied()).expect("labels")
    }

    fn index() -> Postings {
        let mut p = Postings::default();
        p.add(
            1,
            &labels(&[("__name__", "up"), ("job", "api"), ("env", "prod")]),
        );
        p.add(2, &labels(&[("__name__", "up"), ("job", "web")]));
        p.add(
            3,
            &labels(&[("__name__", "up"), ("job", "apiserver"), ("env", "dev")]),
        );
        p.add(4, &labels(&[("__name__", "other"), ("job", "db")]));
        p
    }

    #[test]
    fn remove_filters_lists_and_drops_empty_values() {
        let mut p = index();
        let l1 = labels(&[("__name__", "up"), ("job", "api"), ("env", "prod")]);
        let l4 = labels(&[("__name__", "other"), ("job", "db")]);
        p.remove([(1, &l1), (4, &l4)]);
        assert_eq!(p.select(&[]), [2, 3]);
        assert_eq!(p.select(&[Matcher::equal("__name__", "up")]), [2, 3]);
        assert!(p.select(&[Matcher::equal("job", "api")]).is_empty());
        let values: Vec<&str> = p.values("job").map(|(v, _)| v).collect();
        assert_eq!(values, ["apiserver", "web"]);
        let names = p.names();
        assert_eq!(names, ["__name__", "env", "job"]);
        let env: Vec<&str> = p.values("env").map(|(v, _)| v).collect();
        assert_eq!(env, ["dev"]);
    }

    fn re(name: &str, value: &str) -> Matcher {
        Matcher::new(MatchOp::Regex, name, value).expect("regex")
    }

    fn nre(name: &str, value: &str) -> Matcher {
        Matcher::new(MatchOp::NotRegex, name, value).expect("regex")
    }

    #[test]
    fn matchers_follow_prometheus_semantics() {
        let p = index();
        let cases: Vec<(Vec<Matcher>, Vec<u64>)> = vec![
            (vec![], vec![1, 2, 3, 4]),
            (vec![Matcher::equal("__name__", "up")], vec![1, 2, 3]),
            (vec![Matcher::equal("job", "nope")], vec![]),
            (vec![Matcher::equal("env", "")], vec![2, 4]),
            (vec![Matcher::not_equal("env", "")], vec![1, 3]),
            (vec![Matcher::not_equal("env", "prod")], vec![2, 3, 4]),
            (vec![re("job", "api|web")], vec![1, 2]),
            (vec![re("job", "api.*")], vec![1, 3]),
            (vec![re("job", ".*")], vec![1, 2, 3, 4]),
            (vec![re("job", ".+")], vec![1, 2, 3, 4]),
            (vec![re("env", "|dev")], vec![2, 3, 4]),
            (vec![re("env", ".+")], vec![1, 3]),
            (vec![nre("job", "api|web")], vec![3, 4]),
            (vec![nre("env", ".*")], vec![]),
            (vec![nre("job", "a.*")], vec![2, 4]),
            (
                vec![
                    Matcher::equal("__name__", "up"),
                    Matcher::not_equal("job", "web"),
                ],
                vec![1, 3],
            ),
            (vec![Matcher::equal("missing", "")], vec![1, 2, 3, 4]),
            (vec![Matcher::not_equal("missing", "x")], vec![1, 2, 3, 4]),
            (vec![re("missing", "x")], vec![]),
        ];
        for (matchers, want) in cases {
            assert_eq!(p.select(&matchers), want, "{matchers:?}");
        }
    }

    #[test]
    fn set_operations() {
        assert_eq!(
            intersect_sorted(&[1, 3, 5, 7, 9], &[2, 3, 4, 9, 10]),
            vec![3, 9]
        );
        assert_eq!(intersect_sorted(&[], &[1]), Vec::<u64>::new());
        assert_eq!(subtract_sorted(&[1, 2, 3, 4, 5], &[2, 4, 6]), vec![1, 3, 5]);
        assert_eq!(union_sorted(&[&[1, 4], &[2, 4, 5]]), vec![1, 2, 4, 5]);
        assert_eq!(union_sorted(&[&[1], &[3], &[2, 3]]), vec![1, 2, 3]);
        let long: Vec<u64> = (0..1000).map(|i| i * 2).collect();
        assert_eq!(
            intersect_sorted(&[3, 500, 1998, 5000], &long),
            vec![500, 1998]
        );
        assert_eq!(gallop(&long, 0), 0);
        assert_eq!(gallop(&long, 1999), 1000);
    }
}
