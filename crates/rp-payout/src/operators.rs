//! The operator list, parsed leniently: its response shape is not documented.

use rp_model::Operator;
use serde_json::Value;

use crate::Error;
use crate::error::excerpt;

/// Members that may hold the list, tried first and in this order.
const LIST_KEYS: [&str; 7] = [
    "operators",
    "data",
    "list",
    "items",
    "result",
    "payout",
    "providers",
];
/// Members of a list item that may hold the operator ID, in order of preference.
const ID_KEYS: [&str; 5] = ["id", "code", "operator", "service_provider", "name"];
/// Members that never hold operators (an error envelope's `errors[]` has `code`s).
const SKIPPED_KEYS: [&str; 2] = ["errors", "error"];
/// How deep into nested objects the list is looked for.
const MAX_DEPTH: usize = 4;

/// The operators available to the project, with the raw answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OperatorList {
    /// The operator IDs, in the order the platform listed them (unknown IDs kept).
    pub operators: Vec<Operator>,
    /// The response body as received (lossy UTF-8), since its shape is not documented.
    pub raw: String,
}

impl OperatorList {
    /// Parses an operator-list body. Accepted shapes include `{"operators":[{"id":…}]}`,
    /// `[{"code":…}]`, `["ACTIV",…]` and nested `{"data":{"operators":…}}`; an item's ID is
    /// its `id`, `code`, `operator`, `service_provider` or `name` (first present, string or
    /// number).
    ///
    /// ```
    /// use rp_model::Operator;
    /// use rp_payout::OperatorList;
    ///
    /// let list = OperatorList::parse(br#"{"data":{"operators":[{"code":"KCELL"},{"code":"IZI"}]}}"#)?;
    /// assert_eq!(list.operators, [Operator::Kcell, Operator::Other("IZI".into())]);
    /// # Ok::<(), rp_payout::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::UnexpectedResponse`] when the body is not JSON or holds no recognisable
    /// operator (the message quotes the start of the body).
    pub fn parse(body: &[u8]) -> Result<OperatorList, Error> {
        let unexpected = |reason: &str| Error::UnexpectedResponse {
            what: "operator list",
            http_status: 200,
            reason: reason.to_owned(),
            body: excerpt(body),
        };
        let value: Value =
            serde_json::from_slice(body).map_err(|e| unexpected(&format!("not JSON ({e})")))?;
        let operators = find_list(&value, 0)
            .ok_or_else(|| unexpected("no list of operators with an id/code/name found"))?;
        Ok(OperatorList {
            operators,
            raw: String::from_utf8_lossy(body).into_owned(),
        })
    }
}

/// The first list of operator IDs in `value`, searching preferred members first.
fn find_list(value: &Value, depth: usize) -> Option<Vec<Operator>> {
    if depth > MAX_DEPTH {
        return None;
    }
    match value {
        Value::Array(items) => {
            let operators: Vec<Operator> = items.iter().filter_map(item_id).collect();
            if !operators.is_empty() {
                return Some(operators);
            }
            items.iter().find_map(|item| find_list(item, depth + 1))
        }
        Value::Object(members) => {
            let preferred = LIST_KEYS.iter().filter_map(|key| members.get(*key));
            let others = members
                .iter()
                .filter(|(key, _)| {
                    !LIST_KEYS.contains(&key.as_str()) && !SKIPPED_KEYS.contains(&key.as_str())
                })
                .map(|(_, v)| v);
            preferred
                .chain(others)
                .filter(|v| v.is_array() || v.is_object())
                .find_map(|v| find_list(v, depth + 1))
        }
        _ => None,
    }
}

/// The operator ID of one list item: a string, or an object's first ID-like member.
fn item_id(item: &Value) -> Option<Operator> {
    match item {
        Value::String(id) => non_empty(id),
        Value::Object(members) => {
            ID_KEYS
                .iter()
                .filter_map(|key| members.get(*key))
                .find_map(|v| match v {
                    Value::String(id) => non_empty(id),
                    Value::Number(n) => Some(Operator::from_id(&n.to_string())),
                    _ => None,
                })
        }
        _ => None,
    }
}

fn non_empty(id: &str) -> Option<Operator> {
    let id = id.trim();
    (!id.is_empty()).then(|| Operator::from_id(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(body: &str) -> Vec<String> {
        OperatorList::parse(body.as_bytes())
            .unwrap()
            .operators
            .iter()
            .map(|o| o.id().to_owned())
            .collect()
    }

    #[test]
    fn the_contract_shape() {
        let body = r#"{"project_id":1234,"operators":[{"id":"ACTIV","name":"Activ"},{"id":"KCELL","name":"Kcell"}]}"#;
        let list = OperatorList::parse(body.as_bytes()).unwrap();
        assert_eq!(list.operators, [Operator::Activ, Operator::Kcell]);
        assert_eq!(list.raw, body);
    }

    #[test]
    fn many_shapes() {
        assert_eq!(
            ids(r#"[{"code":"BEELINE"},{"code":"tele2"}]"#),
            ["BEELINE", "TELE2"]
        );
        assert_eq!(ids(r#"["ACTIV","ALTEL"]"#), ["ACTIV", "ALTEL"]);
        assert_eq!(
            ids(r#"{"data":{"operators":[{"operator":"KCELL"}]}}"#),
            ["KCELL"]
        );
        assert_eq!(ids(r#"{"list":[{"service_provider":"ALTEL"}]}"#), ["ALTEL"]);
        assert_eq!(ids(r#"{"result":[{"name":"Tele2"}]}"#), ["TELE2"]);
        assert_eq!(ids(r#"{"operators":[{"id":17,"name":"X"}]}"#), ["17"]);
        assert_eq!(
            ids(r#"{"status":"success","payload":{"mobile":[{"id":"IZI"}]}}"#),
            ["IZI"]
        );
        // `id` is preferred over `name`; blank items are skipped.
        assert_eq!(
            ids(r#"{"operators":[{"name":"Activ","id":"ACTIV"},{"id":""},"  "]}"#),
            ["ACTIV"]
        );
    }

    #[test]
    fn no_operators_is_a_clear_error() {
        for body in [
            "{}",
            r#"{"operators":[]}"#,
            r#"{"status":"error","errors":[{"code":"2004","message":"x"}]}"#,
            "[1, 2]",
            "not json",
        ] {
            let error = OperatorList::parse(body.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with("unexpected operator list response"),
                "{error}"
            );
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = r#"{"a":{"b":{"c":{"d":{"e":{"f":["ACTIV"]}}}}}}"#;
        assert!(OperatorList::parse(deep.as_bytes()).is_err());
    }
}
