"""Model writes seen through Django's signals: created, updated and deleted
rows and M2M changes, with their primary keys. Generation asserts on these
instead of re-parsing INSERT/UPDATE/DELETE statements."""

from __future__ import annotations

import functools
from typing import Any

from django.db.models.signals import m2m_changed, post_delete, post_save

from ..trace import encode_value
from .hooks import guarded
from .orm import field_value
from .recorder import current
from .redact import DB_SECRET_MIN, REDACTED, collect, is_secret_key


def _receiver(func: Any) -> Any:
    """Signal.send() does not catch a receiver's exception: it would reach the
    user's save() or delete()."""

    @functools.wraps(func)
    def receiver(*args: Any, **kwargs: Any) -> None:
        if current() is not None:
            guarded("write", func, *args, **kwargs)

    return receiver


def _values(instance: Any, secrets: set[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if field.attname in instance.__dict__:
            raw = instance.__dict__[field.attname]
            if is_secret_key(field.attname):
                # The written value also travels in the INSERT's parameters.
                collect(raw, secrets, DB_SECRET_MIN)
                values[field.attname] = REDACTED
            else:
                values[field.attname] = field_value(field, instance, raw)
    return values


@_receiver
def _on_save(
    sender: Any,
    instance: Any,
    created: bool,
    raw: bool = False,
    using: str = "default",
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    recorder = current()
    if recorder is None or recorder.mode is not None:
        return
    with recorder.own_work():
        values = _values(instance, recorder.secrets)
    recorder.add(
        {
            "type": "write",
            "op": "create" if created else "update",
            "model": instance._meta.label_lower,
            "alias": using,
            "pk": encode_value(instance.pk),
            "values": values,
            "update_fields": sorted(update_fields) if update_fields else None,
        }
    )


@_receiver
def _on_delete(sender: Any, instance: Any, using: str = "default", **kwargs: Any) -> None:
    recorder = current()
    if recorder is None or recorder.mode is not None:
        return
    recorder.add(
        {
            "type": "write",
            "op": "delete",
            "model": instance._meta.label_lower,
            "alias": using,
            "pk": encode_value(instance.pk),
        }
    )


@_receiver
def _on_m2m(
    sender: Any,
    instance: Any,
    action: str,
    reverse: bool,
    model: Any,
    pk_set: Any,
    using: str = "default",
    **kwargs: Any,
) -> None:
    recorder = current()
    if recorder is None or recorder.mode is not None or not action.startswith("post_"):
        return
    # Name the relation from the side that declares the field.
    field_name = None
    for field in (model if reverse else type(instance))._meta.many_to_many:
        if field.remote_field.through is sender:
            field_name = field.name
    recorder.add(
        {
            "type": "write",
            "op": "m2m_" + action[len("post_") :],
            "model": instance._meta.label_lower,
            "alias": using,
            "pk": encode_value(instance.pk),
            "reverse": reverse,
            "field": field_name,
            "related_model": model._meta.label_lower,
            "pks": sorted((encode_value(pk) for pk in pk_set or ()), key=str),
        }
    )


def install_writes() -> None:
    post_save.connect(_on_save, dispatch_uid="kolo_django_post_save", weak=False)
    post_delete.connect(_on_delete, dispatch_uid="kolo_django_post_delete", weak=False)
    m2m_changed.connect(_on_m2m, dispatch_uid="kolo_django_m2m", weak=False)
