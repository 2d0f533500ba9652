"""Key templates and name sanitising (rcetl.render_key, rcetl.sanitize_component)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

import rcetl
from rcetl.blobs import key_variables, versioned_key

WHEN = datetime(2024, 3, 5, 14, 30, tzinfo=timezone.utc)


def test_default_template() -> None:
    ref = rcetl.BlobRef("r1", "u", "recording", "audio/mpeg", variables={"date": WHEN, "extension": 101})
    key = rcetl.render_key(rcetl.ObjectStoreConfig().key, key_variables(ref, None))
    assert key == "2024/03/05/101/recording/r1.mp3"


@pytest.mark.parametrize("value", [WHEN, "2024-03-05T14:30:00Z", "2024-03-05T14:30:00.000+00:00"])
def test_date_accepts_datetime_and_iso_string(value) -> None:
    assert rcetl.render_key("{date:%Y/%m/%d}/{date}", {"date": value}) == "2024/03/05/2024-03-05"


def test_missing_variables_render_as_placeholder() -> None:
    assert rcetl.render_key("{date:%Y}/{extension}/{id}", {"id": 7}) == "_/_/7"
    assert rcetl.render_key("{date:%Y}/{id}", {"date": "not a date", "id": 7}) == "_/7"


def test_record_supplies_defaults_and_ref_variables_win() -> None:
    ref = rcetl.BlobRef("a1", "u", "fax", "application/pdf", variables={"account": "override"})
    record = rcetl.Record("messages", 2**60, {}, account="acc", occurred_at=WHEN)
    v = key_variables(ref, record)
    assert (v["id"], v["kind"], v["ext"], v["account"], v["key"], v["date"]) == (
        "a1",
        "fax",
        "pdf",
        "override",
        2**60,
        WHEN,
    )


def test_extension_from_api_name_then_content_type() -> None:
    named = rcetl.BlobRef("a", "u", "attachment", "application/octet-stream", variables={"name": "Scan.TIFF"})
    assert key_variables(named, None)["ext"] == "tiff"
    assert key_variables(rcetl.BlobRef("a", "u", "voicemail", "audio/x-wav"), None)["ext"] == "wav"
    assert key_variables(rcetl.BlobRef("a", "u", "x", None), None)["ext"] == "bin"


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "_.._etc_passwd"),  # leading dots stripped: no hidden files
        ("..", "_"),
        ("", "_"),
        ("a\x00b\nc", "a_b_c"),
        ("  spaced   out  ", "spaced out"),
        ("CON", "_CON"),
        ("e\u0301te.pdf", "\u00e9te.pdf"),  # NFC-normalised
        ("a:b*c?d", "a_b_c_d"),
    ],
)
def test_sanitize_component(raw, safe) -> None:
    assert rcetl.sanitize_component(raw) == safe


def test_long_names_are_capped_keep_extension_and_stay_distinct() -> None:
    a = rcetl.sanitize_component("n" * 300 + "a.pdf")
    b = rcetl.sanitize_component("n" * 300 + "b.pdf")
    assert a != b and a.endswith(".pdf") and b.endswith(".pdf")
    assert len(a.encode()) <= 150
    multi = rcetl.sanitize_component("北" * 200)
    assert len(multi.encode()) <= 150 and multi.startswith("北")


def test_versioned_key() -> None:
    assert versioned_key("a/b/r1.mp3", 2) == "a/b/r1.v2.mp3"
    assert versioned_key("r1", 3) == "r1.v3"
    assert versioned_key("a/.hidden", 2) == "a/.hidden.v2"


@pytest.mark.parametrize("template", ["{id.__class__}", "{0}", "{}", "{ids[0]}", "/"])
def test_config_rejects_unsafe_templates(template) -> None:
    with pytest.raises(ValidationError):
        rcetl.ObjectStoreConfig(key=template)


def test_literal_dot_segments_are_refused() -> None:
    with pytest.raises(rcetl.ConfigError):
        rcetl.render_key("../{id}", {"id": 1})


def test_config_forbids_unknown_options_and_normalises_prefix() -> None:
    with pytest.raises(ValidationError):
        rcetl.ObjectStoreConfig(streams=["x"])
    assert rcetl.ObjectStoreConfig(prefix="/archive//rc/").prefix == "archive/rc"
    with pytest.raises(ValidationError):
        rcetl.ObjectStoreConfig(prefix="a/../b")


@pytest.mark.parametrize("template", [
    "{date:%Y/%m/%d}/{extension}/{kind}/{id}.{ext}",  # the default
    "{{literal}}/{id}-{name}",
    "x{missing}y/{id}",
    "{id!s}/{ext}",  # a conversion: left to the formatter
    "{kind:.{n}}/{id}",  # a nested spec: left to the formatter
])
def test_a_template_parsed_once_renders_as_the_formatter_does(template: str) -> None:
    """Templates are parsed once (not by Formatter.vformat for every binary): the key must be the
    one the formatter renders, the rare forms it alone handles included."""
    from rcetl.blobs import _FORMATTER

    variables = {"date": "2024-03-05T14:30:00Z", "extension": "101", "kind": "recording", "id": "a/b",
                 "name": "Jane Doe", "ext": "mp3", "n": 3}
    rendered = _FORMATTER.vformat(template, (), variables)
    expected = "/".join(s for s in rendered.split("/") if s)
    assert rcetl.render_key(template, variables) == expected
