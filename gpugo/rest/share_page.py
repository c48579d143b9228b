"""The page a browser gets for a share link: what it is and how to use it, using nothing.

``GET /s/{code}`` answers JSON and counts a use (the spec; the ``ggo`` CLI sends no
``Accept`` header at all). A request that prefers ``text/html`` to JSON (a browser, a
chat app unfurling the link) gets this page instead, and no use is counted: the link
still works for the ``ggo use`` it explains. Every value is HTML-escaped; the page
loads nothing (its one style sheet is inline, allowed by its hash in the CSP).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from datetime import datetime
from html import escape

from gpugo.services.shares import SharePreview
from gpugo.timefmt import iso

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}"
    "main{max-width:40rem;margin:2rem auto;padding:1.5rem;background:#fff;"
    "border:1px solid #dde1e7;border-radius:8px}"
    "h1{font-size:1.35rem;margin:0 0 .75rem}dl{display:grid;grid-template-columns:auto 1fr;"
    "gap:.25rem 1rem}dt{color:#5b6475}dd{margin:0}"
    "pre{background:#1d2330;color:#f6f7f9;padding:.75rem;border-radius:6px;overflow-x:auto;"
    "white-space:pre-wrap;word-break:break-all}"
    ".warn{background:#fff4e5;border:1px solid #f0b35b;padding:.5rem .75rem;border-radius:6px}"
    ".gone{background:#fdecec;border:1px solid #e08a8a;padding:.5rem .75rem;border-radius:6px}"
    "@media (max-width:30rem){main{margin:0;border:0;border-radius:0}}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-security-policy", CSP.encode()),
    (b"x-robots-tag", b"noindex, nofollow"),
    # The answer depends on Accept (share answers are no-store anyway).
    (b"vary", b"accept"),
]


def _quality(accept: str, media_type: str) -> float:
    """The q-value ``accept`` gives ``media_type``: its most specific matching range."""
    kind = media_type.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(value.strip())))
                except ValueError:
                    q = 0.0
        if media == media_type:
            specificity = 2
        elif media == f"{kind}/*":
            specificity = 1
        elif media == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, q)
    return best[1]


# Clients send a handful of distinct Accept headers (a browser's, */*): each is ranked once.
@functools.lru_cache(maxsize=256)
def prefers_html(accept: str | None) -> bool:
    """Whether a request's Accept header ranks HTML above JSON (a tie, or none: JSON)."""
    if not accept:
        return False
    html_q = _quality(accept, "text/html")
    return html_q > 0 and html_q > _quality(accept, "application/json")


def _when(value: datetime | None) -> str:
    if value is None:
        return "Never"
    return escape(value.strftime("%Y-%m-%d %H:%M UTC"))


def _page(title: str, body: str) -> bytes:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        "<meta name=robots content=noindex>"
        f"<title>{escape(title)} · GPU Go</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    ).encode()


def share_page(preview: SharePreview, *, server_url: str) -> bytes:
    """The page of a link that exists (live, or used up / expired: then it says so)."""
    link = escape(preview.short_link)
    vendor = escape(preview.hardware_vendor)
    uses = "Unlimited" if preview.uses_left is None else str(preview.uses_left)
    notes = []
    if preview.gone is not None:
        notes.append(f"<p class=gone role=alert id=share-gone>{escape(preview.gone)}</p>")
    elif preview.machine_status != "online":
        notes.append(
            "<p class=warn id=share-offline>The GPU machine behind this link is "
            f"{escape(preview.machine_status)} right now: connecting will fail until it is "
            "back.</p>"
        )
    endpoint = escape(server_url)
    body = (
        "<h1>A shared remote GPU</h1>"
        "<p>This GPU Go link lets you use a GPU on someone else's machine from your own, "
        "as if it were local.</p>" + "".join(notes) + "<dl>"
        f"<dt>GPU vendor</dt><dd id=share-vendor>{vendor}</dd>"
        f"<dt>Expires</dt><dd id=share-expires>"
        f"<time datetime={escape(iso(preview.expires_at) or '')}>"
        f"{_when(preview.expires_at)}</time></dd>"
        f"<dt>Uses left</dt><dd id=share-uses-left>{escape(uses)}</dd>"
        "</dl>"
        "<h2>How to use it</h2>"
        "<p>With the <code>ggo</code> command line tool installed, run:</p>"
        f'<pre id=share-command>GPU_GO_ENDPOINT="{endpoint}" ggo use {link}</pre>'
        "<p>or, to activate it in the current shell:</p>"
        f'<pre>eval "$(GPU_GO_ENDPOINT="{endpoint}" ggo use {link} -y)"</pre>'
        "<p>Each <code>ggo use</code> counts one use of the link. Opening this page "
        "does not.</p>"
    )
    return _page("Shared GPU", body)


def missing_page(message: str) -> bytes:
    """The page of a code that is no link (404)."""
    body = (
        "<h1>No such share link</h1>"
        f"<p class=gone role=alert>{escape(message)}</p>"
        "<p>Check the link you received, or ask whoever sent it for a new one.</p>"
    )
    return _page("No such share link", body)
