import pytest
from pydantic import ValidationError

from unitrain.search_space import QLogUniform, QRandInt, QRandN, QUniform, parse_entry


def test_q_defaults_are_documented_values():
    assert QUniform(name="lr", min=0.0001, max=0.01).effective_q == pytest.approx(1e-5)
    assert QLogUniform(name="lr", min=0.0001, max=0.01, base=10).effective_q == pytest.approx(1e-5)
    assert QLogUniform(name="lr", min=1.25, max=1.75, base=10).effective_q == pytest.approx(1e-3)
    assert QRandN(name="x", mean=0, sd=1).effective_q == pytest.approx(0.01)
    assert QRandInt(name="n", min=5, max=15).effective_q == 1


def test_explicit_q_wins():
    entry = QUniform(name="lr", min=0.0001, max=0.01, q=0.0001)
    assert entry.effective_q == 0.0001 and not entry.q_defaulted
    assert QUniform(name="lr", min=0, max=1).q_defaulted


def test_entry_is_chosen_by_type():
    assert (
        type(parse_entry({"name": "n", "type": "qrandint", "min": 1, "max": 9, "q": 2})) is QRandInt
    )


def test_q_must_be_positive():
    with pytest.raises(ValidationError, match="greater than 0"):
        parse_entry({"name": "x", "type": "quniform", "min": 0, "max": 1, "q": 0})
