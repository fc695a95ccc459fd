//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of the API.
//!
//! The paths are listed here; the schemas of the bodies that have Rust types come from schemars,
//! so they follow the types.

use axum::Json;
use serde_json::{Value, json};

use crate::state::{FirewallStatus, LastReload, ListenerStatus, Version};
use crate::store::Attempt;

fn schema<T: schemars::JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default()
}

fn op(summary: &str, auth: bool, response: Value) -> Value {
    let mut o = json!({
        "summary": summary,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": response}}}}
    });
    if !auth {
        o["security"] = json!([]);
    } else {
        o["responses"]["401"] = json!({"description": "not logged in"});
    }
    o
}

/// The document.
pub fn build() -> Value {
    let object = json!({"type": "object"});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "sited", "version": env!("CARGO_PKG_VERSION"), "description": "The REST API of a sited node."},
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": super::COOKIE}
            },
            "schemas": {
                "Attempt": schema::<Attempt>(),
                "Version": schema::<Version>(),
                "LastReload": schema::<LastReload>(),
                "ListenerStatus": schema::<ListenerStatus>(),
                "FirewallStatus": schema::<FirewallStatus>(),
                "DiscoverRequest": schema::<super::discover::Ask>(),
                "Discovery": schema::<super::discover::Discovery>(),
                "RelayState": schema::<crate::nodes::relay::RelayState>()
            }
        },
        "security": [{"basic": []}, {"bearer": []}, {"session": []}],
        "paths": {
            "/api/v1/health": {"get": op("Liveness and the site's name; no login", false, json!({"type": "object", "properties": {"status": {"type": "string"}, "site": {"type": ["string", "null"]}, "node": {"type": ["string", "null"]}, "configured": {"type": "boolean"}}}))},
            "/api/v1/site": {"get": op("The site in force, its version and the last reload", true, object.clone())},
            "/api/v1/node": {"get": op("This node: roles, listeners and firewall", true, object.clone())},
            "/api/v1/cameras": {"get": op("The cameras of the site (on the application node; elsewhere the node's own), each with `node` (the node that ingests it), its live state (`state` is `offline`, with `last_seen`, while its node is offline), `readers` of its live stream where this node ingests it, and `relay` where it is relayed here", true, json!({"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "node": {"type": "string"}, "state": {"type": "string", "enum": ["connecting", "streaming", "failed", "offline"]}, "last_seen": {"type": ["string", "null"]}, "readers": {"type": "integer"}, "relay": {"$ref": "#/components/schemas/RelayState"}}}}))},
            "/api/v1/cameras/{camera}/recordings": {"get": {"summary": "The recorded spans of a camera, RFC 3339", "parameters": [{"name": "camera", "in": "path", "required": true, "schema": {"type": "string"}}, {"name": "start", "in": "query", "schema": {"type": "string", "format": "date-time"}}, {"name": "end", "in": "query", "schema": {"type": "string", "format": "date-time"}}], "responses": {"200": {"description": "[{start, end}]"}}}},
            "/api/v1/cameras/{camera}/clip.mp4": {"get": {"summary": "An MP4 of [start, end), with Range support", "parameters": [{"name": "camera", "in": "path", "required": true, "schema": {"type": "string"}}, {"name": "start", "in": "query", "required": true, "schema": {"type": "string", "format": "date-time"}}, {"name": "end", "in": "query", "schema": {"type": "string", "format": "date-time"}}], "responses": {"200": {"description": "video/mp4"}, "206": {"description": "a byte range"}, "404": {"description": "nothing recorded"}}}},
            "/vod/{camera}/index.m3u8": {"get": {"summary": "[start, end) as an HLS VOD playlist; its init and media segments are relative URIs beside it", "parameters": [{"name": "camera", "in": "path", "required": true, "schema": {"type": "string"}}, {"name": "start", "in": "query", "required": true, "schema": {"type": "string", "format": "date-time"}}, {"name": "end", "in": "query", "schema": {"type": "string", "format": "date-time"}}, {"name": "token", "in": "query", "schema": {"type": "string"}}], "responses": {"200": {"description": "application/vnd.apple.mpegurl"}, "404": {"description": "nothing recorded"}}}},
            "/api/v1/storage": {"get": op("The recordings' disk: free bytes, limits, bytes and segments per camera", true, object.clone())},
            "/api/v1/ports": {"get": op("This node's flows, as `sited ports --format json`", true, json!({"type": "array"}))},
            "/api/v1/config/history": {"get": {
                "summary": "Every reconcile attempt, newest first (admins)",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                    {"name": "before", "in": "query", "schema": {"type": "integer"}}
                ],
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Attempt"}}}}}, "403": {"description": "not an admin"}}
            }},
            "/api/v1/config/validate": {"post": {
                "summary": "Validate a candidate site.toml; nothing is applied (admins)",
                "requestBody": {"content": {"application/toml": {"schema": {"type": "string"}}}},
                "responses": {"200": {"description": "the diagnostics", "content": {"application/json": {"schema": {"type": "object", "properties": {"valid": {"type": "boolean"}, "diagnostics": {"type": "array"}}}}}}, "403": {"description": "not an admin"}}
            }},
            "/api/v1/tokens": {"post": {"summary": "A bearer token for the logged-in user, valid one hour; with a site secret, every node of the site accepts it", "responses": {"201": {"description": "the token", "content": {"application/json": {"schema": {"type": "object", "properties": {"token": {"type": "string"}, "user": {"type": "string"}, "expires_in": {"type": "integer"}}}}}}}}},
            "/api/v1/tokens/revoke": {"post": {"summary": "Ends a session or token before its expiry, on every node of the site (your own; admins anyone's)", "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}}}}, "responses": {"204": {"description": "revoked"}, "403": {"description": "another user's, and not an admin"}, "404": {"description": "no such valid token"}}}},
            "/api/v1/discover": {"post": {
                "summary": "ONVIF discovery from this media node (NovaVMS, UDP 3702): configured cameras with their model and firmware, devices found but not configured with their [[cameras]] snippet (admins)",
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/DiscoverRequest"}}}},
                "responses": {"200": {"description": "the discovery", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Discovery"}}}}, "400": {"description": "a bad request"}, "403": {"description": "not an admin"}, "409": {"description": "not a media node of a layout with ONVIF discovery, or a discovery is running"}}
            }},
            "/api/v1/openapi.json": {"get": op("This document", true, object.clone())},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text format", "content": {"text/plain": {}}}}}}
        }
    })
}

/// Serves the document.
pub async fn document() -> Json<Value> {
    Json(build())
}
