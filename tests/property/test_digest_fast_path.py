"""The one-regex-per-parameter parse of Authorization values must agree with the careful
character-by-character parser wherever it answers (it hands everything else over)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from sipsvc.sip.digest import DigestError, _parse_careful, _parse_fast

_TOKEN = st.text(alphabet="abcXYZ019-.!%*_+`'~", min_size=1, max_size=8)
_QUOTED_BODY = st.text(alphabet='ab "\\\t,=\x01é', max_size=10)


@st.composite
def _auth_values(draw) -> str:
    params = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(_TOKEN)
        if draw(st.booleans()):
            body = draw(_QUOTED_BODY)
            value = f'"{body}"' if draw(st.booleans()) else '"' + body.replace("\\", "\\\\").replace('"', '\\"') + '"'
        else:
            value = draw(_TOKEN)
        params.append(f"{name}{draw(st.sampled_from(['=', ' = ', '=']))}{value}")
    separator = draw(st.sampled_from([",", ", ", " ,", ",,"]))
    return f"{draw(st.sampled_from(['Digest', ' Digest', 'Digest ']))} " + separator.join(params) + draw(
        st.sampled_from(["", " ", ",", "\t"]))


@settings(max_examples=400, deadline=None)
@given(_auth_values())
def test_the_fast_parse_agrees_with_the_careful_one(value):
    fast = _parse_fast(value)
    try:
        careful = _parse_careful(value)
    except DigestError:
        assert fast is None, value
        return
    assert fast is None or fast == careful, value
