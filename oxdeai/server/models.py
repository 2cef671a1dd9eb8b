"""The service's wire shapes; `openapi()` is the OpenAPI document generated from them.

Contract: a request body is accepted only when it validates against its model here
(unknown fields refused: the agent and the time are the service's to give, never the
body's); every answer the service gives has a model here, errors included.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from oxdeai.runtime.models import DecisionModel, EffectModel


class DecideBody(BaseModel):
    """One proposed tool call. The agent is the credential's; the time is the service's clock."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tool: str = Field(max_length=256)
    args: dict[str, Any] = Field(default_factory=dict)
    nonce: str | None = Field(default=None, max_length=256)
    idempotency_key: str | None = Field(default=None, max_length=256)


class CompleteBody(BaseModel):
    """The host reports how an allowed call ended."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    decision_id: str = Field(max_length=64)
    outcome: Literal["ok", "failed"] = "ok"


class Completion(BaseModel):
    decision_id: str
    outcome: str
    effects: list[EffectModel]


class PolicyInfo(BaseModel):
    name: str
    version: str | None
    sha256: str
    tools: dict[str, dict[str, Any]]  # tool -> the JSON Schema of its arguments


class Health(BaseModel):
    ok: bool
    checks: dict[str, str] = Field(default_factory=dict)  # what is not ready, and why


class ErrorBody(BaseModel):
    error: str


class RolloutReport(BaseModel):
    """What a reload did (docs/serve.md, "Live policy rollout")."""

    changed: bool
    sha256: str | None = None  # when nothing changed: the version being served
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    version: str | None = None
    kept: list[str] = Field(default_factory=list)
    fresh: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    changed_tools: list[str] = Field(default_factory=list)


class RolloutRefusal(BaseModel):
    error: str
    problems: list[str]
    serving: str


class JWKS(BaseModel):
    keys: list[dict[str, Any]]


def openapi(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route, its schemas from the models above."""
    models: list[type[BaseModel]] = [DecideBody, CompleteBody, DecisionModel, Completion, PolicyInfo, Health,
                                     ErrorBody, RolloutReport, RolloutRefusal, JWKS]
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema

    def ref(name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    def answer(name: str, what: str) -> dict[str, Any]:
        return {"description": what, "content": {"application/json": {"schema": ref(name)}}}

    errors = {"400": answer("ErrorBody", "malformed JSON, or a body that does not fit its schema"),
              "401": answer("ErrorBody", "no credential, or one the keys file does not know"),
              "413": answer("ErrorBody", "the body is larger than the service takes"),
              "500": answer("ErrorBody", "an internal error (no detail is given)")}
    secured: list[dict[str, list[str]]] = [{"apiKey": []}, {"bearer": []}]

    def post(name: str, body: str, result: str, what: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"post": {"operationId": name, "security": secured,
                         "requestBody": {"required": True, "content": {"application/json": {"schema": ref(body)}}},
                         "responses": {"200": answer(result, what), **errors, **(extra or {})}}}

    def get(name: str, result: str, what: str, codes: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"get": {"operationId": name, "responses": {"200": answer(result, what), **(codes or {})}}}

    return {
        "openapi": "3.1.0",
        "info": {"title": "oxdeai decision service", "version": version},
        "paths": {
            "/v1/decide": post("decide", "DecideBody", "DecisionModel", "the decision, ALLOW or DENY"),
            "/v1/complete": post("complete", "CompleteBody", "Completion", "the effects the completion applied", {
                "409": answer("ErrorBody", "the completion cannot be applied (unknown, denied, done, another agent's)"),
                "503": answer("ErrorBody", "the state store failed: nothing applied, retry")}),
            "/v1/policy": get("policy", "PolicyInfo", "the policy being served"),
            "/v1/policy/reload": {"post": {"operationId": "reload", "security": secured, "responses": {
                "200": answer("RolloutReport", "the new version serves (or the file was the one serving)"),
                "401": errors["401"], "403": answer("ErrorBody", "the credential is not an admin's"),
                "409": {"description": "refused: the old version keeps serving", "content": {"application/json": {
                    "schema": {"oneOf": [ref("RolloutRefusal"), ref("ErrorBody")]}}}},
                "503": answer("ErrorBody", "the state store failed during the rollout")}}},
            "/.well-known/jwks.json": get("jwks", "JWKS", "the key signed authorizations are verified with",
                                          {"404": answer("ErrorBody", "this service issues no authorizations")}),
            "/healthz": get("healthz", "Health", "the process is up"),
            "/readyz": get("readyz", "Health", "ready: the store answers and the log is written",
                           {"503": answer("Health", "not ready, and why")}),
        },
        "components": {"schemas": schemas, "securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "bearer": {"type": "http", "scheme": "bearer"}}},
    }
