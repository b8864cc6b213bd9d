"""Bases of the answer models each domain's schemas.py declares for the OpenAPI document."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Open(BaseModel):
    """An answer object; it may carry properties the model does not name (a record's own
    fields, a fieldset's columns)."""

    model_config = ConfigDict(extra="allow")


class Page(Open):
    """SPEC 2.6's list envelope; the list itself is named by each answer."""

    page: int
    page_size: int
    total: int
    pages: int
