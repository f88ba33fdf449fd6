import pytest
from hypothesis import given, strategies as st

from layersafe.errors import UserError
from layersafe.layers import parse_layers


@pytest.mark.parametrize("spec,expected", [
    ("all", list(range(25))),
    ("default", [23]),
    ("9", [9]),
    ("0", [0]),
    ("24", [24]),
    ("9-12", [9, 10, 11, 12]),
    ("default,1-3, 9", [1, 2, 3, 9, 23]),
    ("3,3,2-4", [2, 3, 4]),
    ("-2", [23]),
    ("-1", [24]),
    ("ALL", list(range(25))),
])
def test_specs(spec, expected):
    assert parse_layers(spec, 24, 23) == expected


@pytest.mark.parametrize("spec,msg", [
    ("25", "out of range"),
    ("-26", "out of range"),
    ("20-30", "out of range"),
    ("12-9", "backwards"),
    ("", "empty"),
    ("foo", "bad layer spec"),
    ("1,,2", "bad layer spec"),
    ("1.5", "bad layer spec"),
])
def test_bad_specs_name_valid_range(spec, msg):
    with pytest.raises(UserError, match=msg) as e:
        parse_layers(spec, 24, 23)
    assert "0..24" in str(e.value)


@given(st.text(max_size=30))
def test_fuzz_only_clear_errors(spec):
    try:
        got = parse_layers(spec, 24, 23)
    except UserError as e:
        assert "\n" not in str(e)
    else:
        assert got == sorted(set(got)) and all(0 <= x <= 24 for x in got)
