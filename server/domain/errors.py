"""Domain errors. The API layer maps each to a canonical gRPC status with
google.rpc details; nothing here knows about gRPC."""

from __future__ import annotations

from dataclasses import dataclass, field


class DomainError(Exception):
    """Base of every error a user may see: the message is meant for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidArgument(DomainError):
    """Bad input: carries one violation per offending field (BadRequest)."""

    def __init__(self, violations: list[FieldViolation] | FieldViolation, message: str = "") -> None:
        if isinstance(violations, FieldViolation):
            violations = [violations]
        self.violations = violations
        text = message or "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(text)


class FailedPrecondition(DomainError):
    """Wrong state for the action: ``reason`` is an ErrorInfo reason such as
    BATCH_NOT_PAUSABLE, and the message names the current status."""

    def __init__(self, reason: str, message: str, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.metadata = metadata or {}


class NotFound(DomainError):
    """Missing, or owned by another organization: the two look the same."""


class AlreadyExists(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class Unauthenticated(DomainError):
    pass


class ResourceExhausted(DomainError):
    pass


@dataclass
class Violations:
    """Collects field violations so a request reports all of them at once."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_name: str, description: str) -> None:
        self.items.append(FieldViolation(field_name, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)
