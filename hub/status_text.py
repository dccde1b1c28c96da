"""``hub status`` for a terminal: a headline, then one table per part, fitted to the terminal's width (the
last column, the free text, is cut first). Styling is ANSI, which ``click.echo`` drops when not on a TTY."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import click

from hub.status import Status

GAP = "  "


def render(status: Status, width: int) -> list[str]:
    now = status.checked_at
    q = status.queue
    lines = [f"hub status at {now:%Y-%m-%d %H:%M:%S} UTC",
             click.style("OK", fg="green", bold=True) + ": nothing needs attention" if status.healthy
             else click.style("NEEDS ATTENTION", fg="red", bold=True),
             *(f"  - {line}" for line in status.attention), "",
             _title("Queues"),
             f"  jobs: {q.jobs_pending} pending (oldest due waited {_duration(q.oldest_due_job_seconds)}), "
             f"{q.jobs_running} running",
             f"  outgoing webhooks: {q.deliveries_waiting} waiting "
             f"(oldest due waited {_duration(q.oldest_due_delivery_seconds)})"]

    part = status.connections_in_error
    lines += _section("Connections in error", part.total, width, ["tenant", "provider", "account", "since"],
                      [[c.tenant, c.provider, c.account or "-", _ago(now, c.since)] for c in part.items],
                      [c.error for c in part.items])
    part = status.failing_endpoints
    lines += _section("Webhook endpoints failing or disabled", part.total, width,
                      ["tenant", "host", "failed events", "retrying", "last attempt", "disabled"],
                      [[e.tenant, e.host, str(e.consecutive_failures), str(e.retrying), _ago(now, e.last_attempt_at),
                        "no" if e.enabled else _ago(now, e.disabled_at)] for e in part.items],
                      [e.disabled_reason for e in part.items])
    part = status.stuck_jobs
    lines += _section(f"Jobs stuck (past their lease, or due over {status.stuck_after_minutes:g} min)", part.total,
                      width, ["id", "kind", "tenant", "status", "attempts", "since"],
                      [[str(j.id), j.kind, j.tenant or "-", _why_stuck(j.status), str(j.attempts), _ago(now, j.since)]
                       for j in part.items],
                      [j.last_error for j in part.items])
    part = status.failed_jobs_last_24h
    lines += _section("Jobs failed in the last 24 h", part.total, width, ["id", "kind", "tenant", "attempts", "failed"],
                      [[str(j.id), j.kind, j.tenant or "-", str(j.attempts), _ago(now, j.since)] for j in part.items],
                      [j.last_error for j in part.items])
    part = status.last_syncs
    lines += _section("Last sync of each flow", part.total, width,
                      ["tenant", "provider", "entity", "direction", "status", "processed", "failed", "when"],
                      [[s.tenant, s.provider, s.entity, s.direction, s.status.replace("_", " "), str(s.processed),
                        str(s.failed), _ago(now, s.at)] for s in part.items])
    inbox = status.inbound_webhooks
    lines += _section("Inbound webhooks failed or unrouted", sum(p.count for p in inbox), width,
                      ["provider", "status", "count", "last 24 h", "newest"],
                      [[p.provider, p.status, str(p.count), str(p.recent), _ago(now, p.newest)] for p in inbox])
    return lines


def _title(text: str) -> str:
    return click.style(text, bold=True)


def _section(title: str, total: int, width: int, headers: list[str], rows: list[list[str]],
             details: Sequence[str | None] = ()) -> list[str]:
    heading = _title(f"{title}: {total}" if total else f"{title}: none")
    if not rows:
        return ["", heading]
    more = [f"  … and {total - len(rows)} more (--limit, or --json)"] if total > len(rows) else []
    return ["", heading, *_table(headers, rows, details, width - len(GAP)), *more]


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], details: Sequence[str | None],
           width: int) -> list[str]:
    """Columns as wide as their widest cell; the last one shrinks (cut with an ellipsis) to fit ``width``.
    A row's detail (an error, a reason: free text of any length) goes on a line of its own below it."""
    cells = [[h.upper() for h in headers], *[[_one_line(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    fixed = sum(widths[:-1]) + len(GAP) * (len(widths) - 1)
    widths[-1] = max(8, min(widths[-1], width - fixed))
    out = [GAP + click.style(GAP.join(_fit(h, w) for h, w in zip(cells[0], widths, strict=True)).rstrip(), dim=True)]
    for n, row in enumerate(cells[1:]):
        out.append(GAP + GAP.join(_fit(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n < len(details) and details[n]:
            out.append(GAP * 2 + _fit(_one_line(details[n]), width - len(GAP)).rstrip())
    return out


def _why_stuck(status: str) -> str:
    return "lease expired" if status == "running" else "not picked up"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fit(cell: str, width: int) -> str:
    return cell.ljust(width) if len(cell) <= width else cell[:width - 1] + "…"


def _ago(now: datetime, then: datetime | None) -> str:
    return "-" if then is None else f"{_duration((now - then).total_seconds())} ago"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
