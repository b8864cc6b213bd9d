"""What the login answers, for the OpenAPI document."""

from __future__ import annotations

from fold.schemas import Open


class LoginAnswer(Open):
    api_key: str
