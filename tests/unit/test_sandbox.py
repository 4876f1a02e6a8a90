"""Conditions (`when:`, `match:`, `exit.when`) cannot reach Python's internals either:
not by attribute, not by item, not through a filter's `attribute=`."""

from __future__ import annotations

import pytest

from nurture.contacts.view import sample_contact
from nurture.expressions import ExpressionError, ExpressionSyntaxError, compile_expression


@pytest.mark.parametrize(
    "source",
    [
        "contact['__class__']",
        "contact['__reduce_ex__'](2)",
        "contact['__setattr__']('_fields', {})",
        "[contact]|map(attribute='__class__')|list",
        "contact|attr('__class__')",
        "contact.__class__",
        "contact['_fields']",
    ],
)
def test_validate_refuses_internal_names_in_expressions(source: str) -> None:
    with pytest.raises(ExpressionSyntaxError, match="names starting with '_' are internal"):
        compile_expression(source)


@pytest.mark.parametrize(
    "source",
    [
        "contact[name]",
        "[contact]|map(attribute=name)|list",
        "(contact|attr(name)) is defined and (contact|attr(name)) != none",
    ],
)
def test_internal_names_computed_at_run_time_are_refused_too(source: str) -> None:
    expression = compile_expression(source)
    for name in ("__class__", "__reduce_ex__", "_fields"):
        with pytest.raises(ExpressionError, match="not allowed"):
            result = expression.evaluate({"contact": sample_contact(), "name": name})
            str(result)  # an unsafe undefined fails when used


def test_ordinary_item_access_still_reads_fields_and_properties() -> None:
    contact = sample_contact({"budget": "number"})
    assert compile_expression("contact['company']").evaluate({"contact": contact}) == (
        "Exemple Industrie"
    )
    assert compile_expression("contact['budget'] > 10").test({"contact": contact})
