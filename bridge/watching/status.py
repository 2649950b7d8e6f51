"""What /health says and what the status page shows, as pure functions of one Snapshot.

bridge.watching.web gathers a Snapshot (the ledger, the routers, the followed files, the Observer, tzspd's
metrics) and hands it here; nothing in this module touches a socket, a file or a clock.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bridge.watching.observe import RecentDecision

CHART_MINUTES = 180  # the chart's span: the last three hours, one bar per minute
REFRESH_SECONDS = 15


@dataclass(frozen=True)
class BlockRow:
    address: str
    why: str
    sid: str
    until: float
    routers: tuple[tuple[str, str], ...]  # (router, status: pending | applied | failed | ...)


@dataclass(frozen=True)
class RouterRow:
    name: str
    reachable: bool
    pending: int
    last_error: str | None
    since: float | None  # when it went up or down (as far as this run saw)


@dataclass(frozen=True)
class SourceRow:
    path: str
    present: bool
    last_line: float | None  # when this run last handled a line from it
    lag_bytes: int | None  # written but not yet handled


@dataclass(frozen=True)
class TzspdView:
    address: str
    counters: Mapping[str, float]  # metric name (without _total) -> value; {"dropped{reason}": n}
    error: str | None = None  # its metrics could not be read
    silent_since: float | None = None  # the received counter has not moved since then


@dataclass(frozen=True)
class Snapshot:
    now: float
    started: float
    blocks: tuple[BlockRow, ...] = ()
    routers: tuple[RouterRow, ...] = ()
    sources: tuple[SourceRow, ...] = ()
    decisions: tuple[RecentDecision, ...] = ()
    per_minute: tuple[tuple[int, int, int], ...] = ()  # (minute, alerts, blocks)
    flood_guard: str | None = None  # what the guard says while it holds
    tzspd: TzspdView | None = None
    queue_lines: int = 0
    fatal: str | None = None
    totals: Mapping[str, int] = field(default_factory=dict)  # lines, alerts, blocks ...
    provisioning: tuple[str, ...] = ()  # drift of the routers' drop rules and logging (bridge.watching.provisioning)


# -- /health ---------------------------------------------------------------------------------------


def when(at: float | None) -> str:
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(at))


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def health_problems(snap: Snapshot, silent_after: float | None) -> list[str]:
    """Every problem, one sentence each; an empty list is healthy."""
    problems = []
    if snap.fatal:
        problems.append(f"stopping: {snap.fatal}")
    for router in snap.routers:
        if not router.reachable and router.since is None and not router.last_error:
            problems.append(f"router {router.name} not connected yet")
        elif not router.reachable:
            since = f" since {when(router.since)}" if router.since is not None else ""
            error = f": {router.last_error}" if router.last_error else ""
            problems.append(f"router {router.name} unreachable{since}{error}")
    for source in snap.sources:
        if not source.present:
            problems.append(f"alert file {source.path} is missing")
    if silent_after is not None and snap.sources and snap.now - snap.started >= silent_after:
        newest = max((s.last_line for s in snap.sources if s.last_line is not None), default=None)
        if newest is None or snap.now - newest >= silent_after:
            last = f"last at {when(newest)}" if newest is not None else f"none since the start at {when(snap.started)}"
            problems.append(f"no new alert line for {ago(snap.now - (newest or snap.started))} ({last})")
    tzspd = snap.tzspd
    if tzspd is not None:
        if tzspd.error:
            problems.append(f"tzspd metrics at {tzspd.address} unreadable: {tzspd.error}")
        elif (
            silent_after is not None
            and tzspd.silent_since is not None
            and snap.now - tzspd.silent_since >= silent_after
        ):
            problems.append(f"no TZSP datagram for {ago(snap.now - tzspd.silent_since)} (tzspd at {tzspd.address})")
    problems += snap.provisioning
    return problems


# -- the page --------------------------------------------------------------------------------------

_STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:0;padding:12px;color:#111;background:#fafafa}
h1{font-size:1.3em;margin:0 0 4px}h2{font-size:1.1em;margin:18px 0 6px}
.ok{color:#0a7a2f}.bad{color:#b00020;font-weight:600}.muted{color:#666}
.wrap{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;min-width:100%;background:#fff}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#eee;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:.95em}.problems{background:#fde7ea;border:1px solid #f3b5bf;padding:6px 10px}
svg{width:100%;height:auto;max-width:900px;background:#fff;border:1px solid #ddd}
td code{overflow-wrap:anywhere}td code.addr{white-space:nowrap;overflow-wrap:normal}.narrow{display:none}
@media (max-width:600px){.wide{display:none}.narrow{display:block}}
.legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:10px;height:10px;margin-right:4px}
@media (max-width:600px){body{padding:6px;font-size:14px}th,td{padding:3px 5px}}
"""

ALERT_COLOUR = "#1f6fb5"
BLOCK_COLOUR = "#d9480f"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str, numeric: Sequence[int] = ()) -> str:
    if not rows:
        return f'<p class="muted">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{cell}</td>' if i in numeric else f"<td>{cell}</td>" for i, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def chart_svg(
    per_minute: Sequence[tuple[int, int, int]],
    width: int = 720,
    height: int = 220,
    font: int = 13,
    chart_id: str = "chart",
) -> str:
    """Alerts and blocks per minute as bars side by side (alerts left, blocks right in each
    minute), a scale and a time axis; inline SVG, nothing fetched."""
    left, right, top, bottom = 8 + 3 * font, 8, 10, 2 * font + 6
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(per_minute))
    peak = max([max(a, b) for _, a, b in per_minute] + [1])
    scale = _nice_ceiling(peak)
    slot = plot_w / n
    half = max(slot / 2 - 0.2, 0.5)
    tick_every = 30 if n > 90 else 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="alerts and blocks per minute" id="{chart_id}">',
        f"<title>alerts and blocks per minute, last {len(per_minute)} minutes</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(
            f'<text x="{left - 4}" y="{y + font / 3:.1f}" font-size="{font}" text-anchor="end" fill="#555">'
            f"{_number(scale * fraction)}</text>"
        )
    for i, (minute, alerts, blocks) in enumerate(per_minute):
        x = left + i * slot
        for value, colour, kind, offset in (
            (alerts, ALERT_COLOUR, "alerts", 0.0),
            (blocks, BLOCK_COLOUR, "blocks", slot / 2),
        ):
            if value:
                h = plot_h * value / scale
                parts.append(
                    f'<rect class="{kind}" x="{x + offset:.2f}" y="{top + plot_h - h:.2f}" width="{half:.2f}" '
                    f'height="{h:.2f}" fill="{colour}"><title>{_e(time.strftime("%H:%M", time.gmtime(minute * 60)))}'
                    f" UTC: {value} {kind}</title></rect>"
                )
    for i, (minute, _, _) in enumerate(per_minute):
        if minute % tick_every == 0:
            x = left + i * slot
            parts.append(f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" stroke="#555"/>')
            parts.append(
                f'<text x="{x:.1f}" y="{height - 6}" font-size="{font}" text-anchor="middle" fill="#555">'
                f"{time.strftime('%H:%M', time.gmtime(minute * 60))}</text>"
            )
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#555"/>')
    parts.append("</svg>")
    return "".join(parts)


def _nice_ceiling(value: float) -> float:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000):
        if value <= step:
            return float(step)
    return float(value)


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def _legend(rows: Sequence[tuple[int, int, int]]) -> str:
    alerts = sum(a for _, a, _ in rows)
    blocks = sum(b for _, _, b in rows)
    span = f"{len(rows) // 60} h" if len(rows) >= 120 else f"{len(rows)} min"
    return (
        f'<p class="legend"><span><i class="sw" style="background:{ALERT_COLOUR}"></i>alerts ({alerts})</span>'
        f'<span><i class="sw" style="background:{BLOCK_COLOUR}"></i>blocks ({blocks})</span>'
        f'<span class="muted">per minute, last {span}, UTC</span></p>'
    )


def render_page(snap: Snapshot, problems: Sequence[str], refresh: int = REFRESH_SECONDS) -> str:
    """The whole status page: one HTML document, no external assets, reloads itself."""
    now = snap.now
    state = (
        '<p class="ok">All is well: every router reachable, every alert source followed.</p>'
        if not problems
        else '<div class="problems"><b>Problems</b><ul>'
        + "".join(f"<li>{_e(p)}</li>" for p in problems)
        + "</ul></div>"
    )
    guard = f'<p class="bad">Flood guard holds: {_e(snap.flood_guard)}</p>' if snap.flood_guard else ""
    blocks = _table(
        ("address", "why", "routers", "until"),
        [
            (
                f'<code class="addr">{_e(b.address)}</code>',
                _e(b.why) + (f' <span class="muted">({_e(b.sid)})</span>' if b.sid else ""),
                ", ".join(
                    f'{_e(name)}: <span class="{"ok" if status == "applied" else "bad"}">{_e(status)}</span>'
                    for name, status in b.routers
                )
                or '<span class="muted">none</span>',
                f'{_e(when(b.until))}<br><span class="muted">in {ago(b.until - now)}</span>',
            )
            for b in snap.blocks
        ],
        "Nothing is blocked.",
    )
    routers = _table(
        ("router", "state", "pending", "last error"),
        [
            (
                _e(r.name),
                ('<span class="ok">reachable</span>' if r.reachable else '<span class="bad">unreachable</span>')
                + (f'<br><span class="muted">since {_e(when(r.since))}</span>' if r.since else ""),
                str(r.pending),
                _e(r.last_error or "-"),
            )
            for r in snap.routers
        ],
        "No routers configured: decisions are only logged.",
        numeric=(2,),
    )
    sources = _table(
        ("alert source", "state", "last line", "behind"),
        [
            (
                f"<code>{_e(s.path)}</code>",
                '<span class="ok">followed</span>' if s.present else '<span class="bad">missing</span>',
                f"{_e(when(s.last_line))}"
                + (f' <span class="muted">({ago(now - s.last_line)} ago)</span>' if s.last_line else ""),
                "-" if s.lag_bytes is None else f"{s.lag_bytes} bytes",
            )
            for s in snap.sources
        ],
        "No alert files configured.",
        numeric=(3,),
    )
    decisions = _table(
        ("when", "decision", "alert", "why"),
        [
            (
                _e(time.strftime("%H:%M:%S", time.gmtime(d.at))),
                (f'<span class="bad">block {_e(d.target)}</span>' if d.action == "block" else "ignore")
                + f' <span class="muted">{_e(d.reason)}</span>',
                f'{_e(d.src)} &rarr; {_e(d.dst)} <span class="muted">[{_e(d.sid)}]</span> {_e(d.msg)}',
                _e(d.why),
            )
            for d in snap.decisions
        ],
        "No decisions yet.",
    )
    chart = "".join(
        f'<div class="{kind}">{_legend(rows)}{chart_svg(rows, width, height, font, f"chart-{kind}")}</div>'
        for kind, rows, width, height, font in (
            ("wide", snap.per_minute, 720, 220, 13),  # the last three hours on a screen
            ("narrow", snap.per_minute[-60:], 360, 200, 12),  # the last hour on a phone: bars wide enough to see
        )
    )
    tzspd = ""
    if snap.tzspd is not None:
        t = snap.tzspd
        if t.error:
            body = f'<p class="bad">cannot read {_e(t.address)}: {_e(t.error)}</p>'
        else:
            body = _table(
                ("counter", "value"), [(_e(k), _number(v)) for k, v in t.counters.items()], "no counters", numeric=(1,)
            )
        tzspd = f"<h2>Sensor (tzspd at {_e(t.address)})</h2>{body}"
    totals = " · ".join(f"{_e(k)} {v}" for k, v in snap.totals.items())
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="refresh" content="{int(refresh)}">'
        f"<title>tzsp-ips: {len(snap.blocks)} blocked</title><style>{_STYLE}</style></head><body>"
        f'<h1>tzsp-ips</h1><p class="muted">{_e(when(now))} · up {ago(now - snap.started)} · {totals}'
        f" · refreshes every {int(refresh)} s</p>{state}{guard}"
        f"<h2>Blocked now ({len(snap.blocks)})</h2>{blocks}"
        f"<h2>Routers</h2>{routers}"
        f"<h2>Alerts and blocks</h2>{chart}"
        f"<h2>Last decisions</h2>{decisions}"
        f"<h2>Alert sources</h2>{sources}"
        f"{tzspd}"
        "</body></html>"
    )
