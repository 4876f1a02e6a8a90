"""Templates written for another sender: what `validate` says about them."""

from __future__ import annotations

from pathlib import Path

import pytest

from nurture.definitions import model as m
from nurture.rendering import TemplateLibrary, sample_context
from nurture.rendering.advice import placeholder_warnings, template_warnings
from nurture.rendering.checks import check_templates

CONFIG = m.ProjectConfig(
    file="nurture.yaml",
    stages=("subscriber", "lead"),
    prospect_stage="lead",
    properties={"referral_code": "string"},
)
LAYOUT = """<mjml><mj-body>
{% block content %}{% endblock %}
<mj-section><mj-column><mj-text><a href="{{ unsubscribe_url }}">Stop</a></mj-text></mj-column></mj-section>
</mj-body></mjml>
"""


def email(body: str, *, layout: bool = True, front: str = 'subject: "Hello"') -> str:
    """An email whose `body` starts on line 4 (line 6 with the layout)."""
    if layout:
        return (
            f"---\n{front}\n---\n"
            '{% extends "_layouts/base.mjml" %}\n{% block content %}\n'
            f"<mj-section><mj-column>{body}</mj-column></mj-section>\n{{% endblock %}}\n"
        )
    return (
        f"---\n{front}\n---\n<mjml><mj-body><mj-section><mj-column>{body}"
        "</mj-column></mj-section></mj-body></mjml>\n"
    )


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    (root / "_layouts").mkdir(parents=True)
    (root / "_layouts" / "base.mjml").write_text(LAYOUT)
    return root


def write(root: Path, name: str, text: str) -> None:
    path = root / f"{name}.mjml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_another_tools_merge_tags_say_what_nurture_writes_instead(templates: Path) -> None:
    write(templates, "mjml/welcome", email("<mj-text>Hi {{FirstName}}, {{ReferalCode}}</mj-text>"))
    write(templates, "lead/own", email("<mj-text>{{ prenom }}</mj-text>"))

    problems = [(p.line, p.message) for p in check_templates(templates, CONFIG)]

    raw = "for braces shown as they are, wrap them in {% raw %}…{% endraw %}"
    assert problems == [
        (6, "'prenom' is undefined"),  # a nurture-style name: no merge-tag talk
        (
            6,
            "'FirstName' is undefined: nurture writes this contact field as "
            f"{{{{ contact.first_name }}}} (another tool's merge tag?); {raw}",
        ),
        (
            6,
            "'ReferalCode' is undefined: another tool's merge tag? nurture reads a contact's "
            "fields, and the properties declared in nurture.yaml, as {{ contact.<name> }} in "
            f"lowercase (such as {{{{ contact.first_name }}}}); {raw}",
        ),
    ]
    # The same words when a send renders it.
    library = TemplateLibrary(templates)
    with pytest.raises(Exception, match=r"contact\.first_name"):
        library.render("mjml/welcome", sample_context())


def test_single_brace_and_other_senders_placeholders_are_warnings(templates: Path) -> None:
    write(
        templates,
        "lead/ported",
        email(
            "<mj-text>Hi {firstname},</mj-text>\n"
            "<mj-text>Code: { referral_code } *|FNAME|* %%LastName%% {{ contact.company }}</mj-text>\n"
            "<mj-text>{% raw %}{literally} {{ this }}{% endraw %} {} {a: 1} ${js}</mj-text>",
            front='subject: "For {Company}"',
        ),
    )
    (templates / "lead" / "ported.txt").write_text("Hi {FirstName}\n")

    warnings = [(p.file, p.line, p.message) for p in placeholder_warnings(templates, CONFIG)]

    def said(tag: str, instead: str) -> str:
        return f"warning: {tag!r} is not a nurture placeholder: it is sent as it is; {instead}"

    mjml, text = "templates/lead/ported.mjml", "templates/lead/ported.txt"
    assert warnings == [
        (mjml, 2, said("{Company}", "write {{ contact.company }}")),
        (mjml, 6, said("{firstname}", "write {{ contact.first_name }}")),
        (mjml, 7, said("{ referral_code }", "write {{ contact.referral_code }}")),
        (mjml, 7, said("*|FNAME|*", "write {{ contact.first_name }}")),
        (mjml, 7, said("%%LastName%%", "write {{ contact.last_name }}")),
        (text, 1, said("{FirstName}", "write {{ contact.first_name }}")),
    ]


def test_an_unknown_placeholder_is_told_to_be_declared(templates: Path) -> None:
    write(templates, "lead/x", email("<mj-text>{ReferalCode}</mj-text>"))
    [warning] = placeholder_warnings(templates, CONFIG)
    assert warning.message.endswith(
        "write {{ contact.referal_code }} after declaring 'referal_code' under properties: "
        "in nurture.yaml"
    )


def test_an_email_without_an_unsubscribe_link_is_a_warning_unless_its_layout_has_one(
    templates: Path,
) -> None:
    write(templates, "lead/layout-link", email("<mj-text>Hi</mj-text>"))
    write(templates, "lead/no-link", email("<mj-text>Hi</mj-text>", layout=False))
    write(
        templates,
        "lead/own-link",
        email('<mj-text><a href="{{ unsubscribe_url }}">Stop</a></mj-text>', layout=False),
    )
    write(templates, "sales/handoff", email("<mj-text>Hi</mj-text>", layout=False))
    write(templates, "lead/broken", email("<mj-text>{{ oops }}</mj-text>", layout=False))

    warnings = [(p.file, p.line, p.message) for p in template_warnings(templates, CONFIG)]

    # Sales emails need none; a broken email is an error already, not also a warning.
    assert warnings == [
        (
            "templates/lead/no-link.mjml",
            None,
            "warning: no link to {{ unsubscribe_url }}: contacts need a visible way to "
            "unsubscribe (the law asks for one); add "
            '<a href="{{ unsubscribe_url }}">Unsubscribe</a> to the email or its layout',
        )
    ]


@pytest.mark.parametrize("project", ["example", "scaffold"])
def test_the_example_and_the_scaffold_have_no_template_warning(project: str) -> None:
    from nurture.definitions.loader import load_project

    repo = Path(__file__).parents[2]
    root = repo if project == "example" else repo / "nurture" / "_scaffold"
    loaded = load_project(root)
    assert template_warnings(loaded.templates_dir, loaded.config) == []


def test_validate_prints_template_warnings_and_strict_fails_on_them(tmp_path: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from nurture.cli.app import app

    repo = Path(__file__).parents[2]
    root = tmp_path / "campaigns"
    root.mkdir()
    shutil.copy(repo / "nurture.yaml", root)
    shutil.copytree(repo / "workflows", root / "workflows")
    shutil.copytree(repo / "templates", root / "templates")
    write(root / "templates", "newsletter/ported", email("<mj-text>Hi {firstname}</mj-text>"))

    result = CliRunner().invoke(app, ["validate", str(root)])
    assert result.exit_code == 0, result.output
    assert "templates/newsletter/ported.mjml:6: warning: '{firstname}'" in result.output
    assert "is valid" in " ".join(result.output.split())  # rich wraps at 80 columns here

    strict = CliRunner().invoke(app, ["validate", "--strict", str(root)])
    assert strict.exit_code == 1
    assert "templates/newsletter/ported.mjml:6: warning: '{firstname}'" in strict.output
    assert "is valid" not in " ".join(strict.output.split())
