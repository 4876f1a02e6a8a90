"""Find a project's files on disk and turn them into one checked `Project`.

`load_project` is what every command calls: it either returns a project whose
every file parsed and cross-checked, or raises `DefinitionError` listing every
problem. Template *rendering* checks run in `validate_project` only, since they
cost a render per template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nurture.definitions import model as m
from nurture.definitions.checks import check_project
from nurture.definitions.config import read_config
from nurture.definitions.workflow import parse_workflow
from nurture.errors import DefinitionError, Problem

CONFIG_FILE = "nurture.yaml"
WORKFLOWS_DIR = "workflows"
TEMPLATES_DIR = "templates"


@dataclass(frozen=True)
class Project:
    """A whole project, every file parsed and cross-checked: what commands and the engine run on.

    Built by `load_project`; `template_names` are the email templates, not layouts or partials.
    """

    root: Path
    config: m.ProjectConfig
    workflows: dict[str, m.Workflow] = field(default_factory=dict)
    template_names: frozenset[str] = frozenset()

    @property
    def templates_dir(self) -> Path:
        return self.root / TEMPLATES_DIR

    def workflows_for_stage(self, stage: str) -> list[m.Workflow]:
        return [w for w in self.workflows.values() if w.enroll.stage == stage]


def find_files(root: Path) -> m.ProjectFiles:
    return m.ProjectFiles(
        root=root,
        config_file=root / CONFIG_FILE,
        workflow_files=tuple(
            sorted([*(root / WORKFLOWS_DIR).glob("*.yaml"), *(root / WORKFLOWS_DIR).glob("*.yml")])
        ),
        templates_dir=root / TEMPLATES_DIR,
    )


def email_template_names(templates_dir: Path) -> set[str]:
    """Email templates by name; any path part starting with `_` is a layout or partial."""
    if not templates_dir.is_dir():
        return set()
    names = set()
    for path in templates_dir.rglob("*.mjml"):
        relative = path.relative_to(templates_dir).with_suffix("")
        if not any(part.startswith("_") for part in relative.parts):
            names.add(relative.as_posix())
    return names


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def read_config_file(root: Path | str) -> tuple[m.ProjectConfig | None, list[Problem]]:
    """What of the project's nurture.yaml parsed, and its problems (see `read_config`).

    Enough for what needs no workflow, such as rendering a template.
    """
    root = Path(root)
    path = root / CONFIG_FILE
    if not path.is_file():
        return None, [
            Problem(
                CONFIG_FILE,
                None,
                f"not a nurture project: {path} not "
                "found (a project needs nurture.yaml, workflows/ and templates/; see the README)",
            )
        ]
    return read_config(_read(path), _relative(path, root))


def read_project(root: Path | str) -> tuple[Project | None, list[Problem]]:
    """Parse and cross-check every file; never raises for a problem in the files."""
    root = Path(root)
    files = find_files(root)
    # Workflows are checked against what of nurture.yaml parsed, so a mistake
    # there is reported once, not again in every workflow that reads a property.
    config, problems = read_config_file(root)
    if not files.config_file.is_file():
        return None, problems
    workflows: list[m.Workflow] = []
    for path in files.workflow_files:
        workflow, workflow_problems = parse_workflow(_read(path), _relative(path, root), config)
        problems += workflow_problems
        if workflow is not None:
            workflows.append(workflow)
    template_names = email_template_names(files.templates_dir)
    if config is not None:
        problems += check_project(
            config, workflows, template_names, _relative(files.templates_dir, root)
        )
    if problems or config is None:
        return None, problems
    project = Project(
        root=root,
        config=config,
        workflows={w.name: w for w in workflows},
        template_names=frozenset(template_names),
    )
    return project, []


def load_project(root: Path | str) -> Project:
    project, problems = read_project(root)
    if project is None:
        raise DefinitionError(problems)
    return project


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError(
            [Problem(str(path), None, f"not UTF-8 text ({exc.reason})")]
        ) from None
