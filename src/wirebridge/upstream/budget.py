"""How much time one turn may spend upstream, and which retry waits fit in it. Pure: the caller
passes the (monotonic) time.

Two bounds. The turn's deadline (`turn_timeout_ms`) holds for everything: attempts, retry
waits, prefill and generation; a wait that would end past it is not started. The commit
(`commit_at`, set only by a server streaming its answer) is the moment the server sends its
HTTP 200 if the upstream has not answered yet. A retry wait that would straddle it is not
started either: the failure known now is answered at once with its own status (429 with
Retry-After, 502, 504), where waiting would have turned it into HTTP 200 and `response.failed`.
A wait that starts after the commit is fine (the client already has its 200 and keep-alives,
and sees nothing of the retry).

So before the commit the retries are bounded by the commit window: with the defaults (2 s,
backoff 0.2, 0.4, 0.8 s) a refused connection or a 5xx is tried four times, not five, and a
429 asking for 3 s is handed to the client with its Retry-After instead of being waited out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Refusal = Literal["past_commit", "past_deadline"]


@dataclass(frozen=True, slots=True)
class Budget:
    """The turn's deadline and the server's commit, as monotonic times (None: no bound)."""

    deadline: float | None = None
    commit_at: float | None = None

    @classmethod
    def start(cls, now: float, turn_timeout_ms: int, commit_at: float | None = None) -> Budget:
        """The budget of a turn starting at `now`; `turn_timeout_ms = 0` means no deadline."""
        deadline = now + turn_timeout_ms / 1000.0 if turn_timeout_ms else None
        return cls(deadline, commit_at)

    def refuses_wait(self, now: float, delay: float) -> Refusal | None:
        """Why a retry wait of `delay` seconds starting at `now` must not be made, or None."""
        end = now + delay
        if self.deadline is not None and end >= self.deadline:
            return "past_deadline"
        if self.commit_at is not None and now < self.commit_at <= end:
            return "past_commit"
        return None


NO_BUDGET = Budget()  # no deadline, no commit: the library's plain retries
