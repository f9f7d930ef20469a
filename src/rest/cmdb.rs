//! `/api/v2/cmdb/<path>/<name>[/<mkey>]`: the configuration tables, read as JSON and
//! changed through the CLI's own rules ([`crate::cli::api`]), so a REST write is checked,
//! committed and refused exactly as the same change typed at the prompt
//! (`docs/fortios.md`, "REST API").
//!
//! A JSON body is read whatever its `Content-Type` (fortigate-api sends none). Its members
//! become `set` (or, for `null`, `unset`) of the field of that name, in the table's field
//! order; an unknown member is refused like an unknown `set` word, a value of the wrong
//! type like a value that does not parse. A refused write changes nothing.

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::cli::Backend;
use crate::cli::api::{self, Edit, Refusal};
use crate::config::schema::{
    FCTEMS, FieldKind, FieldSpec, SYSTEM_ADMIN, SYSTEM_API_USER, SYSTEM_CSF, SYSTEM_SETTINGS, TableKind,
    TableSchema, children_of,
};
use crate::config::{Entry, fail_line, value_error_lines};
use crate::node::Node;

use super::envelope::{Envelope, Failure};

/// FortiOS's code for creating an entry that exists (`"error": -5`) (client).
const RC_DUPLICATE: i32 = -5;

/// The tables the API serves, by their two path words; fctems takes the shape of the
/// node's firmware (`docs/fortios.md`, "Firmware profiles").
const TABLES: &[(&str, &str, &TableSchema)] = &[
    ("endpoint-control", "fctems", &FCTEMS),
    ("system", "csf", &SYSTEM_CSF),
    ("system", "settings", &SYSTEM_SETTINGS),
    ("system", "admin", &SYSTEM_ADMIN),
    ("system", "api-user", &SYSTEM_API_USER),
];

/// What one CMDB path names.
#[derive(Clone, Copy)]
pub(super) enum Resource {
    Table(&'static TableSchema),
    /// `system/global`: the hostname, from the topology.
    Global,
}

/// The resource of `path`/`name`, if the API serves it.
pub(super) fn resource(path: &str, name: &str) -> Option<Resource> {
    if (path, name) == ("system", "global") {
        return Some(Resource::Global);
    }
    TABLES
        .iter()
        .find(|(p, n, _)| (*p, *n) == (path, name))
        .map(|(_, _, table)| Resource::Table(table))
}

/// A reply body: success or refusal.
pub(super) type Outcome = Result<Map<String, Value>, Failure>;

/// Runs one CMDB request on `resource`.
pub(super) async fn handle(
    node: &Node,
    resource: Resource,
    method: &Method,
    envelope: &Envelope,
    action: Option<&str>,
    body: &[u8],
) -> Outcome {
    let table = match resource {
        Resource::Global => return global(node, method, envelope),
        Resource::Table(table) if table.path == FCTEMS.path => crate::cli::Backend::config(node).fctems(),
        Resource::Table(table) => table,
    };
    if *method == Method::GET && action == Some("schema") {
        return Ok(envelope.results(schema(node, table), None));
    }
    let mkey = envelope.mkey.as_deref();
    let keyed = matches!(table.kind, TableKind::Table { .. });
    match (method.clone(), mkey, keyed) {
        (Method::GET, None, _) => Ok(list(node, table, envelope)),
        (Method::GET, Some(key), true) => one(node, table, key, envelope),
        (Method::POST, None, true) => create(node, table, envelope, body).await,
        (Method::PUT, Some(key), true) => update(node, table, key, envelope, body).await,
        (Method::PUT, None, false) => update(node, table, "", envelope, body).await,
        (Method::DELETE, Some(key), true) => delete(node, table, key, envelope).await,
        (_, Some(_), false) => Err(Failure::status(StatusCode::NOT_FOUND)),
        _ => Err(Failure::status(StatusCode::METHOD_NOT_ALLOWED)),
    }
}

/// `?action=schema`: the table's key and fields, as fortiosapi reads them to find the
/// mkey of a table (`results.mkey`) (client), with each field's choices (`options`),
/// range (`min-value`, `max-value`) or length (`size`) as FortiOS's schema gives them
/// (doc). The GUI builds its forms from it; `readonly_reason` [ours] says why this node
/// may not change the table (a member's synced table), and is absent when it may.
fn schema(node: &Node, table: &'static TableSchema) -> Value {
    let children: Map<String, Value> = table
        .fields
        .iter()
        .map(|field| (field.name.to_owned(), field_schema(field)))
        .collect();
    let mut schema = json!({
        "name": table.context_name(),
        "help": table.help,
        "category": if table.key_field().is_some() { "table" } else { "complex" },
        "children": children,
    });
    if let Some(key) = table.key_field() {
        schema["mkey"] = json!(key.name);
        schema["mkey_type"] = json!(match key.kind {
            FieldKind::Integer { .. } => "integer",
            _ => "string",
        });
    }
    if let Some(refusal) = api::modify_refusal(node, table) {
        schema["readonly_reason"] = json!(refusal.reason());
    }
    schema
}

/// One field of a table's schema.
fn field_schema(field: &FieldSpec) -> Value {
    let kind = match field.kind {
        FieldKind::Integer { .. } => "integer",
        FieldKind::EnableDisable | FieldKind::Option(_) => "option",
        FieldKind::Set(_) => "multiple-option",
        FieldKind::Ipv4 => "ipv4-address",
        FieldKind::Secret { .. } => "password",
        FieldKind::String { .. } | FieldKind::Ipv4OrFqdn { .. } | FieldKind::Pem { .. } => "string",
    };
    let mut schema =
        json!({ "name": field.name, "type": kind, "help": field.help, "default": field.default });
    let options = |choices: &[&str]| {
        json!(
            choices
                .iter()
                .map(|name| json!({ "name": name }))
                .collect::<Vec<_>>()
        )
    };
    match field.kind {
        FieldKind::Integer { min, max } => {
            schema["min-value"] = json!(min);
            schema["max-value"] = json!(max);
        }
        FieldKind::EnableDisable => schema["options"] = options(&["enable", "disable"]),
        FieldKind::Option(choices) | FieldKind::Set(choices) => {
            let names: Vec<&str> = choices.iter().map(|choice| choice.name).collect();
            schema["options"] = options(&names);
        }
        FieldKind::String { max }
        | FieldKind::Secret { max }
        | FieldKind::Ipv4OrFqdn { max }
        | FieldKind::Pem { max } => {
            schema["size"] = json!(max);
        }
        FieldKind::Ipv4 => {}
    }
    schema
}

/// `system/global`: read-only here, the hostname being the topology's.
fn global(node: &Node, method: &Method, envelope: &Envelope) -> Outcome {
    if *method != Method::GET {
        return Err(Failure::status(StatusCode::METHOD_NOT_ALLOWED));
    }
    let hostname = &node.identity().hostname;
    Ok(envelope.results(json!([{ "hostname": hostname }]), None))
}

fn list(node: &Node, table: &TableSchema, envelope: &Envelope) -> Map<String, Value> {
    let db = node.config();
    let results: Vec<Value> = match table.kind {
        TableKind::Table { .. } => db
            .entries(table.path)
            .map(|(key, entry)| entry_json(table, key, entry))
            .collect(),
        TableKind::Object => {
            let entry = db.entry(table.path, "").cloned().unwrap_or_default();
            let mut object = entry_json(table, "", &entry);
            // A nested table is a list member of its object, as FortiOS lists a child
            // table (`"trusted-list": [...]` in `system/csf`); it is read-only here.
            for nested in children_of(db.registry(), table.path) {
                let entries = db
                    .entries(nested.path)
                    .map(|(key, entry)| entry_json(nested, key, entry))
                    .collect();
                object[nested.context_name()] = Value::Array(entries);
            }
            vec![object]
        }
    };
    envelope.results(Value::Array(results), Some(db.revision()))
}

fn one(node: &Node, table: &TableSchema, key: &str, envelope: &Envelope) -> Outcome {
    let db = node.config();
    let entry = db
        .entry(table.path, key)
        .ok_or(Failure::status(StatusCode::NOT_FOUND))?;
    Ok(envelope.results(json!([entry_json(table, key, entry)]), Some(db.revision())))
}

/// One entry as FortiOS lists it: every visible field, integers as numbers, and
/// `q_origin_key` beside the key.
pub(super) fn entry_json(table: &TableSchema, key: &str, entry: &Entry) -> Value {
    let mut object = Map::new();
    for field in table.fields {
        if table.is_key(field.name) {
            object.insert(field.name.to_owned(), typed(field, key));
            object.insert("q_origin_key".to_owned(), typed(field, key));
            continue;
        }
        if !table.is_visible(entry.values(), field) {
            continue;
        }
        object.insert(
            field.name.to_owned(),
            typed(field, field.value_in(entry.values())),
        );
    }
    Value::Object(object)
}

/// `value` of `field` as JSON: an integer field's value (the `ems-id` key too) is a number.
fn typed(field: &FieldSpec, value: &str) -> Value {
    match field.kind {
        FieldKind::Integer { .. } => value.parse::<u64>().map_or_else(|_| json!(value), |n| json!(n)),
        _ => json!(value),
    }
}

async fn create<B: Backend>(
    node: &B,
    table: &'static TableSchema,
    envelope: &Envelope,
    body: &[u8],
) -> Outcome {
    let members = spelled(table, json_object(body)?)?;
    let key_field = table.key_field().expect("a keyed table has a key field");
    let key = match members.get(key_field.name) {
        Some(Value::String(key)) => key.clone(),
        Some(Value::Number(key)) => key.to_string(),
        Some(other) => return Err(refused(wrong_type(other))),
        None => {
            let lines = vec![
                "incomplete command in the end".to_owned(),
                fail_line(crate::config::RC_INCOMPLETE),
            ];
            return Err(Failure::cli(
                StatusCode::INTERNAL_SERVER_ERROR,
                crate::config::RC_INCOMPLETE,
                &lines,
            ));
        }
    };
    let edit = Edit::open(node, table, &key).map_err(refused)?;
    if !edit.created() {
        let lines = vec![
            "A duplicate entry already exists.".to_owned(),
            fail_line(RC_DUPLICATE),
        ];
        return Err(Failure::cli(
            StatusCode::INTERNAL_SERVER_ERROR,
            RC_DUPLICATE,
            &lines,
        ));
    }
    let mut envelope = envelope.clone();
    envelope.mkey = Some(edit.key().to_owned());
    write(node, table, edit, &members, &envelope).await
}

async fn update<B: Backend>(
    node: &B,
    table: &'static TableSchema,
    key: &str,
    envelope: &Envelope,
    body: &[u8],
) -> Outcome {
    let members = spelled(table, json_object(body)?)?;
    if !key.is_empty() && node.config().entry(table.path, key).is_none() {
        return Err(Failure::status(StatusCode::NOT_FOUND));
    }
    let edit = Edit::open(node, table, key).map_err(refused)?;
    write(node, table, edit, &members, envelope).await
}

/// Sets every member of the body in field order, then commits.
async fn write<B: Backend>(
    node: &B,
    table: &TableSchema,
    mut edit: Edit,
    members: &Map<String, Value>,
    envelope: &Envelope,
) -> Outcome {
    let old_revision = node.config().revision();
    let known = table.fields.iter().map(|field| field.name);
    let unknown = members
        .keys()
        .map(String::as_str)
        .filter(|name| table.field(name).is_none());
    for name in known.chain(unknown) {
        let Some(value) = members.get(name) else {
            continue;
        };
        if table.is_key(name) || name == "q_origin_key" {
            if name != "q_origin_key" && !key_matches(value, edit.key()) {
                return Err(refused(wrong_type(value)));
            }
            continue;
        }
        match value {
            Value::Null => edit.unset(node, name),
            value => edit.set(node, name, &words(value).map_err(refused)?),
        }
        .map_err(refused)?;
    }
    let applied = edit.commit(node).await.map_err(refused)?;
    let revision = applied.map_or(old_revision, |applied| applied.revision);
    Ok(envelope.written(old_revision, revision, applied.is_some()))
}

async fn delete(node: &Node, table: &'static TableSchema, key: &str, envelope: &Envelope) -> Outcome {
    let old_revision = node.config().revision();
    if node.config().entry(table.path, key).is_none() {
        return Err(Failure::status(StatusCode::NOT_FOUND));
    }
    let applied = api::delete(node, table, key).await.map_err(refused)?;
    Ok(envelope.written(old_revision, applied.revision, true))
}

/// `members` with each `a_b` that names field `a-b` renamed to it: the Ansible collection
/// adds the table key in its own spelling (`"ems_id": 1` beside `"ems-id": 1`) to every
/// POST (`docs/fortios.md`, "REST API"). The two spellings must agree.
fn spelled(table: &TableSchema, members: Map<String, Value>) -> Result<Map<String, Value>, Failure> {
    let mut spelled = Map::new();
    for (name, value) in members {
        let hyphenated = name.replace('_', "-");
        let name = if table.field(&name).is_none() && table.field(&hyphenated).is_some() {
            hyphenated
        } else {
            name
        };
        match spelled.get(&name) {
            Some(seen) if *seen != value => return Err(refused(wrong_type(&value))),
            _ => {
                spelled.insert(name, value);
            }
        }
    }
    Ok(spelled)
}

/// The body as a JSON object; anything else is a 400 with FortiOS's shape.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, Failure> {
    let invalid = |why: String| {
        let lines = vec![
            format!("Invalid JSON input: {why}"),
            fail_line(crate::config::RC_INVALID_VALUE),
        ];
        Failure::cli(StatusCode::BAD_REQUEST, crate::config::RC_INVALID_VALUE, &lines)
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(members)) => Ok(members),
        Ok(_) => Err(invalid("the body is not a JSON object".to_owned())),
        Err(error) => Err(invalid(error.to_string())),
    }
}

/// The CLI words a JSON value stands for: a string (split into words for a set), a
/// number, or a list of strings.
fn words(value: &Value) -> Result<Vec<String>, Refusal> {
    match value {
        Value::String(text) if text.contains(' ') => Ok(text.split_whitespace().map(str::to_owned).collect()),
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Number(number) => Ok(vec![number.to_string()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                other => Err(wrong_type(other)),
            })
            .collect(),
        other => Err(wrong_type(other)),
    }
}

fn key_matches(value: &Value, key: &str) -> bool {
    match value {
        Value::String(text) => text == key,
        Value::Number(number) => number.to_string() == key,
        _ => false,
    }
}

/// A value of a type no field takes, refused as the CLI refuses a value that does not
/// parse.
fn wrong_type(value: &Value) -> Refusal {
    let text = value.to_string();
    Refusal {
        code: crate::config::RC_INVALID_VALUE,
        lines: value_error_lines(&text),
    }
}

/// The HTTP reply of a CLI refusal: 404 for a missing entry, 500 otherwise, as FortiOS.
pub(super) fn refused(refusal: Refusal) -> Failure {
    let status = if refusal.is_not_found() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    Failure::cli(status, refusal.code, &refusal.lines)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    use super::*;
    use crate::cli::firmware_release;
    use crate::cli::test_backend::MemoryBackend;
    use crate::config::ConfigCommand;
    use crate::config::schema::{FCTEMS, FCTEMS_BY_ID5};

    /// A JSON value of any type, at the edges of numbers and with the CLI's odd strings.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            proptest::sample::select(
                &[
                    "",
                    " ",
                    "ems1",
                    "10.0.0.1",
                    "enable",
                    "disable",
                    "443",
                    "65536",
                    "REMOTE_Cert_1",
                    "fabric-auth websocket",
                    "a\"b",
                    "\\",
                    "?",
                    "é✓",
                    "\u{0}",
                ][..]
            )
            .prop_map(Value::from),
            "\\PC{0,40}".prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{1,4}", inner, 0..3)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// A body: arbitrary bytes, or an object of the table's field names (also in the
    /// Ansible spelling) and others, each with any value.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let names: Vec<String> = FCTEMS
            .fields
            .iter()
            .flat_map(|field| [field.name.to_owned(), field.name.replace('-', "_")])
            .chain(["q_origin_key".to_owned(), "nonsense".to_owned()])
            .collect();
        let object = proptest::collection::vec((proptest::sample::select(names), json_value()), 0..6)
            .prop_map(|members| serde_json::to_vec(&Value::Object(members.into_iter().collect())).unwrap());
        prop_oneof![1 => proptest::collection::vec(any::<u8>(), 0..64), 4 => object]
    }

    fn envelope() -> Envelope {
        Envelope {
            method: "PUT".to_owned(),
            path: "endpoint-control".to_owned(),
            name: "fctems".to_owned(),
            vdom: "root".to_owned(),
            serial: "FGVM01TM22000001".to_owned(),
            release: firmware_release(crate::domain::Firmware::default()),
            mkey: None,
        }
    }

    proptest! {
        #![proptest_config(Config {
            cases: 256,
            rng_seed: RngSeed::Fixed(0x2e57),
            failure_persistence: None,
            ..Config::default()
        })]

        #[test]
        fn any_body_is_written_or_refused_and_a_refusal_changes_nothing(
            body in body(),
            creating in any::<bool>(),
            key in proptest::sample::select(&["ems1", "ems2", "", "a b", "\u{0}"][..]),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
            let backend = MemoryBackend::root();
            runtime.block_on(async {
                let existing = ConfigCommand::SetEntry {
                    table: FCTEMS.path.to_owned(),
                    key: "ems1".to_owned(),
                    values: [("server".to_owned(), "10.0.0.1".to_owned())].into(),
                };
                backend.commit(existing).await.expect("an entry to update");
                let before = backend.config();
                let outcome = if creating {
                    create(&backend, &FCTEMS, &envelope(), &body).await
                } else {
                    update(&backend, &FCTEMS, key, &envelope(), &body).await
                };
                let after = backend.config();
                if outcome.is_err() {
                    prop_assert_eq!(after.revision(), before.revision());
                    prop_assert_eq!(after.hash(), before.hash());
                }
                Ok(())
            })?;
        }
    }

    #[test]
    fn an_underscore_spelling_of_a_field_is_that_field_and_must_agree() {
        let body = json!({"ems-id": 5, "ems_id": 5, "https_port": 8443, "no_such": 1});
        let Value::Object(members) = body else {
            unreachable!()
        };
        let read = spelled(&FCTEMS_BY_ID5, members).expect("the spellings agree");
        let names: Vec<&str> = read.keys().map(String::as_str).collect();
        assert_eq!(names, ["ems-id", "https-port", "no_such"]);

        let Value::Object(members) = json!({"ems-id": 5, "ems_id": 4}) else {
            unreachable!()
        };
        assert!(spelled(&FCTEMS_BY_ID5, members).is_err());
    }
}
