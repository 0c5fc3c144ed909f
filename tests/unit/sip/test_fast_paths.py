"""The core's fast paths agree with the general code they stand in for, so neither can drift
from the other unnoticed: each property feeds both the same generated input."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from hypothesis import example, given, settings, strategies as st

from sipsvc.sip import parser, uri
from sipsvc.sip.headers import CSeq, NameAddr, Via, parse_name_addr, top_via, vias
from sipsvc.sip.uas import _same_host, stamp_via
from sipsvc.sip.message import Response
from sipsvc.registrar.policy import Binding, Source
from sipsvc.registrar.service import Caller
from sipsvc.sip.digest import Credentials
from sipsvc.sip.errors import SipParseError
from sipsvc.transport.endpoint import Target
from sipsvc.sip.message import (
    CANONICAL, LIST_HEADERS, Request, canonical_name, split_values, split_values_scanning,
)
from sipsvc.sip.transaction.events import Outgoing, RequestReceived
from sipsvc.sip.transaction.keys import BranchIdentity
from sipsvc.sip.transaction.timers import Timer, TimerQueue

# Line ends and the bytes around them, mixed so that CR, LF and their runs meet in every order.
HEAD_BYTES = st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"a", b"Via: x", b" ", b":"]),
                      max_size=40).map(b"".join)


@settings(max_examples=500)
@given(HEAD_BYTES)
@example(b"a\r\r\n\r\n")
@example(b"\n\r\n")
@example(b"\r\n\n")
@example(b"a\n\r\r\n\n")
def test_head_end_finds_what_the_regular_expression_finds(data):
    for pos in range(len(data) + 1):  # StreamFramer resumes its search part way
        for buffer in (data, bytearray(data)):
            match = parser._HEAD_END.search(buffer, pos)
            expected = None if match is None else (match.start(), match.end())
            assert parser._head_end(buffer, pos) == expected


@settings(max_examples=500)
@given(HEAD_BYTES.map(lambda data: data.decode()))
@example("a\r\r\nb\r")
@example("a\nb\r\nc")
def test_lines_split_as_the_regular_expression_splits_them(head):
    assert parser._split_lines(head) == parser._LINE_END.split(head)


def test_every_known_spelling_is_a_valid_name_with_its_canonical_form():
    for spelling, canonical in parser._KNOWN_NAMES.items():
        assert parser._HEADER_NAME.match(spelling)
        assert canonical == canonical_name(spelling)


NAME = st.one_of(
    st.sampled_from(sorted(parser._KNOWN_NAMES)).flatmap(
        lambda name: st.sampled_from([name, f"{name} ", f"{name}\t", f" {name}", name.title()])),
    st.text(alphabet="viaVIAtoTOfrmFRMcsqCSQ-l! \t", min_size=0, max_size=14),
)


@settings(max_examples=500)
@given(NAME, st.text(alphabet="ab ;:", max_size=8))
@example("Via", "")
def test_header_lines_parse_as_without_the_table_of_known_names(name, value):
    line = f"{name}:{value}" if value else name  # no colon at all: malformed
    lines = ["INVITE sip:x SIP/2.0", line]
    try:
        fast = parser._parse_lines(lines, 1, 2)
    except Exception as exc:  # noqa: BLE001 - compared below
        fast = type(exc)
    saved = parser._KNOWN_NAMES
    parser._KNOWN_NAMES = {}
    try:
        slow = parser._parse_lines(lines, 1, 2)
    except Exception as exc:  # noqa: BLE001
        slow = type(exc)
    finally:
        parser._KNOWN_NAMES = saved
    assert fast == slow


@given(st.lists(st.sampled_from(["0", " 0", "12", "12 ", "x", "007"]), max_size=4))
def test_content_length_agrees_with_the_set_of_its_values(values):
    headers = tuple(("Content-Length", value) for value in values)
    distinct = {value.strip() for value in values}
    try:
        got = parser.content_length(headers)
    except parser.FramingError as exc:
        got = exc.reason
    if not distinct:
        assert got is None
    elif len(distinct) > 1:
        assert got == "conflicting Content-Length headers"
    else:
        text = distinct.pop()
        assert got == (int(text) if text.isdigit() else "malformed Content-Length")


class _FlatTimerQueue:
    """The timer queue as it was before it kept its deadlines per transaction: the model."""

    def __init__(self) -> None:
        import heapq
        import itertools
        self._heapq = heapq
        self._heap: list = []
        self._live: dict = {}
        self._sequence = itertools.count()

    def start(self, tx, timer, deadline, length=None):  # one heap, whatever the duration
        sequence = next(self._sequence)
        self._live[(tx, timer)] = (sequence, deadline)
        self._heapq.heappush(self._heap, (deadline, sequence, tx, timer))

    def stop(self, tx, timer):
        self._live.pop((tx, timer), None)

    def stop_all(self, tx):
        for timer in Timer:
            self._live.pop((tx, timer), None)

    def deadlines(self, tx):
        return {timer: self._live[(tx, timer)][1] for timer in Timer if (tx, timer) in self._live}

    def next_deadline(self):
        self._skip_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now):
        self._skip_stale()
        if not self._heap or self._heap[0][0] > now:
            return None
        _, _, tx, timer = self._heapq.heappop(self._heap)
        del self._live[(tx, timer)]
        return tx, timer

    def _skip_stale(self):
        while self._heap:
            deadline, sequence, tx, timer = self._heap[0]
            if self._live.get((tx, timer), (None,))[0] == sequence:
                return
            self._heapq.heappop(self._heap)


TXS = st.sampled_from(["s1", "s2", "c3"])
TIMERS = st.sampled_from([Timer.A, Timer.E, Timer.F, Timer.J, Timer.K])
OPERATIONS = st.lists(st.one_of(
    st.tuples(st.just("start"), TXS, TIMERS, st.integers(0, 20).map(float)),
    # with a duration (a lane): deadlines in and out of their lane's order
    st.tuples(st.just("start"), TXS, TIMERS, st.integers(0, 20).map(float), st.sampled_from([0.5, 5.0, 32.0])),
    st.tuples(st.just("stop"), TXS, TIMERS),
    st.tuples(st.just("stop_all"), TXS),
    st.tuples(st.just("deadlines"), TXS),
    st.tuples(st.just("next_deadline")),
    st.tuples(st.just("pop_due"), st.integers(0, 20).map(float)),
), max_size=60)


@settings(max_examples=300)
@given(OPERATIONS)
def test_the_timer_queue_behaves_as_one_heap(operations):
    queue, model = TimerQueue(), _FlatTimerQueue()
    for name, *args in operations:
        assert getattr(queue, name)(*args) == getattr(model, name)(*args)
    assert [queue.pop_due(99.0) for _ in range(20)] == [model.pop_due(99.0) for _ in range(20)]


def test_the_shortcuts_of_header_lookups_rest_on_canonical_names():
    assert all(canonical_name(name) == name for name in CANONICAL.values())
    assert all(canonical_name(name) == name for name in LIST_HEADERS)


LOOKUP_NAMES = st.sampled_from(sorted({*CANONICAL, *CANONICAL.values(), "X-Custom", "x-custom",
                                       "VIA", "Contact", "m", "Path", "Require"}))


@settings(max_examples=300)
@given(st.lists(st.tuples(LOOKUP_NAMES, st.sampled_from(["a", "a, b", '"x, y" <sip:z>', ""])), max_size=6),
       LOOKUP_NAMES)
def test_header_lookups_answer_as_the_plain_definitions(headers, name):
    message = Request(method="OPTIONS", uri="sip:x", headers=tuple(headers))
    lines = [value for key, value in headers if key == name]
    if not lines:
        lines = [value for key, value in headers if key == canonical_name(name)]
    assert message.header_lines(name) == lines
    assert message.header(name) == (lines[0] if lines else None)
    expected = ([part for line in lines for part in split_values(line)]
                if canonical_name(name) in LIST_HEADERS else lines)
    assert message.values(name) == expected


@settings(max_examples=500)
@given(st.text(alphabet=' ,<>"\\ab:@;=\t', max_size=40))
def test_list_values_split_as_the_character_scan_splits_them(value):
    assert split_values(value) == split_values_scanning(value)


def _outcome(parse, text):
    try:
        return parse(text)
    except SipParseError as exc:
        return exc.reason


@settings(max_examples=500)
@given(st.text(alphabet="sipSIP:@;=?<> .[]1x%\t", max_size=24))
@example("sip:")
@example("sip:@x")
@example("sip:a b")
@example("sip:u@h:5060;transport=udp?x=y")
def test_a_sip_uri_parses_as_through_the_scheme_pattern(text):
    for candidate in (text, f"sip:{text}"):
        assert _outcome(uri.parse_uri, candidate) == _outcome(uri._parse_any, candidate)


WRITTEN_OUT_INITS = [uri.SipUri, Via, NameAddr, CSeq, Request, Response, Outgoing, RequestReceived,
                     BranchIdentity, Source, Target, Binding, Credentials, Caller]


def test_written_out_inits_take_and_set_exactly_the_dataclass_fields():
    for cls in WRITTEN_OUT_INITS:
        fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
        parameters = dict(inspect.signature(cls.__init__).parameters)
        parameters.pop("self")
        assert set(parameters) == set(fields), cls
        for name, parameter in parameters.items():
            field = fields[name]
            assert (parameter.kind is inspect.Parameter.KEYWORD_ONLY) == field.kw_only, (cls, name)
            if field.default is not dataclasses.MISSING:
                assert parameter.default == field.default, (cls, name)
            elif field.default_factory is not dataclasses.MISSING:
                assert parameter.default is None, (cls, name)  # None stands for a fresh one
            else:
                assert parameter.default is inspect.Parameter.empty, (cls, name)
        values = {name: object() for name in fields}
        made = cls(**values)
        assert vars(made) == values, cls
        defaults_only = {name: values[name] for name, field in fields.items()
                         if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING}
        made = cls(**defaults_only)
        for name, field in fields.items():
            if field.default_factory is not dataclasses.MISSING:
                assert getattr(made, name) == field.default_factory(), (cls, name)
            elif field.default is not dataclasses.MISSING:
                assert getattr(made, name) == field.default, (cls, name)
        try:
            made.__setattr__(next(iter(fields)), None)
        except dataclasses.FrozenInstanceError:
            pass
        else:
            raise AssertionError(f"{cls.__name__} is no longer frozen")


def _stamp_via_reference(request, source_ip, source_port):
    """stamp_via as it was before its text fast path: the model."""
    for index, (name, value) in enumerate(request.headers):
        if name == "Via":
            break
    else:
        return request
    values = split_values(value)
    try:
        via = top_via(request)
    except SipParseError:
        return request
    params = [(k, v) for k, v in via.params if k.lower() not in ("received", "rport")]
    rport = via.param("rport") is not None
    if rport or not _same_host(via.host, source_ip):
        params.append(("received", source_ip))
    if rport:
        params.append(("rport", str(source_port)))
    stamped = Via(via.protocol, via.transport, via.host, via.port, tuple(params))
    values[0] = str(stamped)
    headers = list(request.headers)
    headers[index] = ("Via", ", ".join(values))
    memo = {key: value for key, value in request.memo.items() if key != "vias"}
    memo["top_via"] = stamped
    return Request(method=request.method, uri=request.uri, headers=tuple(headers), body=request.body,
                   memo=memo)


VIA_PARAM = st.one_of(
    st.sampled_from(["rport", "RPORT", "rport=", "rport=5060", "received=10.0.0.1", "Received=x",
                     "branch=z9hG4bK-1", "branch=z9hG4bKrport", "xrport", "rportx", "ttl=1",
                     "maddr=h", "alias", "rport ", " rport", "rport\t", "a=b\x0b", "rport;", ""]),
    st.text(alphabet="abrpot=;", min_size=1, max_size=6),
)
VIA_HEAD = st.sampled_from([
    "SIP/2.0/UDP 127.0.0.1:40000", "SIP/2.0/UDP 127.0.0.1", "SIP/2.0/TCP host.example:5060",
    "SIP/2.0/udp 127.0.0.1:40000", "sip/2.0/UDP 127.0.0.1", "SIP / 2.0 / UDP 127.0.0.1",
    "SIP/2.0/UDP  127.0.0.1", "SIP/2.0/UDP 127.0.0.1 : 40000", "SIP/2.0/UDP 127.0.0.1:040000",
    "SIP/2.0/UDP [::1]:5060", "SIP/2.0/UDP 10.0.0.9:5060", "SIP/2.0/TLS 127.0.0.1 ",
])


CANONICAL_VIA_PARAM = st.sampled_from(["branch=z9hG4bK-1", "ttl=1", "maddr=h", "alias", "x=", "rportx",
                                       "xrport=rport", "received=1.2.3.4", "RPORT"])


@st.composite
def via_lines(draw):
    if draw(st.booleans()):  # the fast path's case, or one step from it
        params = draw(st.permutations(["rport", *draw(st.lists(CANONICAL_VIA_PARAM, max_size=3))]))
        head = draw(st.sampled_from(["SIP/2.0/UDP 127.0.0.1:40000", "SIP/2.0/TCP h.example",
                                     "SIP/2.0/UDP [::1]:5060"]))
    else:
        params = draw(st.lists(VIA_PARAM, max_size=5))
        head = draw(VIA_HEAD)
    first = head + "".join(f";{param}" for param in params)
    others = draw(st.lists(st.sampled_from(["SIP/2.0/UDP p:5060;branch=z9hG4bK2", "SIP/2.0/UDP  q"]),
                           max_size=2))
    separator = draw(st.sampled_from([",", ", ", " ,"]))
    return separator.join([first, *others])


@settings(max_examples=1000)
@given(via_lines(), st.sampled_from(["127.0.0.1", "10.0.0.9", "::1"]), st.integers(1, 65535),
       st.booleans())
@example("SIP/2.0/UDP 127.0.0.1:40000;rport;branch=z9hG4bK-1-2", "127.0.0.1", 40000, True)
@example("SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-1-2;rport", "127.0.0.1", 40000, False)
@example("SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-rport;rport", "10.1.1.1", 9, True)
def test_stamp_via_writes_what_serialising_the_stamped_via_writes(line, ip, port, checked):
    headers = (("Via", line), ("To", "<sip:a@b>"), ("Via", "SIP/2.0/UDP z"))

    def fresh():
        request = Request(method="REGISTER", uri="sip:b", headers=headers)
        if checked:  # check_request parses every Via first; top_via then reuses them
            try:
                vias(request)
            except SipParseError:
                pass
        return request

    fast, model = stamp_via(fresh(), ip, port), _stamp_via_reference(fresh(), ip, port)
    assert fast.headers == model.headers
    assert fast.memo.keys() == model.memo.keys()
    assert fast.memo.get("top_via") == model.memo.get("top_via")
    if "top_via" in fast.memo:  # the memo says what parsing the new line says
        assert top_via(Request(method="REGISTER", uri="sip:b", headers=fast.headers)).params == \
            fast.memo["top_via"].params
    # Header lookups on the stamped request see the stamped line, as on a fresh parse of it.
    assert fast.header_lines("Via") == Request(method="REGISTER", uri="sip:b", headers=fast.headers).header_lines("Via")


@given(st.lists(st.floats(min_value=0, max_value=4e9), min_size=1, max_size=20))
@example([1.9999995231628418, 1.0])  # formatdate would round this one up to the next second
def test_the_date_of_each_second_is_made_once_and_right(times):
    import email.utils

    from sipsvc.sip.uas import http_date

    for now in times:  # in any order: a cached second must never answer for another
        assert http_date(now) == email.utils.formatdate(int(now), usegmt=True)  # the second it falls in


def test_timers_of_one_duration_started_in_time_order_fire_in_that_order():
    queue = TimerQueue()
    for n in range(1000):  # Timer J of a busy worker, with a shorter timer now and then
        queue.start(f"s{n}", Timer.J, n * 0.001 + 32.0, 32.0)
        if n % 100 == 0:
            queue.start(f"c{n}", Timer.E, n * 0.001 + 0.5, 0.5)
    fired = [queue.pop_due(40.0) for _ in range(1011)]
    assert fired[:10] == [(f"c{n}", Timer.E) for n in range(0, 1000, 100)]
    assert fired[10:] == [(f"s{n}", Timer.J) for n in range(1000)] + [None]


@settings(max_examples=300)
@given(st.text(alphabet='sipSIP:@;=?<>" .tag1x%', max_size=30))
def test_the_remembered_parsers_answer_as_parsing_afresh(text):
    for remembered in (uri.parse_uri, parse_name_addr):
        first, again = _outcome(remembered, text), _outcome(remembered, text)
        assert first == again == _outcome(remembered.__wrapped__, text)


def test_a_text_parsed_again_is_answered_from_memory_and_a_bad_one_still_raises():
    text = '"Alice" <sip:alice@example.test;transport=udp>;tag=9a8b'
    assert parse_name_addr(text) is parse_name_addr(text)
    for _ in range(2):
        with pytest.raises(SipParseError):
            parse_name_addr("<sip:alice@example.test")
