"""The origin's message templates, filled in. Dates are shown as the origin shows them (en-US), in the
tenant's time zone: the caller converts a moment to it before it gets here."""

from __future__ import annotations

from datetime import date, datetime

from hub_twilio.config import Templates


def short_date(day: date) -> str:
    """en-US ``{weekday: 'short', month: 'short', day: 'numeric'}``: "Tue, Dec 1"."""
    return f"{day:%a}, {day:%b} {day.day}"


def numeric_date(day: date) -> str:
    """en-US ``toLocaleDateString()``: "12/1/2026"."""
    return f"{day.month}/{day.day}/{day.year}"


def due_in(days: int) -> str:
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days > 1:
        return f"in {days} days"
    return "yesterday" if days == -1 else f"{-days} days ago"


def schedule_reminder(texts: Templates, *, job: str, task: str, when: datetime) -> str:
    return texts.schedule_reminder.format(job=job, task=task, date=short_date(when.date()))


def daily_log(texts: Templates, *, job: str, day: date, summary: str, photo_count: int) -> str:
    fields = {"job": job, "date": numeric_date(day), "summary": summary, "photo_count": photo_count}
    body = texts.daily_log.format(**fields)
    if photo_count > 0:
        body += texts.daily_log_photos.format(**fields)
    return body


def selection_reminder(texts: Templates, *, client_name: str, selection: str, due: date, today: date) -> str:
    days = (due - today).days
    return texts.selection_reminder.format(client_name=client_name, selection=selection, due_date=numeric_date(due),
                                           days_left=days, due_in=due_in(days))
