"""Sobriety milestones, as a pure function of a private date and today's date.

No Django. The date itself never leaves the server; only the milestone's words are shared, and only
when the member chooses to share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from dateutil.relativedelta import relativedelta

__all__ = ["Milestone", "current_milestone"]


@dataclass(frozen=True)
class Milestone:
    """A milestone reached: a stable code (for clients) and the words the room sees."""

    code: str
    label: str


def _years(n: int) -> Milestone:
    return Milestone(f"{n}y", "1 year" if n == 1 else f"{n} years")


def current_milestone(sobriety_date: date, today: date) -> Milestone | None:
    """Return the largest milestone reached by `today`, or None before the first 24 hours.

    Milestones are the ones meetings celebrate: 24 hours, 30, 60 and 90 days, 6 months, 9 months,
    1 year, then every year. Months and years are calendar months (29 Feb counts on 28 Feb).
    """
    if today < sobriety_date:
        return None
    years = relativedelta(today, sobriety_date).years
    if years >= 1:
        return _years(years)
    if sobriety_date + relativedelta(months=9) <= today:
        return Milestone("9m", "9 months")
    if sobriety_date + relativedelta(months=6) <= today:
        return Milestone("6m", "6 months")
    days = (today - sobriety_date).days
    for threshold in (90, 60, 30):
        if days >= threshold:
            return Milestone(f"{threshold}d", f"{threshold} days")
    if days >= 1:
        return Milestone("24h", "24 hours")
    return None
