"""The sign-off's business facts: who answers for which part of the month, what they said, where it stands."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: the parties that check the month, in the order they are listed (procedure 4.3)
PARTIES = ("cs", "finance", "engineering", "cleaning")
#: the apprise tag (and console role) of each party's confirmer
PARTY_TAGS = {"cs": "cs-manager", "finance": "finance-manager", "engineering": "engineering-supervisor",
              "cleaning": "cleaning-supervisor"}
#: console role -> the party it answers for
ROLE_PARTIES = {tag: party for party, tag in PARTY_TAGS.items()}
#: staff roles that may confirm for a party of their department
CONFIRMER_ROLES = {"cs": ("manager",), "finance": ("manager",), "engineering": ("supervisor", "manager"),
                   "cleaning": ("supervisor", "manager")}

AWAITING, CONFIRMED, DISPUTED = "awaiting", "confirmed", "disputed"
OPEN, CORRECTED, WITHDRAWN = "open", "corrected", "withdrawn"


@dataclass(frozen=True)
class Answer:
    """A confirmation or dispute of one version by one party, as recorded."""

    party: str
    version: int
    answer: str  # "confirm" | "dispute"
    by_ref: str
    by_name: str
    by_role: str
    at: datetime
    note: str | None = None
    order_number: str | None = None


@dataclass(frozen=True)
class PartyState:
    """Where one party stands on the current version: awaiting, confirmed or disputed, by whom and when.

    `answered_version` is the version its standing answer was given for; a confirmation of an earlier version
    stands when that party's view did not change since (`carried` is then True)."""

    party: str
    state: str
    answered_version: int | None = None
    by_name: str | None = None
    by_role: str | None = None
    at: datetime | None = None
    carried: bool = False
    reset: bool = False  # it had answered an earlier version whose view has changed since


@dataclass(frozen=True)
class DisputeLine:
    """A dispute and how it ended: open, corrected (a later version changed that party's view) or withdrawn (the
    party confirmed afterwards)."""

    party: str
    version: int
    by_name: str
    at: datetime
    note: str
    order_number: str | None
    ended: str
    ended_in: int | None = None  # the version that corrected it


@dataclass(frozen=True)
class SignoffStatus:
    """One month's sign-off as it stands."""

    month: str
    version: int
    state: str  # "awaiting-signoff" | "sent"
    deadline_at: datetime
    parties: tuple[PartyState, ...]
    disputes: tuple[DisputeLine, ...]
    final_version: int | None = None
    final_sent_at: datetime | None = None
    final_marks: dict | None = None

    @property
    def all_confirmed(self) -> bool:
        return all(p.state == CONFIRMED for p in self.parties)

    @property
    def unconfirmed(self) -> tuple[str, ...]:
        return tuple(p.party for p in self.parties if p.state != CONFIRMED)

    @property
    def open_disputes(self) -> tuple[DisputeLine, ...]:
        return tuple(d for d in self.disputes if d.ended == OPEN)

    def party(self, name: str) -> PartyState:
        return next(p for p in self.parties if p.party == name)
