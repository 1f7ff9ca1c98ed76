"""Manual review: who may do what to which review item, claims, and what a role may see (pure).

Review items come from four engines (`source`): allocation (no stock, unmapped SKU, no warehouse),
risk (a rule said review or block, or SMS was impossible), verification (a code failed or expired)
and quarantine (a payload that did not normalize). Roles are the Cognito groups:

| action          | allocation, quarantine items | risk, verification items |
|-----------------|------------------------------|--------------------------|
| list, get, claim| reviewer, admin              | risk_reviewer, admin     |
| approve         | reviewer, admin              | risk_reviewer, admin     |
| reject          | reviewer, admin              | risk_reviewer, admin     |
| reassign        | reviewer, admin              | admin                    |
| release_hold    | -                            | risk_reviewer, admin     |
| resend_code     | -                            | risk_reviewer, admin     |
| replay          | reviewer, admin (quarantine) | -                        |
Reading the audit log is for admins.

A decision needs a claim: the reviewer holds the item (a lease that expires, so an abandoned claim
frees itself); two reviewers never hold the same item at once - the store enforces it with a
conditional write, this module says what the condition is.

Personal data: a `reviewer` (stock and warehouses) sees the destination down to the district and
masked name, phone and street; `risk_reviewer` and `admin` (who may have to call the buyer) see it in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ROLES = ("reviewer", "risk_reviewer", "admin")
SOURCES = ("allocation", "risk", "verification", "quarantine")
ACTIONS = ("approve", "reject", "reassign", "release_hold", "resend_code", "replay")
DEFAULT_CLAIM = timedelta(minutes=15)

_OPERATIONS = {"allocation": ("reviewer",), "quarantine": ("reviewer",), "risk": ("risk_reviewer",),
               "verification": ("risk_reviewer",)}
_ACTIONS_BY_SOURCE = {
    "allocation": ("approve", "reject", "reassign"),
    "quarantine": ("approve", "reject", "replay"),
    "risk": ("approve", "reject", "release_hold", "resend_code", "reassign"),
    "verification": ("approve", "reject", "release_hold", "resend_code", "reassign"),
}
# A held order's warehouse is stock business, not risk business: on risk items only admins move it.
_ADMIN_ONLY = {("risk", "reassign"), ("verification", "reassign")}
FULL_VIEW_ROLES = ("risk_reviewer", "admin")


class ReviewError(Exception):
    """Base of the review decisions' expected refusals (each maps to an HTTP status)."""


class ItemNotFoundError(ReviewError):
    pass


class ForbiddenError(ReviewError):
    pass


class ClaimConflictError(ReviewError):
    """Someone else holds the item, or it is resolved already."""


class InvalidActionError(ReviewError):
    """The action does not apply to this item (a reassign of a risk hold, an unknown warehouse...)."""


@dataclass(frozen=True)
class Reviewer:
    username: str
    roles: tuple[str, ...]

    @property
    def role(self) -> str:
        """The strongest role, for the audit log."""
        return next((role for role in ("admin", "risk_reviewer", "reviewer") if role in self.roles), "none")

    def sees_everything(self) -> bool:
        return any(role in FULL_VIEW_ROLES for role in self.roles)


def may_work_on(reviewer: Reviewer, source: str) -> bool:
    """List, read and claim items of this source."""
    return "admin" in reviewer.roles or any(role in reviewer.roles for role in _OPERATIONS.get(source, ()))


def sources_for(reviewer: Reviewer) -> tuple[str, ...]:
    return tuple(source for source in SOURCES if may_work_on(reviewer, source))


def check_action(reviewer: Reviewer, source: str, action: str) -> None:
    """Raise ForbiddenError (the role may not) or InvalidActionError (no such action for this item)."""
    if not may_work_on(reviewer, source):
        raise ForbiddenError(f"role {reviewer.role} may not act on {source} items")
    if action not in _ACTIONS_BY_SOURCE.get(source, ()):
        raise InvalidActionError(f"{action} does not apply to a {source} item; "
                                 f"possible: {', '.join(_ACTIONS_BY_SOURCE.get(source, ()))}")
    if (source, action) in _ADMIN_ONLY and "admin" not in reviewer.roles:
        raise ForbiddenError(f"only admins may {action} a {source} item")


def claim_is_free(claimed_by: str | None, claim_expires_at: datetime | None, reviewer: str, now: datetime) -> bool:
    """An item can be claimed when nobody holds it, the holder's lease ran out, or the reviewer holds it."""
    return claimed_by is None or claimed_by == reviewer or claim_expires_at is None or claim_expires_at <= now


def stamp(moment: datetime) -> str:
    """UTC with a fixed width (microseconds always written): claim expiries compare as text in conditions."""
    if moment.tzinfo is None:
        raise ValueError("a claim time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def mask(text: str | None, keep: int = 0) -> str | None:
    """All but the last `keep` characters as *, so a reviewer can tell two values apart without reading them."""
    if not text:
        return text
    return "*" * max(len(text) - keep, 1) + (text[-keep:] if keep else "")


def ship_to_for(reviewer: Reviewer, ship_to: dict | None) -> dict | None:
    """The destination as this reviewer may see it."""
    if ship_to is None or reviewer.sees_everything():
        return ship_to
    shown = dict(ship_to)
    for field in ("name", "address"):
        shown[field] = mask(shown.get(field))
    shown["phone"] = mask(shown.get("phone"), keep=4)
    shown.pop("address_handle", None)
    return shown
