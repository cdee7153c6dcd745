"""Model instances from SQLAlchemy Core rows, for the statements run on every request.

Loading entities through the ORM (``Session.exec(select(Model))``: identity map, loader machinery,
autoflush) costs several times what the same statement costs in Core, and on every page view (the
session cookie) and every token request that difference is most of the database time. The hot
statements therefore run in Core with ``prefix``-labelled columns (``labelled``) and their rows
become plain model instances (``detached``, ``built``) that the rest of the code reads like ORM
ones. Users: ``portail.accounts.sessions`` (the session cookie) and ``portail.oidc.rows``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy.engine import Row
from sqlalchemy.orm import configure_mappers, make_transient_to_detached
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlmodel import SQLModel

M = TypeVar("M", bound=SQLModel)


def labelled(table: Any, prefix: str) -> list[Any]:
    return [column.label(prefix + column.name) for column in table.c]


_SHAPES: dict[tuple[type[SQLModel], str], tuple[Any, tuple[tuple[str, str], ...]]] = {}


def _shape(model: type[SQLModel], prefix: str) -> tuple[Any, tuple[tuple[str, str], ...]]:
    shape = _SHAPES.get((model, prefix))
    if shape is None:
        configure_mappers()  # the class manager's attributes exist once mappers are configured
        table = model.__table__  # type: ignore[attr-defined]
        names = tuple((column.name, prefix + column.name) for column in table.c)
        shape = _SHAPES[(model, prefix)] = (manager_of_class(model), names)
    return shape


def detached(model: type[M], row: Row[Any], prefix: str) -> M | None:
    """The ``prefix``-labelled columns of ``row`` as a ``model`` instance in no session (None when
    an outer join found nothing: its primary key is NULL).

    Built the way the ORM loads a row (a new instance, its attribute dictionary filled), not through
    ``__init__``: SQLModel's constructor runs its validation machinery, ~30 µs a row against ~2 µs."""
    values = row._mapping
    if values[prefix + "id"] is None:
        return None
    manager, names = _shape(model, prefix)
    instance: M = manager.new_instance()
    instance.__dict__.update({name: values[label] for name, label in names})
    return instance


def built(model: type[M], values: Mapping[str, Any]) -> M:
    """A ``model`` instance in no session holding ``values`` (every column), built as ``detached``
    builds one: for a row this unit of work has just inserted in Core."""
    manager, names = _shape(model, "")
    instance: M = manager.new_instance()
    instance.__dict__.update({name: values[name] for name, _label in names})
    return instance


def persistent(instance: M) -> M:
    """``instance`` (from ``detached``) marked as a stored row, as an ORM-loaded instance is once its
    session has closed: ``Session.add`` of it, changed, updates its row instead of inserting one."""
    make_transient_to_detached(instance)
    return instance
