"""The digest fast paths must agree with the general code: the one-regex-per-parameter parse
of Authorization values with the careful character-by-character parser wherever it answers
(it hands everything else over), and the pre-rendered challenges with rendered ones."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from sipsvc.sip.digest import DigestError, _parse_careful, _parse_fast, challenge_values, challenges

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


@settings(max_examples=300, deadline=None)
@given(realm=st.text(alphabet='ab.-"\\ n0ceM4rk=é', min_size=1, max_size=20),
       nonce=st.one_of(st.text(alphabet="AZaz09-_", min_size=1, max_size=30), st.text(alphabet='ab"\\ ', max_size=5)),
       stale=st.booleans(),
       algorithms=st.lists(st.sampled_from(["SHA-256", "MD5", "MD5-sess", "SHA-256-sess"]), min_size=1,
                           max_size=3, unique=True).map(tuple))
def test_prerendered_challenges_are_the_rendered_ones(realm, nonce, stale, algorithms):
    rendered = tuple(c.header_value() for c in challenges(realm, nonce, stale, algorithms))
    assert challenge_values(realm, nonce, stale, algorithms) == rendered
