"""An indented source builder: ``with buf.indent():`` instead of counted spaces."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class SourceBuilder:
    def __init__(self) -> None:
        self._lines: list[str] = []
        self._depth = 0

    def line(self, text: str = "") -> None:
        self._lines.append(("    " * self._depth + text) if text else "")

    def lines(self, texts: list[str]) -> None:
        for t in texts:
            self.line(t)

    @contextlib.contextmanager
    def indent(self, header: str | None = None) -> Iterator[None]:
        if header is not None:
            self.line(header)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def mark(self) -> tuple[int, int]:
        """Where the next line goes, and its indent: :meth:`insert` writes there later."""
        return len(self._lines), self._depth

    def insert(self, mark: tuple[int, int], texts: list[str]) -> None:
        """Lines at ``mark``, at its indent (lines written since then move down)."""
        at, depth = mark
        self._lines[at:at] = [("    " * depth + t) if t else "" for t in texts]

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"
