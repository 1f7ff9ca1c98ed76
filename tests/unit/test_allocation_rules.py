"""The allocation rules document (the SSM parameter): validated with a clear error, partial documents
keep the defaults for what they leave out."""

from datetime import timedelta

import pytest

from oms.adapters.allocation_rules import parse_rules
from oms.domain.allocation import AllocationRules, AllocationWeights

DEFAULTS = AllocationRules()


def test_a_full_document_sets_every_rule():
    # GIVEN an operator's document with new weights and thresholds
    text = ('{"weights": {"stock": 0.25, "delivery": 0.5, "labour": 0.15, "error": 0.1}, "max_source_age_seconds": 600,'
            ' "min_confidence": 0.7, "error_rate_ceiling": 0.02, "max_split_warehouses": 2}')
    # WHEN it is parsed
    rules = parse_rules(text, DEFAULTS)
    # THEN every rule is the document's
    assert rules.weights == AllocationWeights(stock=0.25, delivery=0.5, labour=0.15, error=0.1)
    assert (rules.max_source_age, rules.min_confidence, rules.error_rate_ceiling, rules.max_split_warehouses) == (
        timedelta(minutes=10), 0.7, 0.02, 2)


def test_what_a_document_leaves_out_keeps_the_default():
    rules = parse_rules('{"max_split_warehouses": 4}', DEFAULTS)
    assert rules.max_split_warehouses == 4
    assert rules.weights == DEFAULTS.weights and rules.max_source_age == DEFAULTS.max_source_age


@pytest.mark.parametrize("text, problem", [
    ('{"weights": {"stock": 0.5, "delivery": 0.3, "labour": 0.2, "error": 0.1}}', "add up to 1"),
    ('{"weights": {"stock": -0.1, "delivery": 0.6, "labour": 0.4, "error": 0.1}}', "weights.stock"),
    ('{"weights": {"stock": 0.4, "delivery": 0.3, "labour": 0.3}}', "weights.error: Field required"),
    ('{"min_confidence": 1.5}', "min_confidence"),
    ('{"max_split_warehouses": 0}', "max_split_warehouses"),
    ('{"max_source_age_seconds": 5}', "max_source_age_seconds"),
    ('{"weight": {}}', "weight: Extra inputs are not permitted"),
    ('not json', "document"),
])
def test_a_bad_document_is_refused_with_what_is_wrong(text, problem):
    with pytest.raises(ValueError, match="allocation rules are invalid") as refused:
        parse_rules(text, DEFAULTS)
    assert problem in str(refused.value)
