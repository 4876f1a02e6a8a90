"""The published JSON Schema agrees with the parser, both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from nurture.definitions import base
from nurture.definitions.schema import config_schema, workflow_schema

REPO = Path(__file__).parents[2]


def _object_keys(schema: Any, found: set[frozenset[str]]) -> set[frozenset[str]]:
    if isinstance(schema, dict):
        if schema.get("additionalProperties") is False and "properties" in schema:
            found.add(frozenset(schema["properties"]))
        for value in schema.values():
            _object_keys(value, found)
    elif isinstance(schema, list):
        for value in schema:
            _object_keys(value, found)
    return found


def test_every_parser_vocabulary_is_an_object_in_the_schema() -> None:
    objects = _object_keys(config_schema(), set()) | _object_keys(workflow_schema(), set())
    vocabularies = {
        name: frozenset(value)
        for name, value in vars(base).items()
        if name.endswith("_KEYS") and isinstance(value, tuple)
    }
    for name, keys in vocabularies.items():
        assert any(keys <= obj for obj in objects), f"{name} missing from the schema"
    step_objects = {obj for obj in objects if "id" in obj}
    assert {next(iter(obj - {"id"} - {"on_event", "on_timeout"})) for obj in step_objects} == set(
        base.STEP_KINDS
    )


@pytest.mark.parametrize("path", sorted((REPO / "workflows").glob("*.yaml")), ids=lambda p: p.stem)
def test_example_workflows_match_the_schema(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), workflow_schema())


def test_example_config_matches_the_schema() -> None:
    jsonschema.validate(yaml.safe_load((REPO / "nurture.yaml").read_text()), config_schema())


def test_the_schema_rejects_an_unknown_key() -> None:
    with pytest.raises(jsonschema.ValidationError, match="descripton"):
        jsonschema.validate(
            {"name": "x", "descripton": "", "enroll": {"stage": "lead"}, "steps": ["exit"]},
            workflow_schema(),
        )
