"""The three policies and what each allows, as one table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fold.errors import PermissionDenied, ValidationFailed

Policy = Literal["admin", "editor", "viewer"]
POLICIES: tuple[Policy, ...] = ("admin", "editor", "viewer")

Permission = Literal[
    "read",
    "write_records",
    "delete_records",
    "restore_records",
    "manage_fields",
    "create_segment",
    "edit_segment",
    "delete_segment",
    "restore_segment",
    "system_segment",
    "run_actions",
    "run_delete_action",
    "export",
    "gdpr_bypass",
    "mailchimp_settings",
    "manage_settings",
    "write_templates",
]

ALLOWED: dict[Permission, frozenset[Policy]] = {
    "read": frozenset({"admin", "editor", "viewer"}),
    "export": frozenset({"admin", "editor", "viewer"}),
    "write_records": frozenset({"admin", "editor"}),
    "create_segment": frozenset({"admin", "editor"}),
    "edit_segment": frozenset({"admin", "editor"}),
    "delete_segment": frozenset({"admin", "editor"}),
    "run_actions": frozenset({"admin", "editor"}),
    "delete_records": frozenset({"admin"}),
    "restore_records": frozenset({"admin"}),
    "restore_segment": frozenset({"admin"}),
    "manage_fields": frozenset({"admin"}),
    "system_segment": frozenset({"admin"}),
    "run_delete_action": frozenset({"admin"}),
    "gdpr_bypass": frozenset({"admin"}),
    "mailchimp_settings": frozenset({"admin"}),
    "manage_settings": frozenset({"admin"}),
    "write_templates": frozenset({"admin", "editor"}),
}


def check_policy_name(value: str) -> Policy:
    for policy in POLICIES:
        if value == policy:
            return policy
    raise ValidationFailed(
        f"{value!r} is not a policy; use one of {', '.join(POLICIES)}.", param="policy"
    )


@dataclass(frozen=True)
class Caller:
    """An authenticated caller inside one bucket. Only the auth layer and the CLI make one."""

    bucket: str
    policy: Policy
    user_uri: str
    key_id: str | None = None

    def can(self, permission: Permission) -> bool:
        return self.policy in ALLOWED[permission]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise PermissionDenied(
                f"The {self.policy} policy does not allow this ({permission.replace('_', ' ')})."
            )
