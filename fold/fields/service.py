"""A bucket's view of the field schemas: the built-ins plus its custom fields."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from fold.db.models import CustomField
from fold.errors import Conflict, ValidationFailed
from fold.fields.builtin import BUILTIN
from fold.fields.paths import FIELD_PATH_RE
from fold.fields.schema import FORM_TYPES, FieldDef, TypeSchema, label_for
from fold.fields.types import FIELD_TYPES
from fold.ids import RESOURCE_TYPES, STORED_TYPES


def check_resource_type(value: str, *, param: str = "resource_type", stored: bool = True) -> str:
    """`value` if it names a resource type Fold keeps; 400 listing the valid ones if not."""
    valid = STORED_TYPES if stored else RESOURCE_TYPES
    if value in valid:
        return value
    hint = " ('contact' is person or organisation and is not stored)" if value == "contact" else ""
    raise ValidationFailed(
        f"{value!r} is not a resource type{hint}. Valid types: {', '.join(valid)}.",
        param=param,
        error="Unknown resource type",
    )


_SCHEMAS = "fold_schemas"  # (the transaction they were read in, {(bucket, type): schema})


def schema_for(session: Session, *, bucket: str, resource_type: str) -> TypeSchema:
    """The type's schema in `bucket`, read once per transaction (or savepoint) of the
    session: a request asks for it several times (rules, sentence, page), each a round
    trip."""
    held = session.info.get(_SCHEMAS)
    if held is not None and held[0] is _transaction(session):
        known: dict[tuple[str, str], TypeSchema] = held[1]
        if (bucket, resource_type) in known:
            return known[(bucket, resource_type)]
    schema = _read_schema(session, bucket, resource_type)
    transaction = _transaction(session)  # begun by the read if it was not
    held = session.info.get(_SCHEMAS)
    if held is None or held[0] is not transaction:
        fresh: dict[tuple[str, str], TypeSchema] = {}
        held = session.info[_SCHEMAS] = (transaction, fresh)
    held[1][(bucket, resource_type)] = schema
    return schema


def _transaction(session: Session) -> Any:
    return session.get_nested_transaction() or session.get_transaction()


# Built once, plain columns: every record write reads it.
_CUSTOM_FIELDS = select(
    CustomField.field, CustomField.type, CustomField.label, CustomField.form_type
).where(
    CustomField.bucket == bindparam("bucket"),
    CustomField.resource_type == bindparam("resource_type"),
)


def _read_schema(session: Session, bucket: str, resource_type: str) -> TypeSchema:
    rows = session.execute(_CUSTOM_FIELDS, {"bucket": bucket, "resource_type": resource_type})
    custom = [FieldDef(*row, custom=True) for row in rows]
    return BUILTIN[resource_type].with_custom(custom)


def add_custom_field(
    session: Session,
    *,
    bucket: str,
    resource_type: str,
    body: dict[str, Any],
) -> FieldDef:
    """Declare a bucket's own field on a type; built-in fields cannot be redefined."""
    name = body.get("field")
    if not isinstance(name, str) or not FIELD_PATH_RE.match(name):
        raise ValidationFailed(
            "'field' must be a dotted path of letters, digits, '_' and '-'.", param="field"
        )
    type_ = body.get("type", "string")
    if type_ not in FIELD_TYPES:
        raise ValidationFailed(f"'type' must be one of {', '.join(FIELD_TYPES)}.", param="type")
    label = body.get("label") or label_for(name)
    if not isinstance(label, str):
        raise ValidationFailed("'label' must be text.", param="label")
    if name in BUILTIN[resource_type].fields:
        raise Conflict(f"'{name}' is a built-in field of {resource_type}.", param="field")
    if session.get(CustomField, (bucket, resource_type, name)) is not None:
        raise Conflict(f"'{name}' is already a custom field of {resource_type}.", param="field")
    session.info.pop(_SCHEMAS, None)  # this transaction's schemas gain the field
    row = CustomField(
        bucket=bucket,
        resource_type=resource_type,
        field=name,
        type=type_,
        label=label,
        form_type=FORM_TYPES[type_],
    )
    session.add(row)
    session.flush()
    return FieldDef(name, type_, label, FORM_TYPES[type_], custom=True)


def field_out(field: FieldDef) -> dict[str, Any]:
    out: dict[str, Any] = {
        "field": field.name,
        "type": field.type,
        "label": field.label,
        "form_type": field.form_type,
        "custom": field.custom,
    }
    if field.choices:
        out["choices"] = list(field.choices)
    return out


def schema_out(schema: TypeSchema) -> dict[str, Any]:
    return {
        "resource_type": schema.resource_type,
        "name": schema.name,
        "name_singular": schema.name_singular,
        "fields": [field_out(f) for f in schema.fields.values()],
        "search_fields": list(schema.search_fields),
        "sort_by": list(schema.sort_by),
        "list_fields": list(schema.list_fields),
        "unique_field": schema.unique_field,
        "contact_field": schema.contact_field,
    }
