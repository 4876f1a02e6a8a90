"""How long the bytes of one email take: nurture's fast path against the standard library.

Usage: ``python benchmarks/mime_build.py [-n N] [--template lead/guide]``

Builds the same multipart/alternative message (a realistic 3 KB French HTML
part and its text part, non-ASCII subject and display names) three ways:
`nurture.transports.mime.build_message`, `email.message.EmailMessage` +
`as_bytes()` (policy.default) and compat32 `MIMEMultipart` + `as_bytes()`.
Then the per-stage breakdown of the send path with the capture transport:
render (Jinja + MRML, from the project's templates when they render),
build, capture send, and the emails/s that makes for one process.
Numbers are for one machine; compare runs, not absolutes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path

from nurture.transports import CaptureTransport, build_message
from nurture.transports.message import OutgoingEmail

FROM = "Équipe Exemple <bonjour@example.com>"
TO = "Anne Martin <anne.martin@example.com>"
SUBJECT = "Votre grille de scoring en 30 minutes, Anne"

PARAGRAPH = (
    '<tr><td align="left" style="font-size:0px;padding:8px 24px;word-break:break-word;">'
    "<div style=\"font-family:'Helvetica Neue',Helvetica,Arial,sans-serif;font-size:16px;"
    'line-height:1.6;text-align:left;color:#1f2933;">Après la priorisation, l’étape suivante '
    "consiste à écrire noir sur blanc ce qui fait un « bon » lead pour vous. "
    '<a href="https://exemple.fr/guide?utm_source=nurture&amp;utm_medium=email">Le guide</a>'
    "</div></td></tr>\n"
)


def sample_html(size: int = 3000) -> str:
    head = '<!doctype html><html lang="fr"><body style="background-color:#f3f5f7;">\n<table>\n'
    body = head
    while len(body.encode()) < size - 40:
        body += PARAGRAPH
    return body + "</table></body></html>\n"


def sample_text() -> str:
    return (
        "Bonjour Anne,\n\nAprès la priorisation, l’étape suivante consiste à écrire noir sur "
        "blanc ce qui fait un « bon » lead pour vous.\n\nLe guide : https://exemple.fr/guide\n\n"
        "—\nExemple SAS · 12 rue des Lilas · 69003 Lyon\n"
        "Se désabonner : https://exemple.fr/u/abc\n"
    )


def stdlib_email_message(email: OutgoingEmail) -> bytes:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = email.from_address
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="example.com")
    message["X-Nurture-Send-Id"] = email.send_id
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message.as_bytes()


def stdlib_compat32(email: OutgoingEmail) -> bytes:
    message = MIMEMultipart("alternative")
    message["From"] = formataddr(("Équipe Exemple", "bonjour@example.com"), "utf-8")
    message["To"] = formataddr(("Anne Martin", "anne.martin@example.com"), "utf-8")
    message["Subject"] = email.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="example.com")
    message["X-Nurture-Send-Id"] = email.send_id
    message.attach(MIMEText(email.text, "plain", "utf-8"))
    message.attach(MIMEText(email.html, "html", "utf-8"))
    return message.as_bytes()


def per_call(function: Callable[[], object], count: int, repeats: int = 5) -> float:
    """Seconds per call: the median of `repeats` runs of `count` calls."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(count):
            function()
        runs.append((time.perf_counter() - started) / count)
    return statistics.median(runs)


def render_stage(template: str, count: int) -> tuple[float, str, str] | str:
    """(seconds per render, html, text) with the project's templates, or why not."""
    try:
        from nurture.rendering import TemplateLibrary, sample_context

        library = TemplateLibrary(Path("templates"), auto_reload=False)
        context = sample_context()
        rendered = library.render(template, context)
        seconds = per_call(lambda: library.render(template, context), max(count // 10, 20))
        return seconds, rendered.html, rendered.text
    except Exception as exc:  # a benchmark reports, it does not stop
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


def report(label: str, seconds: float, baseline: float | None = None) -> None:
    versus = f"  ({seconds / baseline:5.1f}× the fast path)" if baseline else ""
    print(f"  {label:<34} {seconds * 1e3:8.4f} ms{versus}")


def compare(title: str, email: OutgoingEmail, count: int) -> float:
    print(f"{title}: HTML {len(email.html.encode()):,} B, text {len(email.text.encode()):,} B")
    fast = per_call(lambda: build_message(email), count)
    report("nurture fast path", fast)
    report(
        "EmailMessage + as_bytes()",
        per_call(lambda: stdlib_email_message(email), count // 10),
        fast,
    )
    report("compat32 MIMEMultipart", per_call(lambda: stdlib_compat32(email), count // 10), fast)
    return fast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5000, help="messages per timing run")
    parser.add_argument("--template", default="lead/guide", help="template for the render stage")
    args = parser.parse_args()

    email = OutgoingEmail("1234", FROM, TO, SUBJECT, sample_html(), sample_text())
    compare("MIME build, 3 KB HTML", email, args.n)

    print("\nSend path with the capture transport, per message:")
    rendered = render_stage(args.template, args.n)
    if isinstance(rendered, str):
        print(f"  render ({args.template}): skipped, {rendered}")
        render_seconds = 0.0
    else:
        render_seconds, html, text = rendered
        email = OutgoingEmail("1234", FROM, TO, SUBJECT, html, text)
        print(f"  (rendered {args.template}: HTML {len(html.encode()):,} B)")
        report(f"render {args.template} (Jinja + MRML)", render_seconds)
    build = per_call(lambda: build_message(email), args.n)
    report("build message bytes", build)
    capture = CaptureTransport()

    def send() -> None:
        capture.send(email)
        capture.clear()

    send_seconds = per_call(send, args.n)
    report("capture send (build + deliver)", send_seconds)
    total = render_seconds + send_seconds
    report("whole path", total)
    print(f"  ⇒ {1 / total:,.0f} emails/s in one process (target ≥ 1,000)")


if __name__ == "__main__":
    main()
