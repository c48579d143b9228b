"""The line-protocol reader of status reports: its fast paths read exactly what the
general one does, and numbers follow the grammar, not Python's float()."""

from __future__ import annotations

import pytest

from gpugo.inputs import line_protocol
from gpugo.inputs.line_protocol import Point, parse

AGENT_GPU_LINE = (
    "gpu_metrics,agent_id=agt_1,gpu_id=GPU-0,model=NVIDIA\\ GeForce\\ RTX\\ 4090,vendor=nvidia "
    "utilization=40.50,vram_used_mb=12000i,vram_total_mb=24564i,temperature=61.0 1796441280874"
)

LINES = [
    AGENT_GPU_LINE,
    "system_metrics,agent_id=agt_1,hostname=gpu-host cpu_usage=12.50,memory_used_mb=8192i 17",
    "m f=1",
    "m,t=a f=1,g=2i,h=-3u,k=+.5,l=1.,b=t,c=FALSE 0",
    "m\\ n,t\\ k=v\\ w f\\ k=1 5",
    "m,t=a\\,b f=1",
    "m,t=a\\=b f=1",
    "m,t=a\\\\ f=1",
    'm,t=a s="a b, c=d",f=1 7',
    'm s="x \\" y"',
    "m,t=a f=1\\ 2",
    "m,t=a f=1 12\\ 3",
    "m,t=a\\x f=1",
    "m\x01,t=a f=1",
    "m,t=a f=1\\",
    "m f=",
    "m =1",
    "m,t f=1",
    ",t=a f=1",
    "m f=1 x",
    "m f=1 2 3",
    "m  f=1",
    "m,t=a f=1,g=-2i,h=+.5,k=1.,l=0.25 9",
    "m f=1,f=2i",
    "m f=1.5i,g=1",
    "m f=1,g=a=1",
    "m f=1,=2",
    "m f=1,,g=2",
    "m f=1,g=1e3,h=nan",
    "m f=12345678901234567890i",
    "m f=1" + "0" * 400,
]


def _read(reader: object, line: str) -> Point | str:
    try:
        return reader(line)  # type: ignore[operator]
    except ValueError:
        return "malformed"


def _general(line: str) -> Point:
    """The reader every line could take: escapes and quotes handled character by character."""
    sections = line_protocol._split(line, " ", quotes=True)
    return line_protocol._assemble(sections)


@pytest.mark.parametrize("line", LINES)
def test_the_fast_paths_read_what_the_general_reader_does(line):
    assert _read(line_protocol._point, line) == _read(_general, line)


def test_the_agents_gpu_line_is_unescaped():
    (point,) = parse(AGENT_GPU_LINE).points
    assert point.tags["model"] == "NVIDIA GeForce RTX 4090"
    assert point.fields == {
        "utilization": 40.5,
        "vram_used_mb": 12000,
        "vram_total_mb": 24564,
        "temperature": 61.0,
    }
    assert point.timestamp == 1796441280874


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("40.50", 40.5),
        ("-1", -1.0),
        ("+.5", 0.5),
        ("1.", 1.0),
        ("1e3", 1000.0),
        ("-2.5E-2", -0.025),
        ("12000i", 12000),
        ("-7i", -7),
        ("+7u", 7),
        ("t", True),
        ("FALSE", False),
        ('"a b"', "a b"),
    ],
)
def test_field_values_the_grammar_allows(text, value):
    (point,) = parse(f"m f={text}").points
    assert point.fields["f"] == value
    assert type(point.fields["f"]) is type(value)


@pytest.mark.parametrize(
    "text",
    [
        "1_000",  # float() takes it
        "nan",
        "inf",
        "-inf",
        "1e999",  # not finite
        "1e0005",  # exponent longer than the grammar's
        "١٢",  # digits, but not ASCII ones
        "1١2",  # noqa: RUF001 - a digit of another script, on purpose
        "1.5i",
        "i",
        "-i",
        "12345678901234567890i",  # over 19 digits
        "1.2.3",
        ".",
        "+",
        "1x",
        '"open',
        "yes",
    ],
)
def test_field_values_outside_the_grammar_skip_their_line(text):
    parsed = parse(f"m f={text}\nm g=1")
    assert parsed.skipped == 1
    assert [p.fields for p in parsed.points] == [{"g": 1.0}]
