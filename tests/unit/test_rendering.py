"""Email templates as marketers write them and as recipients receive them."""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nurture.contacts.view import ContactView, sample_contact
from nurture.errors import TemplateError
from nurture.rendering import (
    SAMPLE_UNSUBSCRIBE_URL,
    SAMPLE_VIEW_IN_BROWSER_URL,
    RenderedEmail,
    TemplateLibrary,
    add_open_pixel,
    email_context,
    html_to_text,
    preview_page,
    sample_context,
)

FIXTURES = Path(__file__).parent / "fixtures" / "templates"
UNSUBSCRIBE = "https://app.example.com/u/tok123"
BROWSER = "https://app.example.com/v/tok123"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A writable copy of the fixture templates (tests add broken ones)."""
    target = tmp_path / "templates"
    shutil.copytree(FIXTURES, target)
    return target


@pytest.fixture
def library(root: Path) -> TemplateLibrary:
    return TemplateLibrary(root)


def contact(**fields: Any) -> ContactView:
    base = {
        "id": 7,
        "email": "anne@example.com",
        "first_name": "Anne",
        "company": "Acme",
        "tags": ["webinar"],
    }
    return ContactView({**base, **fields}, declared=["industry"])


def context(**fields: Any) -> dict[str, Any]:
    return email_context(
        contact(**fields),
        unsubscribe_url=UNSUBSCRIBE,
        view_in_browser_url=BROWSER,
        now=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
    )


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def email_source(body: str, *, front: str = 'subject: "Bonjour"') -> str:
    """An email extending the fixture layout; `body` starts on line 6."""
    return (
        f"---\n{front}\n---\n"
        '{% extends "_layouts/base.mjml" %}\n{% block content %}\n'
        f"{body}\n{{% endblock %}}\n"
    )


def failure(
    library: TemplateLibrary, name: str, ctx: dict[str, Any] | None = None
) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        library.render(name, ctx or context())
    return caught.value


# -- naming ---------------------------------------------------------------------


def test_names_lists_email_templates_sorted_without_layouts_or_partials(
    library: TemplateLibrary,
) -> None:
    assert library.names() == ["lead/guide", "lead/welcome", "newsletter"]


def test_exists_and_path_of(library: TemplateLibrary, root: Path) -> None:
    assert library.exists("lead/welcome")
    assert library.exists("lead/welcome.mjml")
    assert not library.exists("lead/nope")
    assert not library.exists("_layouts/base")
    assert not library.exists("../secrets")
    assert library.path_of("lead/welcome") == root / "lead" / "welcome.mjml"


def test_unknown_template_is_reported_with_a_suggestion(library: TemplateLibrary) -> None:
    error = failure(library, "lead/welcom")
    assert error.problem.file == "templates/lead/welcom.mjml"
    assert "did you mean 'lead/welcome'?" in error.problem.message


def test_a_layout_is_not_an_email(library: TemplateLibrary) -> None:
    assert "not an email" in failure(library, "_layouts/base").problem.message


# -- rendering ------------------------------------------------------------------


def test_render_gives_subject_preheader_html_and_text(library: TemplateLibrary) -> None:
    email = library.render("lead/welcome", context())
    assert email == RenderedEmail(
        "lead/welcome",
        "Bienvenue Anne, une ressource pour Acme",
        "Un guide de 3 minutes",
        email.html,
        email.text,
    )
    assert email.html.startswith("<!doctype html>")
    assert "Bonjour Anne," in email.html
    assert "Un guide de 3 minutes" in email.html  # <mj-preview>{{ preheader }}</mj-preview>
    assert "<title>Bienvenue Anne, une ressource pour Acme</title>" in email.html


def test_contact_data_is_escaped_in_the_body_but_raw_in_the_subject(
    library: TemplateLibrary,
) -> None:
    email = library.render("lead/welcome", context(company="<script>alert(1)</script> & Fils"))
    assert "<script>alert(1)</script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Fils" in email.html
    assert email.subject == "Bienvenue Anne, une ressource pour <script>alert(1)</script> & Fils"
    assert "Chez <script>alert(1)</script> & Fils, vous cherchez" in email.text


def test_a_header_cannot_be_split_by_contact_data(library: TemplateLibrary) -> None:
    email = library.render("lead/welcome", context(first_name="Anne\r\nBcc: victim@example.com"))
    assert "\n" not in email.subject and "\r" not in email.subject
    assert email.subject.startswith("Bienvenue Anne Bcc: victim@example.com,")


def test_a_declared_but_empty_property_renders_empty(library: TemplateLibrary, root: Path) -> None:
    write(root, "sector.mjml", email_source("<mj-text>Secteur: [{{ contact.industry }}]</mj-text>"))
    email = library.render("sector", context())
    assert "Secteur: []" in email.html
    assert "None" not in email.text


def test_front_matter_preheader_is_injected_when_the_mjml_has_no_preview(
    library: TemplateLibrary, root: Path
) -> None:
    write(
        root,
        "bare.mjml",
        """
        ---
        subject: Bare
        preheader: "Pour {{ contact.company }} : trois minutes"
        ---
        <mjml><mj-body><mj-section><mj-column>
        <mj-text>Corps</mj-text>
        </mj-column></mj-section></mj-body></mjml>
        """,
    )
    email = library.render("bare", context(company="Durand & Fils"))
    assert email.preheader == "Pour Durand & Fils : trois minutes"
    assert "Pour Durand &amp; Fils : trois minutes</div>" in email.html
    assert "trois minutes" not in email.text  # hidden preview text is not body text


def test_subject_preheader_and_now_are_available_to_the_body(
    library: TemplateLibrary, root: Path
) -> None:
    write(root, "meta.mjml", email_source("<mj-text>{{ subject }} / {{ now.year }}</mj-text>"))
    assert "Bonjour / 2026" in library.render("meta", context()).text


# -- text part ------------------------------------------------------------------


def test_text_twin_replaces_the_derived_text(library: TemplateLibrary) -> None:
    email = library.render("lead/guide", context())
    assert email.text == (
        "Bonjour Anne,\n\nVoici le guide : https://www.example.com/guide.pdf\n\n"
        f"Se désabonner : {UNSUBSCRIBE}\n"
    )


def test_derived_text_is_readable_with_links_as_text_and_url(library: TemplateLibrary) -> None:
    text = library.render("lead/welcome", context()).text
    assert "Réservez 20 minutes (https://www.example.com/demo) avec un expert." in text
    assert (
        "Télécharger le guide (https://www.example.com/guides/delais?utm_source=nurture"
        "&utm_medium=email)" in text
    )
    assert f"Se désabonner ({UNSUBSCRIBE})" in text
    assert "Nous écrire (contact@example.com)" in text
    assert "Exemple SaaS (https://www.example.com/)" in text  # image link: its alt text
    assert "Bonne lecture,\nClaire Dubois" in text
    assert "- les 5 indicateurs à suivre ;\n- un modèle de tableau de bord." in text
    assert "arrivées : relances" in text  # &nbsp; decoded
    for noise in ("{", "mso", "<", "&nbsp;", "Un guide de 3 minutes", "  ", "\n\n\n"):
        assert noise not in text


def test_html_to_text_handles_lists_breaks_entities_and_hidden_content() -> None:
    html = (
        "<html><head><style>p{color:red}</style><title>T</title></head><body>"
        "<div style='display: none'>hidden <div>nested</div></div><img style='display:none' src=x>"
        "<h1>Titre &amp; sous-titre</h1><p>Ligne 1<br/>Ligne 2</p>"
        "<ol><li>un</li><li>deux</li></ol><!--[if mso]><p>outlook</p><![endif]-->"
        "<table><tr><td>Contact</td><td><b>Anne</b></td></tr><tr><td>Score</td><td>35</td></tr>"
        "</table>"
        "<p><a href='https://x.example/a?b=1&amp;c=2'>https://x.example/a?b=1&amp;c=2</a> "
        "<a href='#top'>haut</a> <a href='tel:+33123'>Appeler</a></p><hr><p>fin</p></body></html>"
    )
    assert html_to_text(html) == (
        "Titre & sous-titre\n\nLigne 1\nLigne 2\n\n1. un\n2. deux\n\n"
        "Contact | Anne\nScore | 35\n\n"
        "https://x.example/a?b=1&c=2 haut Appeler (+33123)\n\n----\n\nfin\n"
    )


def test_text_part_of_spacers_and_carousels_reads_as_the_email_does() -> None:
    """A spacer leaves no paragraph of a lone hair space; carousel images do not run together."""
    from nurture.rendering.markup import to_html

    html = to_html(
        "<mjml><mj-body><mj-section><mj-column>"
        "<mj-text>Bonjour</mj-text><mj-spacer height='20px' /><mj-text>Suite</mj-text>"
        "<mj-carousel>"
        "<mj-carousel-image src='https://example.com/a.jpg' alt='Atelier' "
        "href='https://example.com/a' />"
        "<mj-carousel-image src='https://example.com/b.jpg' alt='Bureau' "
        "href='https://example.com/b' />"
        "<mj-carousel-image src='https://example.com/c.jpg' alt='Entrepôt' />"
        "</mj-carousel>"
        "</mj-column></mj-section></mj-body></mjml>"
    )
    assert html_to_text(html) == (
        "Bonjour\n\nSuite\n\nAtelier (https://example.com/a)\n\nBureau (https://example.com/b)\n"
    )


#: The block-run pattern as first written (lazy `.*?`): the reference for the faster one.
_LAZY_BLOCK_TAG = (
    r"(?:<!--.*?-->|<style\b.*?</style\s*>|<script\b.*?</script\s*>|<title\b.*?</title\s*>"
    r"|<head\b.*?</head\s*>|<template\b.*?</template\s*>|<noscript\b.*?</noscript\s*>"
    r"|</?(?:table|tbody|thead|tfoot|tr|td|th|div|p|h[1-6]|ul|ol|blockquote"
    r"|section|article|header|footer|center|pre|d[ltd]|figure|figcaption|caption)\b[^>]*>)"
)
_LAZY_BLOCK_RUN = re.compile(f"{_LAZY_BLOCK_TAG}(?:\\s*{_LAZY_BLOCK_TAG})*", re.S | re.I)
_markup = st.sampled_from(
    ["<!--", "-->", "-", "--", "->", "<", ">", "/", " ", "\n", "x", "<p>", "</P>", "<td>",
     "<tr >", "<thead>", "<th>", "<header>", "<head>", "</head>", "<STYLE>", "</style >",
     "</styles>", "<title>", "</title>", "<script>", "</script>", "<noscript>", "</noscript>",
     "<template>", "</template>", "<h1>", "<div a='1'>", "</div>", "<b>", "<![endif]-->",
     "<!--[if mso]>"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_markup, max_size=40).map("".join))
def test_block_runs_match_exactly_what_the_lazy_patterns_matched(document: str) -> None:
    from nurture.rendering.text import _BLOCK_RUN

    found = [m.span() for m in _BLOCK_RUN.finditer(document)]
    assert found == [m.span() for m in _LAZY_BLOCK_RUN.finditer(document)]


# -- links ----------------------------------------------------------------------


def test_rewrite_link_tracks_links_but_not_mailto_nor_unsubscribe(
    library: TemplateLibrary,
) -> None:
    seen: list[str] = []

    def track(url: str) -> str:
        seen.append(url)
        return f"https://t.example/c/{len(seen)}?x=1&y=2"

    email = library.render("lead/welcome", context(), rewrite_link=track)
    assert seen == [
        "https://www.example.com/",
        "https://www.example.com/guides/delais?utm_source=nurture&utm_medium=email",
        "https://www.example.com/demo",
        BROWSER,
    ]
    assert 'href="https://t.example/c/3?x=1&amp;y=2"' in email.html
    assert f'href="{UNSUBSCRIBE}"' in email.html
    assert 'href="mailto:contact@example.com"' in email.html
    assert "https://www.example.com/demo" not in email.html
    assert "Réservez 20 minutes (https://www.example.com/demo)" in email.text  # text keeps it


def test_open_pixel_goes_at_the_end_of_the_body(library: TemplateLibrary) -> None:
    html = add_open_pixel(
        library.render("newsletter", context()).html, "https://t.example/o/a&b.gif"
    )
    assert html.endswith(
        '<img src="https://t.example/o/a&amp;b.gif" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0;" /></body></html>'
    )


# -- errors: where and what -----------------------------------------------------


def test_missing_variable_reports_file_line_and_name(library: TemplateLibrary, root: Path) -> None:
    write(
        root,
        "lead/bad.mjml",
        email_source("<mj-text>ok</mj-text>\n<mj-text>{{ prenom }}</mj-text>"),
    )
    problem = failure(library, "lead/bad").problem
    assert (problem.file, problem.line) == ("templates/lead/bad.mjml", 7)
    assert "'prenom' is undefined" in problem.message
    assert str(problem).startswith("templates/lead/bad.mjml:7: ")


def test_unknown_contact_attribute_fails_with_a_suggestion(
    library: TemplateLibrary, root: Path
) -> None:
    write(root, "typo.mjml", email_source("<mj-text>{{ contact.frist_name }}</mj-text>"))
    problem = failure(library, "typo").problem
    assert (problem.file, problem.line) == ("templates/typo.mjml", 6)
    assert problem.message == "'contact' has no attribute 'frist_name' (did you mean 'first_name'?)"


def test_undeclared_property_fails_even_in_a_condition(
    library: TemplateLibrary, root: Path
) -> None:
    write(root, "cond.mjml", email_source("{% if contact.budget %}<mj-text>x</mj-text>{% endif %}"))
    assert "'contact' has no attribute 'budget'" in failure(library, "cond").problem.message


@pytest.mark.parametrize(
    "expression",
    [
        "contact.__class__.__mro__",
        "''.__class__",
        "cycler.__init__.__globals__",
        "contact._fields",
        "contact.tags.append('x')",
        "'a' * 100000000",
        "9 ** 9999999",
        "range.__globals__",
        "contact['__class__']",
        "contact['__reduce_ex__'](2)",
        "contact['__setattr__']('_fields', 1)",
        "[contact]|map(attribute='__class__')|list",
        "[contact]|map(attribute='_fields')|first",
        "contact|attr('__class__')",
    ],
)
def test_sandbox_escapes_fail_as_template_errors(
    library: TemplateLibrary, root: Path, expression: str
) -> None:
    write(root, "evil.mjml", email_source(f"<mj-text>{{{{ {expression} }}}}</mj-text>"))
    problem = failure(library, "evil").problem
    assert (problem.file, problem.line) == ("templates/evil.mjml", 6)
    assert problem.message.startswith("not allowed in a template: ")


def test_runtime_faults_in_templates_are_template_errors(
    library: TemplateLibrary, root: Path
) -> None:
    write(root, "div.mjml", email_source("<mj-text>{{ contact.id / 0 }}</mj-text>"))
    problem = failure(library, "div").problem
    assert (problem.line, problem.message) == (6, "ZeroDivisionError: division by zero")


def test_syntax_error_reports_line_in_the_file(library: TemplateLibrary, root: Path) -> None:
    write(root, "syntax.mjml", email_source("<mj-text>\n{% if x %}\n</mj-text>"))
    problem = failure(library, "syntax").problem
    assert problem.file == "templates/syntax.mjml"
    assert problem.line == 9  # the {% endblock %} that closes nothing
    assert problem.message.startswith("template syntax error: ")


def test_error_inside_the_layout_reports_the_layout(library: TemplateLibrary, root: Path) -> None:
    layout = (FIXTURES / "_layouts" / "base.mjml").read_text(encoding="utf-8")
    write(root, "_layouts/broken.mjml", layout.replace("<mj-body", "{{ logo_url }}<mj-body"))
    write(root, "uses.mjml", email_source("<mj-text>x</mj-text>").replace("base", "broken"))
    problem = failure(library, "uses").problem
    assert (problem.file, problem.line) == ("templates/_layouts/broken.mjml", 10)
    assert "'logo_url' is undefined" in problem.message


def test_error_inside_an_included_partial_reports_the_partial(
    library: TemplateLibrary, root: Path
) -> None:
    write(root, "_partials/sig.mjml", "<mj-text>\n{{ signature }}\n</mj-text>\n")
    write(root, "signed.mjml", email_source('{% include "_partials/sig.mjml" %}'))
    problem = failure(library, "signed").problem
    assert (problem.file, problem.line) == ("templates/_partials/sig.mjml", 2)


def test_syntax_error_in_the_layout_reports_the_layout(
    library: TemplateLibrary, root: Path
) -> None:
    write(root, "_layouts/bad.mjml", "<mjml>\n<mj-body>\n{% block content %}\n</mj-body>\n")
    write(root, "child.mjml", email_source("<mj-text>x</mj-text>").replace("base", "bad"))
    problem = failure(library, "child").problem
    assert (problem.file, problem.line) == ("templates/_layouts/bad.mjml", 4)
    assert problem.message.startswith("template syntax error: ")


def test_a_file_that_is_not_utf8_is_reported_with_its_line(
    library: TemplateLibrary, root: Path
) -> None:
    (root / "latin1.mjml").write_bytes(
        email_source("<mj-text>Caf\u00e9</mj-text>").encode("latin-1")
    )
    problem = failure(library, "latin1").problem
    assert (problem.file, problem.line) == ("templates/latin1.mjml", 6)
    assert "not UTF-8" in problem.message


def test_missing_partial_is_reported_where_it_is_included(
    library: TemplateLibrary, root: Path
) -> None:
    write(
        root, "inc.mjml", email_source('<mj-text>x</mj-text>\n{% include "_partials/foter.mjml" %}')
    )
    problem = failure(library, "inc").problem
    assert (problem.file, problem.line) == ("templates/inc.mjml", 7)
    assert "did you mean '_partials/footer.mjml'?" in problem.message


# -- errors: front matter -------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("<mjml></mjml>\n", 1, "must start with front matter"),
        ("---\nsubject: x\n<mjml></mjml>\n", 1, "never closed"),
        ("---\npreheader: x\n---\n<mjml></mjml>\n", 1, "front matter has no 'subject'"),
        ("---\nsubject: \n---\n<mjml></mjml>\n", 2, "'subject' is empty"),
        (
            "---\nsubject: x\nsubjet: y\n---\n",
            3,
            "unknown front-matter key 'subjet' (did you mean 'subject'?)",
        ),
        ("---\nsubject: x\npreheader: [a, b]\n---\n", 3, "'preheader' must be text"),
        ('---\nsubject: x\npreheader: "open\n---\n', 3, "not valid YAML"),
        ("---\nsubject: x\nsubject: y\n---\n", 3, "set twice"),
        (
            '---\npreheader: ok\nsubject: "{{ contact.first_name "\n---\n',
            3,
            "template syntax error",
        ),
    ],
)
def test_bad_front_matter_is_reported_with_its_line(
    library: TemplateLibrary, root: Path, source: str, line: int, message: str
) -> None:
    write(root, "fm.mjml", source)
    problem = failure(library, "fm").problem
    assert (problem.file, problem.line) == ("templates/fm.mjml", line)
    assert message in problem.message


def test_undefined_name_in_preheader_reports_its_line(library: TemplateLibrary, root: Path) -> None:
    write(
        root,
        "pre.mjml",
        email_source("<mj-text>x</mj-text>", front="subject: a\npreheader: '{{ offre }}'"),
    )
    problem = failure(library, "pre").problem
    assert (problem.file, problem.line) == ("templates/pre.mjml", 3)
    assert "'offre' is undefined" in problem.message


def test_yes_in_front_matter_stays_text(library: TemplateLibrary, root: Path) -> None:
    write(
        root,
        "yes.mjml",
        email_source("<mj-text>x</mj-text>", front="subject: Yes\npreheader: 2026"),
    )
    email = library.render("yes", context())
    assert (email.subject, email.preheader) == ("Yes", "2026")


# -- errors: MJML ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("<mj-text>ok</mj-text>\n<mj-text>never closed\n<mj-text>x</mj-text>", 7, "<mj-text>"),
        ("<mj-text>\n<p>unclosed paragraph\n</mj-text>", 7, "<p> is not closed"),
        ("<mj-text>Bonjour<BR>toi</mj-text>", 6, "<BR>"),
        ("<mj-text>moins de\n< 5 min</mj-text>", 7, "&lt;"),
    ],
)
def test_mjml_errors_are_reported_with_file_and_line(
    library: TemplateLibrary, root: Path, body: str, line: int, message: str
) -> None:
    write(root, "mj.mjml", email_source(body))
    problem = failure(library, "mj").problem
    assert (problem.file, problem.line) == ("templates/mj.mjml", line)
    assert problem.message.startswith("MJML error: ")
    assert message in problem.message


def test_mj_include_is_refused(library: TemplateLibrary, root: Path) -> None:
    write(root, "mjinc.mjml", email_source('<mj-include path="/etc/passwd" />'))
    assert "mj-include is not supported" in failure(library, "mjinc").problem.message


# -- compile cache --------------------------------------------------------------


def test_templates_compile_once_and_recompile_when_edited(
    library: TemplateLibrary, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[str | None] = []
    original = library.environment.compile

    def counting(source: Any, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        compiled.append(name)
        return original(source, name, *args, **kwargs)

    monkeypatch.setattr(library.environment, "compile", counting)
    library.render("lead/welcome", context())
    first = len(compiled)
    assert first > 0
    library.render("lead/welcome", context(first_name="Bruno"))
    assert len(compiled) == first

    path = root / "lead" / "welcome.mjml"
    path.write_text(path.read_text(encoding="utf-8").replace("Bonjour", "Salut"), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert "Salut Anne," in library.render("lead/welcome", context()).html
    assert len(compiled) > first


def test_editing_the_layout_or_adding_a_twin_takes_effect(
    library: TemplateLibrary, root: Path
) -> None:
    library.render("newsletter", context())
    footer = root / "_partials" / "footer.mjml"
    footer.write_text(footer.read_text(encoding="utf-8").replace("12 rue", "99 avenue"), "utf-8")
    stat = footer.stat()
    os.utime(footer, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert "99 avenue" in library.render("newsletter", context()).text
    write(root, "newsletter.txt", "Version texte pour {{ contact.first_name }}")
    assert library.render("newsletter", context()).text == "Version texte pour Anne\n"


def _touch_replace(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_a_worker_library_sees_edits_to_an_email_and_its_layout_after_recheck_after(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deliverer's library stats its files once a second, not for every email."""
    moment = [1000.0]
    monkeypatch.setattr("time.monotonic", lambda: moment[0])
    worker = TemplateLibrary(root, recheck_after=1.0)
    assert "12 rue" in worker.render("newsletter", context()).text
    _touch_replace(root / "_partials" / "footer.mjml", "12 rue", "99 avenue")
    _touch_replace(root / "newsletter.mjml", "<mjml", '<mjml lang="fr"')
    moment[0] += 0.5
    stale = worker.render("newsletter", context())
    assert "12 rue" in stale.text and 'lang="fr"' not in stale.html
    # `check` reads the sources itself, a stat that Jinja's own check then skips:
    # the email found changed must still be compiled again, not kept as it was.
    worker.check("newsletter", sample_context())
    moment[0] += 0.6
    assert 'lang="fr"' in worker.render("newsletter", context()).html
    moment[0] += 1.0
    fresh = worker.render("newsletter", context())
    assert "99 avenue" in fresh.text and 'lang="fr"' in fresh.html


# -- check ----------------------------------------------------------------------


def test_the_fixture_project_checks_clean(library: TemplateLibrary) -> None:
    assert library.check_all(sample_context(properties={"industry": "string"})) == []


def test_check_all_lists_every_broken_template(library: TemplateLibrary, root: Path) -> None:
    write(root, "a.mjml", email_source("<mj-text>{{ prenom }}</mj-text>"))
    write(root, "b/c.mjml", "---\nsubjet: x\n---\n<mjml></mjml>\n")
    write(root, "d.mjml", email_source("<mj-text>{{ ''.__class__ }}</mj-text>"))
    write(root, "_partials/broken.mjml", "{% if %}")
    write(root, "e.mjml", email_source("<mj-text>{{ contact['__class__'] }}</mj-text>"))
    problems = library.check_all(sample_context())
    assert any(
        (p.file, p.line) == ("templates/e.mjml", 6) and "'__class__' is not allowed" in p.message
        for p in problems
    )
    assert {(p.file, p.line) for p in problems} >= {
        ("templates/a.mjml", 6),
        ("templates/b/c.mjml", 2),
        ("templates/b/c.mjml", 1),
        ("templates/d.mjml", 6),
        ("templates/_partials/broken.mjml", 1),
    }


def test_check_finds_faults_in_branches_the_sample_contact_skips(
    library: TemplateLibrary, root: Path
) -> None:
    write(
        root,
        "branches.mjml",
        email_source(
            "{% if contact.stage == 'customer' %}\n"
            "<mj-text>{{ contact.industri }} {{ remise }}</mj-text>\n"
            "{% endif %}\n"
            "<mj-sectio><mj-column></mj-column></mj-sectio>"
        ),
    )
    sample = sample_context({"industry": "string"})
    library.render("branches", sample)  # renders: the branch is not taken
    assert [(p.line, p.message) for p in library.check("branches", sample)] == [
        (7, "'contact' has no attribute 'industri' (did you mean 'industry'?)"),
        (7, "'remise' is undefined"),
        (9, "unknown MJML element <mj-sectio> (did you mean <mj-section>?)"),
    ]


def test_check_reports_front_matter_and_body_problems_together(
    library: TemplateLibrary, root: Path
) -> None:
    write(
        root,
        "both.mjml",
        email_source("<mj-text>{{ prenom }}</mj-text>", front="subject: a\nfoo: b"),
    )
    problems = library.check("both", sample_context())
    assert [(p.line, p.message) for p in problems] == [
        (3, "unknown front-matter key 'foo' (known keys: 'subject', 'preheader')"),
        (7, "'prenom' is undefined"),
    ]


def test_check_covers_the_text_twin(library: TemplateLibrary, root: Path) -> None:
    write(
        root,
        "lead/guide.txt",
        "Bonjour {{ contact.frist_name }}\n{% if 0 %}{{ oups }}{% endif %}\n",
    )
    assert [(p.file, p.line, p.message) for p in library.check("lead/guide", sample_context())] == [
        (
            "templates/lead/guide.txt",
            1,
            "'contact' has no attribute 'frist_name' (did you mean 'first_name'?)",
        ),
        ("templates/lead/guide.txt", 2, "'oups' is undefined"),
    ]


def test_check_never_raises_for_an_unknown_template(library: TemplateLibrary) -> None:
    problems = library.check("nope", sample_context())
    assert [p.message for p in problems] == ["no email template 'nope'"]


# -- contexts and preview -------------------------------------------------------


def test_email_context_and_sample_context() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    ctx = email_context(
        sample_contact(), unsubscribe_url="u", view_in_browser_url="v", now=now, step="guide"
    )
    assert set(ctx) == {"contact", "unsubscribe_url", "view_in_browser_url", "now", "step"}
    sample = sample_context({"industry": "string", "favourite_dish": "string"})
    assert sample["contact"].industry == "Industrie"
    # A property nurture cannot guess shows its name: the preview says what goes there.
    assert sample["contact"].favourite_dish == "[favourite_dish]"
    assert sample["unsubscribe_url"] == SAMPLE_UNSUBSCRIBE_URL
    assert sample["view_in_browser_url"] == SAMPLE_VIEW_IN_BROWSER_URL


def test_preview_page_shows_subject_preheader_escaped_body_and_text(
    library: TemplateLibrary,
) -> None:
    email = library.render("lead/welcome", context(company="<b>Acme</b> & Co"))
    page = preview_page(email)
    assert page.startswith("<!doctype html>")
    assert "Bienvenue Anne, une ressource pour &lt;b&gt;Acme&lt;/b&gt; &amp; Co" in page
    assert "Un guide de 3 minutes" in page
    assert 'srcdoc="&lt;!doctype html&gt;' in page
    assert 'sandbox="allow-popups' in page
    assert "<b>Acme</b>" not in page  # neither from the subject nor from the text part
    assert "Réservez 20 minutes (https://www.example.com/demo)" in page
    assert page.count("<iframe") == 2 and page.count("</html>") == 1


# -- robustness -----------------------------------------------------------------


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(st.characters(blacklist_categories=("Cs", "Co")), max_size=40))
def test_any_contact_text_renders_and_reads_back(library: TemplateLibrary, name: str) -> None:
    """One contact's odd data never stops a send, and reads back as typed."""
    email = library.render("lead/welcome", context(first_name=name))
    typed = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", name)  # not valid in HTML
    line = re.sub(r"\s+", " ", f"Bonjour {typed},")  # any Unicode space reads as one
    assert f"\n{line}\n" in email.text
