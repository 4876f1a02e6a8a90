"""`nurture preview`: one page showing an email as its recipient gets it.

The inbox line (subject and preheader), the HTML part in a desktop and a
mobile-width frame, and the text part. The HTML goes in an `<iframe srcdoc>`
so its styles cannot leak into the page, and the frame is sandboxed: no
script in a template (or in contact data) runs in the viewer's browser.
"""

from __future__ import annotations

from html import escape

from nurture.rendering.library import RenderedEmail

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Preview: {subject}</title>
<style>
body {{ margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  background: #eef0f3; color: #1f2933; }}
header {{ background: #fff; border-bottom: 1px solid #d9dde3; padding: 16px 24px; }}
header dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }}
header dt {{ color: #6b7280; }} header dd {{ margin: 0; }}
.inbox {{ margin-top: 12px; padding: 10px 14px; border: 1px solid #d9dde3; border-radius: 6px;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }}
.inbox .preheader {{ color: #6b7280; }}
main {{ display: flex; flex-wrap: wrap; gap: 24px; padding: 24px; align-items: flex-start; }}
figure {{ margin: 0; }} figcaption {{ color: #6b7280; margin-bottom: 6px; }}
iframe {{ border: 1px solid #d9dde3; background: #fff; height: 80vh; resize: vertical; }}
.desktop iframe {{ width: 680px; }} .mobile iframe {{ width: 375px; }}
pre {{ background: #fff; border: 1px solid #d9dde3; padding: 16px; max-width: 680px;
  white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }}
</style>
</head>
<body>
<header>
<dl>
<dt>Template</dt><dd>{template}</dd>
<dt>Subject</dt><dd class="subject">{subject}</dd>
<dt>Preheader</dt><dd class="preheader">{preheader}</dd>
</dl>
<div class="inbox"><strong>{subject}</strong> <span class="preheader">— {preheader}</span></div>
</header>
<main>
<figure class="desktop"><figcaption>HTML</figcaption>
<iframe title="HTML part" sandbox="allow-popups allow-popups-to-escape-sandbox"
 srcdoc="{html}"></iframe></figure>
<figure class="mobile"><figcaption>HTML, 375&nbsp;px wide</figcaption>
<iframe title="HTML part, mobile width" sandbox="allow-popups allow-popups-to-escape-sandbox"
 srcdoc="{html}"></iframe></figure>
<figure class="text"><figcaption>Text part</figcaption><pre>{text}</pre></figure>
</main>
</body>
</html>
"""


def preview_page(email: RenderedEmail) -> str:
    """A standalone HTML page showing `email` as the recipient sees it."""
    return _PAGE.format(
        template=escape(email.template),
        subject=escape(email.subject),
        preheader=escape(email.preheader),
        html=escape(email.html, quote=True),
        text=escape(email.text),
    )
