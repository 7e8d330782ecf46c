//! The `OpenAPI` 3.1 document of the JSON API, built here from the same constants the handlers
//! use, served at `/api/v1/openapi.json`, and committed as `crates/rp-console/openapi.json`
//! (a test fails when the committed file is stale; `RP_BLESS=1` rewrites it).

use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use serde_json::{Value, json};

use super::body::{FIELDS, MAX_METADATA_BYTES, MAX_METADATA_KEY, MAX_METADATA_KEYS};
use super::payouts::MAX_WAIT;
use super::{KEY_BURST, KEY_RATE};

/// `/api/v1/openapi.json`: the committed text.
pub(crate) async fn serve() -> Response {
    let mut response = (StatusCode::OK, document_text()).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// The document as committed: pretty-printed with every object's members in name order,
/// whatever `serde_json`'s map keeps (another crate of a build may turn on its
/// `preserve_order`).
pub fn document_text() -> String {
    fn sorted(value: Value) -> Value {
        match value {
            Value::Object(members) => {
                let mut members: Vec<(String, Value)> = members.into_iter().collect();
                members.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(members.into_iter().map(|(k, v)| (k, sorted(v))).collect())
            }
            Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    format!(
        "{}\n",
        serde_json::to_string_pretty(&sorted(document())).unwrap_or_default()
    )
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn payout_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Payout"}}}
    })
}

/// The document.
pub fn document() -> Value {
    let payout_id = json!({"name": "payment_id", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 255}});
    let common = |extra: Value| -> Value {
        let mut responses = json!({
            "400": problem_response("A path, query or body that cannot be read (e.g. a parameter given twice, a broken chunked body)."),
            "401": problem_response("No key, an unknown key, or a revoked key."),
            "405": problem_response("Another method than the path takes."),
            "413": problem_response("A body over 64 KiB."),
            "429": problem_response(&format!("More than {KEY_RATE} requests a second (bursts of {KEY_BURST}) with this key; see Retry-After.")),
            "503": problem_response("The ledger did not answer; nothing was changed.")
        });
        if let (Some(all), Some(more)) = (responses.as_object_mut(), extra.as_object()) {
            for (k, v) in more {
                all.insert(k.clone(), v.clone());
            }
        }
        responses
    };
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "rp serve API",
            "version": "1",
            "description": "Exactly-once payouts to mobile phone balances in Kazakhstan through the Rocketpay Gate, for backends in any language. The payment ID is the idempotency key: the same payout again answers with it as it stands; the same ID with other details is refused with 409 and changes nothing."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/payouts": {
                "post": {
                    "operationId": "createPayout",
                    "summary": "Pay out, exactly once",
                    "parameters": [{"name": "wait", "in": "query", "required": false, "description": "Hold the answer until the payout is final or this many seconds have passed.", "schema": {"type": "integer", "minimum": 0, "maximum": MAX_WAIT}}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewPayout"}}}},
                    "responses": common(json!({
                        "200": payout_response("The same payout was already recorded under this payment ID: as it stands. Nothing was sent again."),
                        "202": payout_response("Recorded (its limits reserved) and being sent."),
                        "403": problem_response("The key's role is read."),
                        "409": problem_response("Another payout is recorded under this payment ID; nothing was changed."),
                        "422": problem_response("Invalid (every field's problem in errors), or over the project's limits: nothing recorded or sent."),
                        "503": problem_response("The ledger did not answer: nothing was recorded (type ledger-unavailable). Or it had not recorded the payout in time (type not-yet-recorded, with Retry-After): it may still record and send it; the same request again tells which.")
                    }))
                },
                "get": {
                    "operationId": "listPayouts",
                    "summary": "Payouts, newest first, a page at a time (phone numbers masked)",
                    "parameters": [
                        {"name": "state", "in": "query", "required": false, "schema": {"type": "string"}},
                        {"name": "since", "in": "query", "required": false, "schema": {"type": "string", "description": "2026-11-27T10:00:00Z"}},
                        {"name": "source", "in": "query", "required": false, "schema": {"type": "string", "enum": ["api", "console", "batch", "library"]}},
                        {"name": "batch", "in": "query", "required": false, "schema": {"type": "string"}, "description": "A batch ID: its payouts in file order (state, since and source do not apply)."},
                        {"name": "cursor", "in": "query", "required": false, "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": 500}}
                    ],
                    "responses": common(json!({
                        "200": {"description": "A page.", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["data", "next_cursor"],
                            "properties": {
                                "data": {"type": "array", "items": {"$ref": "#/components/schemas/Payout"}},
                                "next_cursor": {"type": ["string", "null"]}
                            }
                        }}}},
                        "422": problem_response("A query parameter is not valid.")
                    }))
                }
            },
            "/api/v1/payouts/{payment_id}": {
                "get": {
                    "operationId": "getPayout",
                    "summary": "One payout",
                    "parameters": [payout_id],
                    "responses": common(json!({
                        "200": payout_response("The payout."),
                        "404": problem_response("No such payout.")
                    }))
                }
            },
            "/api/v1/payouts/{payment_id}/events": {
                "get": {
                    "operationId": "getPayoutEvents",
                    "summary": "A payout's history, oldest first",
                    "parameters": [payout_id],
                    "responses": common(json!({
                        "200": {"description": "The events.", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["data"],
                            "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}}
                        }}}},
                        "404": problem_response("No such payout.")
                    }))
                }
            },
            "/api/v1/limits": {
                "get": {
                    "operationId": "getLimits",
                    "summary": "The configured limits and what each rolling window has used",
                    "responses": common(json!({
                        "200": {"description": "The limits (minor units, or counts).", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["currency", "limits"],
                            "properties": {
                                "currency": {"type": "string"},
                                "limits": {"type": "object", "additionalProperties": {
                                    "type": "object",
                                    "properties": {
                                        "limit": {"type": ["integer", "null"]},
                                        "used": {"type": ["integer", "null"]},
                                        "left": {"type": ["integer", "null"]}
                                    }
                                }}
                            }
                        }}}}
                    }))
                }
            }
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "rp serve add-api-key NAME --role pay|read"}},
            "schemas": {
                "NewPayout": {
                    "type": "object",
                    "required": ["payment_id", "phone", "customer"],
                    "additionalProperties": false,
                    "properties": {
                        FIELDS[0]: {"type": "string", "description": "Your ID of the payout: the idempotency key."},
                        FIELDS[1]: {"type": "string", "description": "Any written form: +7 701 123 45 67, 8 (701) 123-45-67."},
                        FIELDS[2]: {"type": "string", "description": "As people write it: 1 500,50 or 1500.50. Or amount_minor."},
                        FIELDS[3]: {"type": "integer", "minimum": 1, "description": "Minor units (tiyn): 150050."},
                        FIELDS[4]: {"type": "string", "default": "KZT"},
                        FIELDS[5]: {
                            "type": "object", "required": ["id"], "additionalProperties": false,
                            "properties": {
                                "id": {"type": "string"}, "first_name": {"type": "string"},
                                "last_name": {"type": "string"}, "email": {"type": "string"},
                                "ip": {"type": "string"}
                            }
                        },
                        FIELDS[6]: {"type": "string"},
                        FIELDS[7]: {"type": "string", "description": "The operator's ID, when the number was moved to another network."},
                        FIELDS[8]: {"type": ["object", "null"], "maxProperties": MAX_METADATA_KEYS, "propertyNames": {"minLength": 1, "maxLength": MAX_METADATA_KEY}, "description": format!("Your own data (an order number, say): kept with the payout, shown with it and in its webhooks, never sent to the platform. At most {MAX_METADATA_BYTES} bytes as JSON. Part of the payout: the same payment ID with other metadata is a conflict.")}
                    }
                },
                "Payout": {
                    "type": "object",
                    "required": ["payment_id", "state", "settled"],
                    "properties": {
                        "payment_id": {"type": "string"},
                        "state": {"type": "string", "description": "created, accepted, unknown, not_registered, rejected, payment_id_taken, or the platform's status (success, decline, …)."},
                        "settled": {"type": "boolean"},
                        "attention": {"type": ["string", "null"]},
                        "phone": {"type": "string"},
                        "amount": {"type": ["string", "null"]},
                        "amount_minor": {"type": "integer"},
                        "currency": {"type": "string"},
                        "customer_id": {"type": "string"},
                        "description": {"type": ["string", "null"]},
                        "code": {"type": ["string", "null"]},
                        "message": {"type": ["string", "null"]},
                        "request_id": {"type": ["string", "null"]},
                        "attempts": {"type": "integer"},
                        "created_at": {"type": "string"},
                        "updated_at": {"type": "string"},
                        "metadata": {"type": ["object", "null"]}
                    }
                },
                "Event": {
                    "type": "object",
                    "required": ["at", "source", "state"],
                    "properties": {
                        "at": {"type": "string"},
                        "source": {"type": "string", "description": "call, answer, callback, status, reconcile, operator:NAME, operator:api:KEY"},
                        "previous": {"type": ["string", "null"]},
                        "state": {"type": "string"},
                        "code": {"type": ["string", "null"]},
                        "message": {"type": ["string", "null"]},
                        "note": {"type": ["string", "null"]},
                        "raw": {"type": ["string", "null"], "description": "The signed body of a callback or status response."}
                    }
                },
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "errors": {"type": "array", "items": {
                            "type": "object", "required": ["field", "message"],
                            "properties": {"field": {"type": "string"}, "message": {"type": "string"}}
                        }}
                    }
                }
            }
        }
    });
    let webhook_paths = json!({
            "/api/v1/payouts/{payment_id}/deliveries": {
                "get": {
                    "operationId": "getPayoutDeliveries",
                    "summary": "The webhook deliveries of a payout's state changes, with each attempt",
                    "parameters": [payout_id],
                    "responses": common(json!({
                        "200": {"description": "One delivery per state change and endpoint, in the order of the changes.", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["data"],
                            "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}}}
                        }}}},
                        "404": problem_response("No such payout.")
                    }))
                }
            },
            "/api/v1/payouts/{payment_id}/deliveries/replay": {
                "post": {
                    "operationId": "replayPayoutDeliveries",
                    "summary": "Send a payout's webhooks again (the same webhook-id), recorded in its history",
                    "parameters": [payout_id],
                    "requestBody": {"required": false, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": false,
                        "properties": {
                            "version": {"type": "integer", "minimum": 0, "description": "Only the change that produced this version."},
                            "endpoint": {"type": "integer", "minimum": 1, "description": "Only to this endpoint."}
                        }
                    }}}},
                    "responses": common(json!({
                        "202": {"description": "Queued.", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["queued"], "properties": {"queued": {"type": "integer"}}
                        }}}},
                        "403": problem_response("The key's role is read."),
                        "404": problem_response("No such payout, state change or endpoint."),
                        "422": problem_response("The body is not valid (every member's problem in errors).")
                    }))
                }
            },
            "/api/v1/webhooks": {
                "get": {
                    "operationId": "listWebhookEndpoints",
                    "summary": "The webhook endpoints (added with rp serve add-webhook URL; never their secrets)",
                    "responses": common(json!({
                        "200": {"description": "The endpoints.", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["data"],
                            "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/WebhookEndpoint"}}}
                        }}}}
                    }))
                }
            },
            "/api/v1/webhooks/{id}/enable": {
                "post": {
                    "operationId": "enableWebhookEndpoint",
                    "summary": "Enable an endpoint disabled after persistent failure: what waited is sent",
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}}],
                    "responses": common(json!({
                        "200": {"description": "The endpoint, enabled.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookEndpoint"}}}},
                        "403": problem_response("The key's role is read."),
                        "404": problem_response("No such endpoint.")
                    }))
                }
            },
            "/api/v1/operators": {
                "get": {
                    "operationId": "listOperators",
                    "summary": "The mobile operators payouts go to, with their originally allocated prefixes",
                    "responses": common(json!({
                        "200": {"description": "The operators.", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["data"],
                            "properties": {
                                "data": {"type": "array", "items": {
                                    "type": "object", "required": ["id", "name", "prefixes"],
                                    "properties": {
                                        "id": {"type": "string", "description": "The ID a payout's operator field takes: ACTIV, ALTEL, BEELINE, KCELL, TELE2."},
                                        "name": {"type": "string"},
                                        "prefixes": {"type": "array", "items": {"type": "string"}}
                                    }
                                }},
                                "note": {"type": "string"}
                            }
                        }}}}
                    }))
                }
            }
    });
    let webhook_schemas = json!({
                "WebhookMessage": {
                    "type": "object",
                    "required": ["type", "timestamp", "data"],
                    "properties": {
                        "type": {"type": "string", "description": "payout. and the new state: payout.created, payout.accepted, payout.success, payout.decline, …; or payout.needs_attention: the state is unchanged but needs a person (data.note says why, e.g. part of the money came back)."},
                        "timestamp": {"type": "string", "description": "When the change was recorded."},
                        "data": {
                            "type": "object",
                            "required": ["payment_id", "version", "state", "settled", "source"],
                            "properties": {
                                "payment_id": {"type": "string"},
                                "version": {"type": "integer", "description": "The payout's version this change produced: a later change has a higher one."},
                                "state": {"type": "string"},
                                "previous_state": {"type": ["string", "null"]},
                                "settled": {"type": "boolean"},
                                "source": {"type": "string"},
                                "code": {"type": ["string", "null"]},
                                "message": {"type": ["string", "null"]},
                                "note": {"type": ["string", "null"], "description": "What rp noted of the change: why it needs attention, what was done."},
                                "phone": {"type": "string", "description": "Masked: 7701***4567."},
                                "amount": {"type": ["string", "null"]},
                                "amount_minor": {"type": "integer"},
                                "currency": {"type": "string"},
                                "customer_id": {"type": "string"},
                                "description": {"type": ["string", "null"]},
                                "created_at": {"type": "string"},
                                "metadata": {"type": ["object", "null"]}
                            }
                        }
                    }
                },
                "WebhookEndpoint": {
                    "type": "object",
                    "required": ["id", "url", "enabled", "pending", "failed", "created_at"],
                    "properties": {
                        "id": {"type": "integer"},
                        "url": {"type": "string", "description": "Whole to a pay key; to a read key only its scheme, host and port (the path and query may carry the merchant's token): https://shop.example/…"},
                        "enabled": {"type": "boolean"},
                        "disabled_at": {"type": ["string", "null"]},
                        "disabled_reason": {"type": ["string", "null"]},
                        "pending": {"type": "integer"},
                        "failed": {"type": "integer"},
                        "created_at": {"type": "string"}
                    }
                },
                "Delivery": {
                    "type": "object",
                    "required": ["endpoint", "url", "version", "webhook_id", "state", "created_at", "attempts"],
                    "properties": {
                        "endpoint": {"type": "integer"},
                        "url": {"type": "string", "description": "Whole to a pay key; to a read key only its scheme, host and port (the path and query may carry the merchant's token): https://shop.example/…"},
                        "version": {"type": "integer"},
                        "webhook_id": {"type": "string"},
                        "state": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                        "created_at": {"type": "string"},
                        "next_attempt_at": {"type": ["string", "null"]},
                        "delivered_at": {"type": ["string", "null"]},
                        "attempts": {"type": "array", "items": {
                            "type": "object", "required": ["at", "took_ms"],
                            "properties": {
                                "at": {"type": "string"},
                                "status": {"type": ["integer", "null"]},
                                "error": {"type": ["string", "null"]},
                                "took_ms": {"type": "integer"}
                            }
                        }}
                    }
                }
    });
    let webhooks = json!({
            "payoutStateChanged": {
                "post": {
                    "summary": "A payout's state changed (Standard Webhooks: verify webhook-signature before trusting the body)",
                    "description": "Sent to every endpoint of the project for every change of a payout's state, at least once, in the order of the payout's changes; retried with backoff for 3 days and 15 hours. Drop a webhook-id you have already processed.",
                    "parameters": [
                        {"name": "webhook-id", "in": "header", "required": true, "schema": {"type": "string"}, "description": "msg_…: the same for every attempt of this event."},
                        {"name": "webhook-timestamp", "in": "header", "required": true, "schema": {"type": "string"}, "description": "Unix seconds of this attempt; refuse one far from your clock."},
                        {"name": "webhook-signature", "in": "header", "required": true, "schema": {"type": "string"}, "description": "v1, and the Base64 HMAC-SHA256 of id.timestamp.body, keyed by the Base64-decoded secret after whsec_."}
                    ],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookMessage"}}}},
                    "responses": {"2XX": {"description": "Taken: not sent again."}, "default": {"description": "Anything else (or no answer within the timeout): sent again later."}}
                }
            }
    });
    let batch_id = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "description": "The batch ID: the SHA-256 of its file."});
    let batch_paths = json!({
        "/api/v1/batches": {
            "post": {
                "operationId": "createBatch",
                "summary": "Pay a batch: a CSV file or a JSON array, every row checked before anything is sent",
                "parameters": [
                    {"name": "check_only", "in": "query", "required": false, "schema": {"type": "string", "enum": ["true", "false"]}, "description": "Only check: the summary, nothing recorded."},
                    {"name": "file_name", "in": "query", "required": false, "schema": {"type": "string", "maxLength": 200}}
                ],
                "requestBody": {"required": true, "content": {
                    "text/csv": {"schema": {"type": "string"}, "example": "phone;amount;customer_id;payment_id\n+7 701 123 45 67;1 500;c-1;order-1\n"},
                    "application/json": {"schema": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/BatchItem"}}}
                }},
                "responses": common(json!({
                    "200": {"description": "Registered before (the same file): the batch as it stands, nothing paid again; or, with check_only, the summary.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Batch"}}}},
                    "202": {"description": "Registered and being paid.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Batch"}}}},
                    "403": problem_response("The key's role is read."),
                    "409": problem_response("Rows use payment IDs the ledger holds for other payouts (each in errors); nothing recorded or sent."),
                    "408": problem_response("The body did not arrive within 120 s."),
                    "415": problem_response("Neither text/csv nor application/json."),
                    "422": problem_response("Rows with problems (each with its line or item in errors; rp-problem-count says how many), or no row to pay: nothing recorded or sent.")
                }))
            }
        },
        "/api/v1/batches/{id}": {
            "get": {
                "operationId": "getBatch",
                "summary": "A batch and its progress",
                "parameters": [batch_id],
                "responses": common(json!({
                    "200": {"description": "The batch.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Batch"}}}},
                    "404": problem_response("No such batch.")
                }))
            }
        },
        "/api/v1/batches/{id}/report.csv": {
            "get": {
                "operationId": "getBatchReport",
                "summary": "Every row with its payout's outcome (phone numbers masked)",
                "parameters": [batch_id],
                "responses": common(json!({
                    "200": {"description": "The report.", "content": {"text/csv": {"schema": {"type": "string"}}}},
                    "404": problem_response("No such batch.")
                }))
            }
        }
    });
    let batch_schemas = json!({
        "BatchItem": {
            "type": "object",
            "required": ["phone", "customer"],
            "additionalProperties": false,
            "properties": {
                "payment_id": {"type": "string", "description": "Derived from the batch and the row when absent."},
                "phone": {"type": "string"},
                "amount": {"type": "string"},
                "amount_minor": {"type": "integer", "minimum": 1},
                "currency": {"type": "string"},
                "customer": {"type": "object", "required": ["id"], "additionalProperties": false, "properties": {
                    "id": {"type": "string"}, "first_name": {"type": "string"}, "last_name": {"type": "string"},
                    "email": {"type": "string"}, "ip": {"type": "string"}
                }},
                "description": {"type": "string"},
                "operator": {"type": "string"}
            }
        },
        "Batch": {
            "type": "object",
            "required": ["id", "rows", "valid_rows", "totals"],
            "properties": {
                "id": {"type": "string"},
                "file_name": {"type": "string"},
                "rows": {"type": "integer"},
                "valid_rows": {"type": "integer"},
                "totals": {"type": "array", "items": {"type": "object", "properties": {
                    "currency": {"type": "string"}, "amount_minor": {"type": "integer"}, "amount": {"type": ["string", "null"]}
                }}},
                "state": {"type": "string", "enum": ["running", "stopped", "paused", "waiting", "done"]},
                "paused": {"type": "boolean"},
                "by_state": {"type": "object", "additionalProperties": {"type": "integer"}},
                "undone": {"type": "integer"},
                "waiting": {"type": "integer"},
                "created_at": {"type": "string"},
                "report": {"type": "string"}
            }
        }
    });
    merge(&mut doc["paths"], batch_paths);
    merge(&mut doc["components"]["schemas"], batch_schemas);
    merge(&mut doc["paths"], webhook_paths);
    merge(&mut doc["components"]["schemas"], webhook_schemas);
    doc["webhooks"] = webhooks;
    doc
}

/// Adds the members of `more` to the object `into`.
fn merge(into: &mut Value, more: Value) {
    if let (Some(into), Value::Object(more)) = (into.as_object_mut(), more) {
        into.extend(more);
    }
}

#[cfg(test)]
mod tests {
    /// The committed document is the one the code makes (`RP_BLESS=1` rewrites it).
    #[test]
    fn the_committed_document_is_fresh() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        let made = super::document_text();
        if std::env::var_os("RP_BLESS").is_some() {
            std::fs::write(path, &made).unwrap_or_default();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == made,
            "crates/rp-console/openapi.json is stale: run `RP_BLESS=1 cargo test -p rp-console openapi`"
        );
    }
}
