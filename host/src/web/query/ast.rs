//! `/api/v1/parse_query`: the syntax tree as JSON, in the shape of
//! Prometheus's `translateAST` (the tree view of its UI).
//!
//! Object keys come out sorted (serde_json's map is ordered), as Go sorts
//! map keys. Selectors list their `__name__` matcher last, after the label
//! matchers, as Prometheus's parser appends it; binary expressions carry
//! `matching` only between two instant vectors, with `many-to-many` for
//! the set operators.

use std::time::{Duration, SystemTime};

use ember_promql::parser::{
    AstMatcher, AtModifier, BinaryExpr, Expr, LabelModifier, Offset, TokenType, ValueType,
    VectorMatchCardinality, VectorSelector, token,
};
use ember_promql::value::format_float;
use serde_json::{Value, json};

/// The JSON tree of `expr`.
pub fn translate(expr: &Expr) -> Value {
    match expr {
        Expr::Aggregate(aggregate) => {
            let (grouping, without) = match &aggregate.modifier {
                Some(LabelModifier::Include(labels)) => (labels.labels.clone(), false),
                Some(LabelModifier::Exclude(labels)) => (labels.labels.clone(), true),
                None => (Vec::new(), false),
            };
            json!({
                "type": "aggregation",
                "op": operator(aggregate.op),
                "expr": translate(&aggregate.expr),
                "param": aggregate.param.as_deref().map_or(Value::Null, translate),
                "grouping": grouping,
                "without": without,
            })
        }
        Expr::Unary(unary) => json!({
            "type": "unaryExpr",
            "op": "-",
            "expr": translate(&unary.expr),
        }),
        Expr::Binary(binary) => json!({
            "type": "binaryExpr",
            "op": operator(binary.op),
            "lhs": translate(&binary.lhs),
            "rhs": translate(&binary.rhs),
            "matching": matching(binary),
            "bool": binary.modifier.as_ref().is_some_and(|m| m.return_bool),
        }),
        Expr::Paren(paren) => json!({ "type": "parenExpr", "expr": translate(&paren.expr) }),
        Expr::Subquery(subquery) => json!({
            "type": "subquery",
            "expr": translate(&subquery.expr),
            "range": millis(subquery.range),
            "offset": offset_millis(subquery.offset.as_ref()),
            "step": subquery.step.map_or(0, millis),
            "timestamp": timestamp(subquery.at.as_ref()),
            "startOrEnd": start_or_end(subquery.at.as_ref()),
        }),
        Expr::NumberLiteral(number) => {
            json!({ "type": "numberLiteral", "val": format_float(number.val) })
        }
        Expr::StringLiteral(string) => json!({ "type": "stringLiteral", "val": string.val }),
        Expr::VectorSelector(selector) => {
            let mut node = selector_fields(selector);
            node["type"] = json!("vectorSelector");
            node
        }
        Expr::MatrixSelector(matrix) => {
            let mut node = selector_fields(&matrix.vs);
            node["type"] = json!("matrixSelector");
            node["range"] = json!(millis(matrix.range));
            node
        }
        Expr::Call(call) => json!({
            "type": "call",
            "func": {
                "name": call.func.name,
                "argTypes": call.func.arg_types.iter().map(|t| value_type(*t)).collect::<Vec<_>>(),
                "variadic": call.func.variadic,
                "returnType": value_type(call.func.return_type),
            },
            "args": call.args.args.iter().map(|arg| translate(arg)).collect::<Vec<_>>(),
        }),
        // Extensions are the parser crate's hook for non-PromQL syntax,
        // which Ember's queries never contain.
        Expr::Extension(_) => Value::Null,
    }
}

fn selector_fields(selector: &VectorSelector) -> Value {
    let mut matchers: Vec<Value> = selector.matchers.matchers.iter().map(matcher).collect();
    if let Some(name) = &selector.name {
        matchers.push(json!({ "name": "__name__", "type": "=", "value": name }));
    }
    json!({
        "name": selector.name.as_deref().unwrap_or_default(),
        "offset": offset_millis(selector.offset.as_ref()),
        "matchers": matchers,
        "timestamp": timestamp(selector.at.as_ref()),
        "startOrEnd": start_or_end(selector.at.as_ref()),
    })
}

fn matcher(matcher: &AstMatcher) -> Value {
    json!({ "name": matcher.name, "type": matcher.op.to_string(), "value": matcher.value })
}

/// Prometheus keeps vector matching only between two instant vectors.
fn matching(binary: &BinaryExpr) -> Value {
    let vectors = [&binary.lhs, &binary.rhs]
        .iter()
        .all(|side| side.value_type() == ValueType::Vector);
    if !vectors {
        return Value::Null;
    }
    let set_operator = matches!(
        binary.op.id(),
        token::T_LAND | token::T_LOR | token::T_LUNLESS
    );
    let modifier = binary.modifier.as_ref();
    let card = match modifier.map(|m| &m.card) {
        Some(VectorMatchCardinality::ManyToOne(_)) => "many-to-one",
        Some(VectorMatchCardinality::OneToMany(_)) => "one-to-many",
        Some(VectorMatchCardinality::ManyToMany) => "many-to-many",
        Some(VectorMatchCardinality::OneToOne) | None if set_operator => "many-to-many",
        Some(VectorMatchCardinality::OneToOne) | None => "one-to-one",
    };
    let include: Vec<String> = modifier
        .and_then(|m| m.card.labels())
        .map(|labels| labels.labels.clone())
        .unwrap_or_default();
    let (labels, on) = match modifier.and_then(|m| m.matching.as_ref()) {
        Some(LabelModifier::Include(labels)) => (labels.labels.clone(), true),
        Some(LabelModifier::Exclude(labels)) => (labels.labels.clone(), false),
        None => (Vec::new(), false),
    };
    json!({ "card": card, "labels": labels, "on": on, "include": include })
}

fn operator(op: TokenType) -> String {
    op.to_string()
}

fn value_type(value_type: ValueType) -> &'static str {
    match value_type {
        ValueType::Vector => "vector",
        ValueType::Scalar => "scalar",
        ValueType::Matrix => "matrix",
        ValueType::String => "string",
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn offset_millis(offset: Option<&Offset>) -> i64 {
    match offset {
        Some(Offset::Pos(duration)) => millis(*duration),
        Some(Offset::Neg(duration)) => -millis(*duration),
        None => 0,
    }
}

fn timestamp(at: Option<&AtModifier>) -> Value {
    let Some(AtModifier::At(time)) = at else {
        return Value::Null;
    };
    let ms = match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => millis(after),
        Err(before) => -millis(before.duration()),
    };
    json!(ms)
}

fn start_or_end(at: Option<&AtModifier>) -> Value {
    match at {
        Some(AtModifier::Start) => json!("start"),
        Some(AtModifier::End) => json!("end"),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ember_promql::parser::parse_query;

    fn tree(text: &str) -> Value {
        translate(&parse_query(text).expect("parses").expr)
    }

    #[test]
    fn binary_expression_matches_prometheus_documentation() {
        // The example of Prometheus's HTTP API documentation.
        let expected = json!({
            "bool": false,
            "lhs": {
                "matchers": [{ "name": "__name__", "type": "=", "value": "foo" }],
                "name": "foo", "offset": 0, "startOrEnd": null, "timestamp": null,
                "type": "vectorSelector"
            },
            "matching": { "card": "one-to-one", "include": [], "labels": [], "on": false },
            "op": "/",
            "rhs": {
                "matchers": [{ "name": "__name__", "type": "=", "value": "bar" }],
                "name": "bar", "offset": 0, "startOrEnd": null, "timestamp": null,
                "type": "vectorSelector"
            },
            "type": "binaryExpr"
        });
        assert_eq!(tree("foo/bar"), expected);
    }

    #[test]
    fn modifiers_and_nodes_translate() {
        let node = tree("sum without (a) (rate(x{y=~\"z\"}[5m] offset -1m @ 10))");
        assert_eq!(node["type"], "aggregation");
        assert_eq!(node["op"], "sum");
        assert_eq!(node["without"], true);
        assert_eq!(node["grouping"], json!(["a"]));
        let call = &node["expr"];
        assert_eq!(call["func"]["name"], "rate");
        assert_eq!(call["func"]["argTypes"], json!(["matrix"]));
        assert_eq!(call["func"]["returnType"], "vector");
        let matrix = &call["args"][0];
        assert_eq!(matrix["type"], "matrixSelector");
        assert_eq!(matrix["range"], 300_000);
        assert_eq!(matrix["offset"], -60_000);
        assert_eq!(matrix["timestamp"], 10_000);
        assert_eq!(
            matrix["matchers"][0],
            json!({"name": "y", "type": "=~", "value": "z"})
        );

        let set = tree("a and on (b) c");
        assert_eq!(set["matching"]["card"], "many-to-many");
        assert_eq!(set["matching"]["on"], true);
        assert_eq!(set["matching"]["labels"], json!(["b"]));
        let group = tree("a * on (b) group_left (c) d");
        assert_eq!(group["matching"]["card"], "many-to-one");
        assert_eq!(group["matching"]["include"], json!(["c"]));
        assert_eq!(tree("1 + a")["matching"], Value::Null);
        assert_eq!(tree("1 > bool 2")["bool"], true);

        let sub = tree("max_over_time(x[1h:5m] @ end())");
        let subquery = &sub["args"][0];
        assert_eq!(subquery["type"], "subquery");
        assert_eq!(subquery["range"], 3_600_000);
        assert_eq!(subquery["step"], 300_000);
        assert_eq!(subquery["startOrEnd"], "end");
        assert_eq!(tree("-x")["op"], "-");
        assert_eq!(tree("1.5")["val"], "1.5");
        assert_eq!(tree("\"s\"")["val"], "s");
        assert_eq!(tree("(x)")["type"], "parenExpr");
    }
}
