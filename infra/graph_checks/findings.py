"""What a deploy check reports: one defect of the previewed graph that would break or weaken a real deploy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One defect found by a check over the whole previewed resource graph.

    Attributes:
        check: Name of the check that found it (``reachability``, ``ordering``, ``identity``, ``recreate``,
            ``chart-values``, ``custom-resources``).
        subject: What is wrong: a resource URN, a config key or a chart value path.
        message: What is wrong and what would fix it, in one sentence.
    """

    check: str
    subject: str
    message: str

    def render(self) -> str:
        return f"[{self.check}] {self.subject}: {self.message}"
