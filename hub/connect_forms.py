"""HTML form fields from a provider's declared types: the credential fields of its ``ApiKeyAuth`` and its
connection settings, read from the same JSON schema ``GET /v1/providers/{p}`` publishes.

A field is secret (a password input, never echoed back) when its schema says ``writeOnly: true`` or
``format: password`` (``msgspec.Meta(extra_json_schema={"writeOnly": True})``), or when its name says so
(``..._token``, ``..._secret``, ``password``, ``api_key``): masking a field a plugin forgot to mark is the
safe mistake. Labels come from the schema's ``title`` or the field name; help text from its ``description``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from hub.errors import HubError

_SECRET_NAME = re.compile(r"(^|_)(token|secret|secrets|password|passphrase)$|(^|_)(api|secret|private)_key$")
_ACRONYMS = {"sid": "SID", "id": "ID", "url": "URL", "api": "API", "sms": "SMS", "mms": "MMS", "ein": "EIN"}
_AT_FIELD = re.compile(r"`\$\.(\w+)")
_MISSING = re.compile(r"missing required field `(\w+)`")


@dataclass(frozen=True)
class FormField:
    group: str
    """``credentials`` or ``settings``: the part of the connect request it fills."""
    name: str
    label: str
    kind: str
    """``text``, ``password``, ``number``, ``checkbox``, ``select``, or ``list`` (several values, space-separated)."""
    required: bool
    help: str | None
    choices: tuple[str, ...] = ()
    default: Any = None

    @property
    def key(self) -> str:
        return f"{self.group}.{self.name}"

    @property
    def secret(self) -> bool:
        return self.kind == "password" or (self.kind == "list" and bool(_SECRET_NAME.search(self.name)))


def label_for(name: str) -> str:
    words = [_ACRONYMS.get(word, word) for word in name.split("_")]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return schema.get("$defs", {}).get(ref.rsplit("/", 1)[-1], schema) if ref else schema


def _unwrap_optional(prop: dict[str, Any]) -> dict[str, Any]:
    options = [p for p in prop.get("anyOf", []) if p.get("type") != "null"]
    return {**options[0], **{k: v for k, v in prop.items() if k != "anyOf"}} if len(options) == 1 else prop


def _kind(name: str, prop: dict[str, Any]) -> str | None:
    secret = prop.get("writeOnly") or prop.get("format") == "password" or bool(_SECRET_NAME.search(name))
    if "enum" in prop:
        return "select"
    match prop.get("type"):
        case "string":
            return "password" if secret else "text"
        case "integer" | "number":
            return "number"
        case "boolean":
            return "checkbox"
        case "array" if prop.get("items", {}).get("type") == "string":
            return "list"
    return None  # nested objects and the like: set through the API, not this form


def fields_of(struct: type[msgspec.Struct] | None, group: str) -> list[FormField]:
    if struct is None:
        return []
    schema = msgspec.json.schema(struct)
    defs = schema.get("$defs", {})
    body = _resolve(schema)
    required = set(body.get("required", []))
    out = []
    for name, raw in body.get("properties", {}).items():
        prop = _unwrap_optional(_resolve({**raw, "$defs": defs}) if "$ref" in raw else raw)
        kind = _kind(name, prop)
        if kind is None:
            continue
        out.append(FormField(
            group=group, name=name, label=prop.get("title") or label_for(name), kind=kind,
            required=name in required, help=prop.get("description"),
            choices=tuple(str(c) for c in prop.get("enum", ())), default=raw.get("default"),
        ))
    return out


def description_of(struct: type[msgspec.Struct] | None) -> str | None:
    """The type's own description (its docstring), as plain text: what the fields mean together."""
    if struct is None:
        return None
    text = _resolve(msgspec.json.schema(struct)).get("description")
    return " ".join(text.replace("``", "").split()) if text else None


class FormErrors(Exception):
    """Messages by field key (``credentials.auth_token``), and those that belong to no one field."""

    def __init__(self, fields: dict[str, str], general: list[str] | None = None) -> None:
        super().__init__("the form has errors")
        self.fields = fields
        self.general = general or []


def parse(fields: list[FormField], form: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The submitted form as ``{"credentials": {...}, "settings": {...}}``; an empty optional text field is
    left out (its default applies). Raises ``FormErrors`` for what can be told without the provider."""
    values: dict[str, dict[str, Any]] = {"credentials": {}, "settings": {}}
    errors: dict[str, str] = {}
    for field in fields:
        raw = (form.get(field.key) or "").strip()
        if "\x00" in raw:  # PostgreSQL cannot store it, and no provider wants it
            errors[field.key] = "Remove the invisible control character."
            continue
        if field.kind == "checkbox":
            values[field.group][field.name] = bool(raw)
            continue
        if not raw:
            if field.required:
                errors[field.key] = f"Enter the {field.label[:1].lower() + field.label[1:]}."
            continue
        if field.kind == "number":
            try:
                values[field.group][field.name] = int(raw)
            except ValueError:
                errors[field.key] = "Enter a whole number."
        elif field.kind == "list":
            values[field.group][field.name] = [v for v in re.split(r"[\s,]+", raw) if v]
        else:
            values[field.group][field.name] = raw
    if errors:
        raise FormErrors(errors)
    return values


def errors_from(exc: HubError, fields: list[FormField], values: dict[str, dict[str, Any]]) -> FormErrors:
    """Where the connect service's error belongs on the form: a schema error by the field it names, a
    rejection by the provider next to the secrets the user typed (they are what a provider refuses)."""
    message = exc.message.split(": ", 1)[1] if exc.code in ("invalid_credentials", "invalid_settings") else exc.message
    group = {"invalid_credentials": "credentials", "invalid_settings": "settings"}.get(exc.code)
    if group is not None:
        named = _AT_FIELD.search(message) or _MISSING.search(message)
        candidates = [f for f in fields if f.group == group]
        field = next((f for f in candidates if named and f.name == named.group(1)), None) or next(
            (f for f in candidates if re.search(rf"\b{re.escape(f.name)}\b", message)), None)
        text = "This field is required." if _MISSING.search(message) else _AT_FIELD.sub("", message)
        text = re.sub(r"\s*-\s*at\s*$", "", text).strip()
        text = text[:1].upper() + text[1:]
        if field is not None:
            return FormErrors({field.key: text}, [f"{field.label}: {text}"])
        return FormErrors({}, [text])
    if exc.code == "credentials_rejected":
        typed = [f for f in fields if f.group == "credentials" and f.secret and values["credentials"].get(f.name)]
        return FormErrors({f.key: exc.message for f in typed}, [exc.message])
    return FormErrors({}, [exc.message])
