"""Paging over the API's opaque page tokens (batches, contacts, DNC)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PageCursor:
    """Next/previous over opaque page tokens: a stack of the tokens seen."""

    tokens: list[str] = field(default_factory=lambda: [""])
    page_size: int = 50

    @property
    def current(self) -> str:
        return self.tokens[-1]

    @property
    def page_index(self) -> int:
        return len(self.tokens) - 1

    @property
    def offset(self) -> int:
        return self.page_index * self.page_size

    @property
    def has_prev(self) -> bool:
        return len(self.tokens) > 1

    def next(self, next_token: str) -> None:
        if next_token:
            self.tokens.append(next_token)

    def prev(self) -> None:
        if len(self.tokens) > 1:
            self.tokens.pop()

    def reset(self, page_size: int | None = None) -> None:
        self.tokens = [""]
        if page_size is not None:
            self.page_size = page_size
