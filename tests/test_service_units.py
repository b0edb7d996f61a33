"""The service's parts in-process: the request model built from a synthetic FeatureSpec, the
frame the model gets, answers and /metadata, the body-limit middleware, tags, and the BentoML
service class itself called directly (no HTTP)."""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers_serving import (
    SYNTH_CLASSES,
    SYNTH_FEATURES,
    SYNTH_PROJECT,
    drive_asgi,
    json_instances,
    packaged_project,
    run,
    split_frame,
)
from pydantic import TypeAdapter, ValidationError

from mlops_template import contract
from mlops_template.contract import Column, FeatureSpec
from mlops_template.errors import UserError
from mlops_template.model_io import load_model
from mlops_template.records import Provenance
from mlops_template.serving import schemas, store
from mlops_template.serving.config import ServiceArgs
from mlops_template.serving.middleware import RequestLimits
from mlops_template.stages.package import PROBA_TOLERANCE

SPEC = FeatureSpec(
    columns=(
        Column(name="length", kind="numeric", min=0, max=10),
        Column(name="ratio", kind="numeric"),  # unbounded
        Column(name="count", kind="numeric", integer=True, min=0, max=5),
        Column(name="colour", kind="categorical", values=("red", "green", "blue")),
        Column(name="indoor", kind="boolean"),
        Column(name="weight", kind="numeric", min=0, nullable=True),
        Column(name="shade", kind="categorical", values=("light", "dark"), nullable=True),
        Column(name="lit", kind="boolean", nullable=True),
    ),
    target="kind",
    classes=("ant", "bee", "cat"),
    shape=(2, 4),
)
NAMES = SPEC.names
MAX_ROWS = 5
Request = schemas.request_model(SPEC, MAX_ROWS)
VALID = [1.5, -3.25, 2, "red", True, 0.5, "light", None]
EXPECTED = (1.5, -3.25, 2.0, "red", True, 0.5, "light", None)


def validate(instances: Any, model: Any = Request) -> list[tuple[Any, ...]]:
    return model.model_validate({"instances": instances}).instances


def errors(instances: Any, model: Any = Request) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        validate(instances, model)
    return caught.value.errors()


def with_value(column: str, value: Any) -> list[Any]:
    row = list(VALID)
    row[NAMES.index(column)] = value
    return row


def up(x: float) -> float:
    return math.nextafter(x, math.inf)


def down(x: float) -> float:
    return math.nextafter(x, -math.inf)


# ----------------------------------------------------------------------- instance forms


def test_positional_named_and_shaped_instances_are_the_same_row():
    named = dict(zip(NAMES, VALID, strict=True))
    shaped = [VALID[:4], VALID[4:]]
    reordered = dict(reversed(list(named.items())))
    assert validate([VALID, named, shaped, reordered]) == [EXPECTED] * 4


def test_a_validated_row_holds_floats_for_numbers_and_keeps_other_types():
    (row,) = validate([[0, 7, 3.0, "blue", False, None, None, False]])
    assert row == (0.0, 7.0, 3.0, "blue", False, None, None, False)
    assert [type(v) for v in row[:3]] == [float, float, float]


# ----------------------------------------------------------------------- each column's own rule


ACCEPTED_VALUES = [
    ("length", 0),  # equal to min
    ("length", 10),  # equal to max
    ("length", 10.0),
    ("ratio", -1e300),  # no bounds
    ("ratio", 1e300),
    ("count", 0),
    ("count", 5),
    ("count", 4.0),  # a whole number given as a float
    ("colour", "blue"),
    ("indoor", False),
    ("weight", 0),
    ("weight", 1e9),  # no max
    ("weight", None),  # nullable
    ("shade", None),
    ("shade", "dark"),
    ("lit", None),
    ("lit", True),
]


@pytest.mark.parametrize(("column", "value"), ACCEPTED_VALUES)
def test_values_within_a_columns_rule_pass(column, value):
    (row,) = validate([with_value(column, value)])
    assert row[NAMES.index(column)] == value


REFUSED_VALUES = [
    ("length", down(0.0), "got -5e-324"),  # one step below min
    ("length", up(10.0), "got 10.000000000000002"),  # one step above max
    ("length", -1, "got -1"),
    ("length", "3", 'got "3"'),  # numbers are JSON numbers, not strings
    ("length", True, "got true"),  # a boolean is not a number
    ("length", None, "got null"),  # not nullable
    ("length", math.nan, "got NaN"),
    ("length", math.inf, "got Infinity"),
    ("length", [1], "got [1]"),
    ("ratio", -math.inf, "got -Infinity"),
    ("ratio", 10**400, "got 1000000000"),  # too large for a float
    ("count", -1, "got -1"),
    ("count", 6, "got 6"),
    ("count", 2.5, "got 2.5"),  # not a whole number
    ("count", up(5.0), "got 5.000000000000001"),
    ("colour", "purple", 'got "purple"'),
    ("colour", "RED", 'got "RED"'),  # exact, case included
    ("colour", 1, "got 1"),
    ("colour", None, "got null"),
    ("indoor", 1, "got 1"),
    ("indoor", "true", 'got "true"'),
    ("indoor", None, "got null"),
    ("weight", down(0.0), "got -5e-324"),
    ("weight", math.nan, "got NaN"),  # null is how a missing value is sent
    ("shade", "grey", 'got "grey"'),
    ("lit", 0, "got 0"),
]


@pytest.mark.parametrize(("column", "value", "got"), REFUSED_VALUES)
def test_values_outside_a_columns_rule_are_refused_by_name(column, value, got):
    (error,) = errors([VALID, with_value(column, value)])
    assert tuple(error["loc"]) == ("instances", 1)
    rule = next(c for c in SPEC.columns if c.name == column)
    expected = rule.describe() + (" or null" if rule.nullable else "")
    assert error["msg"].startswith(f"instance 1: column {column!r}: {got}"), error["msg"]
    assert error["msg"].endswith(f"; expected {expected}"), error["msg"]


def test_the_messages_say_what_each_column_takes():
    def message(column: str, value: Any) -> str:
        return errors([with_value(column, value)])[0]["msg"]

    assert message("length", 11).endswith("expected a number from 0 to 10")
    assert message("count", 2.5).endswith("expected an integer from 0 to 5")
    assert message("colour", "x").endswith("expected one of 'red', 'green', 'blue'")
    assert message("indoor", None).endswith("expected true or false")
    assert message("weight", -1).endswith("expected a number >= 0 or null")
    assert message("lit", "yes").endswith("expected true or false or null")


def test_an_instance_reports_its_first_problem_and_counts_the_others():
    bad = [-1, "x", 9, "pink", 0, -1, "dim", "no"]  # every column wrong
    (error,) = errors([bad])
    assert error["msg"] == (
        "instance 0: column 'length': got -1; expected a number from 0 to 10 "
        "(and 7 more problems in this instance)"
    )
    (error,) = errors([[*VALID[:2], 6, "pink", *VALID[4:]]])
    assert error["msg"].endswith("(and 1 more problem in this instance)")


# ----------------------------------------------------------------------- names and shapes


def test_an_unknown_column_name_is_refused_and_named():
    named = dict(zip(NAMES, VALID, strict=True))
    (error,) = errors([{**named, "size": 3, "Length": 1}])
    assert error["msg"].startswith("instance 0: unknown columns 'size', 'Length'")
    assert "the model's columns: 'length', 'ratio', 'count'" in error["msg"]


def test_a_named_instance_must_name_every_column():
    named = dict(zip(NAMES, VALID, strict=True))
    del named["lit"]
    (error,) = errors([named])
    assert error["msg"] == ("instance 0: missing column 'lit' (an object must name every column)")
    nullable_missing = {k: v for k, v in named.items() if k != "weight"}
    assert "missing columns 'weight', 'lit'" in errors([nullable_missing])[0]["msg"]


SHAPE_PROBLEMS = [
    ([VALID[:3], VALID[3:6], VALID[6:]], "got a ragged nested list"),
    ([VALID[:4], VALID[4:7]], "got a ragged nested list"),
    ([VALID[:2], VALID[2:4], VALID[4:6], VALID[6:]], "got a nested list of shape 4x2"),
    ([VALID[:4], VALID[4:], VALID[:4]], "got a nested list of shape 3x4"),
    ([[VALID[:4]], [VALID[4:]]], "got a nested list of shape 2x1x4"),
    ([VALID[:4], [*VALID[4:7], [None]]], "got a ragged nested list"),
]


@pytest.mark.parametrize(("instance", "says"), SHAPE_PROBLEMS)
def test_a_nested_instance_must_have_the_specs_shape(instance, says):
    (error,) = errors([instance])
    assert error["msg"].startswith(f"instance 0: {says}; expected a list of 8 values")
    assert error["msg"].endswith("or a nested list of shape 2x4")


@pytest.mark.parametrize(
    ("instance", "says"),
    [
        (VALID[:7], "got a list of 7 values; expected a list of 8 values in column order"),
        ([*VALID, 1], "got a list of 9 values"),
        ([], "got a list of 0 values"),
        ("1,2,3", 'got "1,2,3"; an instance is a list of 8 values'),
        (5, "got 5; an instance is"),
        (None, "got null; an instance is"),
    ],
)
def test_an_instance_of_the_wrong_form_says_which_forms_there_are(instance, says):
    (error,) = errors([instance])
    assert error["msg"].startswith(f"instance 0: {says}"), error["msg"]
    assert "or an object naming each column" in error["msg"]


def test_without_a_shape_a_nested_list_is_not_an_instance():
    flat = FeatureSpec(columns=SPEC.columns, target="kind", classes=SPEC.classes)
    model = schemas.request_model(flat, MAX_ROWS)
    assert validate([VALID], model) == [EXPECTED]
    (error,) = errors([[VALID[:4], VALID[4:]]], model)
    assert error["msg"].startswith("instance 0: got a list of 2 values")
    assert "nested" not in error["msg"]


# ----------------------------------------------------------------------- request size and error cap


def test_a_request_holds_1_to_max_rows_instances():
    assert len(validate([VALID] * MAX_ROWS)) == MAX_ROWS
    (error,) = errors([VALID] * (MAX_ROWS + 1))
    assert (error["type"], tuple(error["loc"])) == ("too_long", ("instances",))
    assert f"at most {MAX_ROWS} items" in error["msg"]
    (error,) = errors([])
    assert (error["type"], tuple(error["loc"])) == ("too_short", ("instances",))
    for not_a_list in ({"length": 1}, "x", None, 5):
        assert errors(not_a_list)[0]["loc"] == ("instances",)


def test_at_most_20_bad_instances_are_listed_then_counted():
    model = schemas.request_model(SPEC, 100)
    bad = with_value("count", 6)
    at_cap = errors([VALID] + [bad] * schemas.MAX_REPORTED, model)
    assert len(at_cap) == schemas.MAX_REPORTED
    assert [e["loc"][1] for e in at_cap] == list(range(1, schemas.MAX_REPORTED + 1))
    found = errors([bad] * 35 + [VALID], model)
    assert len(found) == schemas.MAX_REPORTED + 1
    assert found[-2]["msg"].startswith(f"instance {schemas.MAX_REPORTED - 1}: column 'count'")
    assert (found[-1]["msg"], found[-1]["loc"]) == ("and 15 more invalid instances", ("instances",))
    one_more = errors([bad] * (schemas.MAX_REPORTED + 1), model)
    assert one_more[-1]["msg"] == "and 1 more invalid instance"


# ----------------------------------------------------------------------- what the model gets


def test_the_model_gets_a_frame_typed_like_the_training_data():
    rows = validate([VALID, [0, 1, 4, "green", False, None, None, True]])
    frame = schemas.to_frame(SPEC, rows)
    assert list(frame.columns) == NAMES
    numbers = ["length", "ratio", "count", "weight", "indoor", "lit"]  # booleans as 1.0/0.0
    assert all(frame[c].dtype == np.float64 for c in numbers)
    assert all(frame[c].dtype == object for c in ("colour", "shade"))
    assert math.isnan(frame["weight"][1]) and frame["shade"][1] == ""  # missing: NaN and ""
    assert frame["indoor"].tolist() == [1.0, 0.0]
    assert math.isnan(frame["lit"][0]) and frame["lit"][1] == 1.0
    training = SPEC.frame(pd.DataFrame([list(r) for r in rows], columns=NAMES))
    pd.testing.assert_frame_equal(frame, training)


def test_the_training_frame_reads_booleans_and_missing_cells_as_the_onnx_inputs_hold_them():
    raw = pd.DataFrame(
        {
            "length": [1.0, None, 3.0],
            "ratio": [0.5, 0.5, 0.5],
            "count": pd.array([1, None, 2], dtype="Int64"),
            "colour": ["red", "blue", "green"],
            "indoor": [True, False, True],
            "weight": [None, 2.0, 0.0],
            "shade": ["dark", None, float("nan")],
            "lit": pd.array([None, False, True], dtype="boolean"),
        }
    )
    frame = SPEC.frame(raw)
    assert frame["shade"].tolist() == ["dark", "", ""]
    assert frame["indoor"].tolist() == [1.0, 0.0, 1.0]
    assert np.isnan(frame["lit"][0]) and frame["lit"][1:].tolist() == [0.0, 1.0]
    assert np.isnan(frame["count"][1]) and np.isnan(frame["length"][1])
    text = SPEC.frame(raw.assign(indoor=["True", "false", " TRUE "]))  # a CSV read as text
    assert text["indoor"].tolist() == [1.0, 0.0, 1.0]


def test_an_all_numeric_spec_gets_one_float_matrix():
    numeric = FeatureSpec(
        columns=tuple(Column(name=f"x{i}", kind="numeric", nullable=True) for i in range(3)),
        target="y",
        classes=(0, 1),
    )
    frame = schemas.to_frame(numeric, [(1.0, None, 3.0), (4.0, 5.0, 6.0)])
    assert list(frame.columns) == ["x0", "x1", "x2"]
    assert (frame.dtypes == np.float64).all() and math.isnan(frame["x1"][0])


def test_each_instance_gets_its_label_confidence_and_probabilities():
    proba = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    first, second = schemas.predictions(proba, ["ant", "bee", "cat"], "m:v1")
    assert (first.label, first.confidence) == ("bee", 0.7)
    assert second.label == "ant"
    assert first.probabilities == {"ant": 0.1, "bee": 0.7, "cat": 0.2}
    assert first.model_version == second.model_version == "m:v1"
    (numbered,) = schemas.predictions(np.array([[0.2, 0.8]]), [0, 1], "m:v1")
    assert numbered.label == 1 and numbered.probabilities == {"0": 0.2, "1": 0.8}


def test_the_openapi_schema_describes_the_three_forms():
    instance = Request.model_json_schema()["properties"]["instances"]["items"]
    positional, named, shaped = instance["anyOf"]
    assert [c["title"] for c in positional["prefixItems"]] == NAMES
    assert positional["minItems"] == positional["maxItems"] == 8
    assert named["required"] == NAMES and named["additionalProperties"] is False
    assert named["properties"]["length"]["maximum"] == 10
    assert named["properties"]["colour"]["enum"] == ["red", "green", "blue"]
    assert shaped["maxItems"] == 2 and shaped["items"]["maxItems"] == 4


def test_metadata_describes_the_input_from_the_spec():
    provenance = {
        "project": {"name": "demo", "description": "A demo", "extra": 1},
        "model": {
            "name": "demo-model",
            "version": "abc",
            "family": "anything",
            "architecture": "v",
            "classes": ["ant", "bee", "cat"],
            "features": NAMES,
            "spec": SPEC.model_dump(mode="json"),
        },
        "git_commit": "c0ffee",
        "data": {"dvc_file": "data.dvc", "md5": "d.dir"},
        "params": {"p": 1},
        "metrics": {"accuracy": 1.0},
        "gate": {"accepted": True},
    }
    meta = schemas.metadata_payload(
        "demo-model:abc", Provenance.model_validate(provenance), SPEC, 7, {"batched": False}
    )
    assert meta["project"] == {"name": "demo", "description": "A demo"}
    assert (meta["tag"], meta["family"], meta["classes"]) == (
        "demo-model:abc",
        "anything",
        ["ant", "bee", "cat"],
    )
    assert meta["input"]["max_rows"] == 7 and meta["input"]["shape"] == [2, 4]
    columns = {c["name"]: c for c in meta["input"]["columns"]}
    assert list(columns) == NAMES
    assert columns["length"] == {
        "name": "length",
        "kind": "numeric",
        "integer": False,
        "min": 0.0,
        "max": 10.0,
        "values": None,
        "nullable": False,
    }
    assert columns["shade"]["values"] == ["light", "dark"] and columns["shade"]["nullable"]
    assert meta["serving"] == {"batched": False}


def test_service_arguments_reject_unknown_keys_and_bad_values():
    assert ServiceArgs().max_rows == 1000
    with pytest.raises(ValidationError):
        ServiceArgs(max_row=5)
    with pytest.raises(ValidationError):
        ServiceArgs(max_rows=0)


@pytest.mark.parametrize(
    ("max_rows", "batch", "ok"), [(1000, None, True), (1000, 1000, True), (1000, 999, False),
                                  (1000, 5000, True), (10, 9, False), (10, 10, True)]
)  # fmt: skip
def test_a_merged_batch_always_holds_a_whole_request(max_rows, batch, ok):
    """A request larger than the batch is split into chunks computed one after another: every
    1000-row request was answered 503 with 64-row batches."""
    if not ok:
        with pytest.raises(ValidationError, match="below max_rows"):
            ServiceArgs(max_rows=max_rows, batch_max_size=batch)
        return
    args = ServiceArgs(max_rows=max_rows, batch_max_size=batch)
    assert args.batch_size == (batch or max_rows) and args.batch_size >= max_rows


@pytest.mark.parametrize(
    ("timeout_s", "latency_ms", "expected"),
    [(30, None, 20_000), (3, None, 2_000), (30, 29_999, 29_999), (30, 30_000, None),
     (30, 40_000, None), (0.001, None, 1)],
)  # fmt: skip
def test_the_batching_queue_limit_stays_below_the_timeout(timeout_s, latency_ms, expected):
    """Overload sheds a request (503 with Retry-After) before the timeout would answer 504."""
    if expected is None:
        with pytest.raises(ValidationError, match="below timeout_s"):
            ServiceArgs(timeout_s=timeout_s, batch_max_latency_ms=latency_ms)
        return
    args = ServiceArgs(timeout_s=timeout_s, batch_max_latency_ms=latency_ms)
    assert args.batch_latency_ms == expected


def test_batching_follows_the_family_unless_switched():
    assert [ServiceArgs().batched(b) for b in (True, False)] == [True, False]
    assert [ServiceArgs(batching="false").batched(b) for b in (True, False)] == [False, False]
    assert [ServiceArgs(batching="true").batched(b) for b in (True, False)] == [True, True]
    assert ServiceArgs().max_concurrency == 32
    with pytest.raises(ValidationError):
        ServiceArgs(max_concurrency=0)


def test_serving_names_no_model_family():
    """The service asks the family class (`batchable`), it never branches on a name."""
    serving = Path(schemas.__file__).parent
    names = [*contract.family_names(), "tensorflow"]
    for path in serving.glob("*.py"):
        text = path.read_text().lower()
        assert not [n for n in names if n in text], path


# ----------------------------------------------------------------------- tags


def test_the_version_is_a_hash_of_the_model_files(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text('{"family": "any"}')
    (model / "model.joblib").write_bytes(b"weights")
    first = store.model_version(model)
    assert store.model_version(model) == first and len(first) == store.VERSION_LENGTH
    (model / "model.joblib").write_bytes(b"weights2")
    assert store.model_version(model) != first
    assert store.model_tag("demo", model) == f"demo-model:{store.model_version(model)}"


@pytest.mark.parametrize("tag", ["demo-model", "demo-model:latest", "Bad:V1", "a:-x"])
def test_only_an_exact_valid_tag_is_served(tag):
    with pytest.raises(UserError):
        store.split_tag(tag)


def test_serving_without_a_packaged_model_names_the_fix(tmp_path):
    with pytest.raises(UserError) as caught:
        store.served_model_tag(None, root=tmp_path)
    assert "dvc repro package" in caught.value.hint
    assert store.served_model_tag("m:v1") == "m:v1"


# ----------------------------------------------------------------------- middleware


def call_middleware(
    limit: int, headers: dict[str, str], chunks: list[bytes], method: str = "POST"
) -> tuple[int, bytes, bytes | None]:
    """Drive RequestLimits with an inner app that echoes the body; returns status, body, seen."""
    seen: list[bytes] = []

    async def inner(scope, receive, send):
        message = await receive()
        seen.append(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = RequestLimits(inner, max_body_bytes=limit)
    sent = drive_asgi(app, headers=list(headers.items()), chunks=chunks, method=method)
    return sent[0]["status"], sent[1]["body"], seen[0] if seen else None


def test_a_body_within_the_limit_reaches_the_app_unchanged():
    status, _, seen = call_middleware(10, {"content-type": "application/json"}, [b"12345", b"67"])
    assert (status, seen) == (200, b"1234567")


def test_a_declared_oversized_body_gets_413_without_being_read():
    status, body, seen = call_middleware(10, {"content-length": "11"}, [b"x" * 11])
    assert status == 413 and seen is None
    assert "larger than the limit of 10 bytes" in json.loads(body)["error"]


@pytest.mark.parametrize(("size", "status"), [(10, 200), (11, 413), (0, 200)])
def test_a_declared_body_at_the_limit_passes_and_one_byte_over_gets_413(size, status):
    headers = {"content-type": "application/json", "content-length": str(size)}
    assert call_middleware(10, headers, [b"x" * size])[0] == status


@pytest.mark.parametrize(("size", "status"), [(10, 200), (11, 413)])
def test_a_streamed_body_at_the_limit_passes_and_one_byte_over_gets_413(size, status):
    chunks = [b"x" * (size - 3), b"x" * 3]  # no Content-Length: counted as it streams in
    assert call_middleware(10, {"content-type": "application/json"}, chunks)[0] == status


def test_a_streamed_body_is_cut_off_once_it_passes_the_limit():
    status, _, seen = call_middleware(10, {}, [b"x" * 6, b"x" * 6, b"x" * 100])
    assert status == 413 and seen is None


def test_only_json_bodies_are_accepted():
    status, body, _ = call_middleware(10, {"content-type": "text/plain"}, [b"{}"])
    assert status == 415 and "application/json" in json.loads(body)["error"]
    with_charset = {"content-type": "application/json; charset=utf-8"}
    assert call_middleware(10, with_charset, [b"{}"])[0] == 200
    assert call_middleware(10, {"content-length": "x1"}, [b"{}"])[0] == 400
    assert call_middleware(1, {"content-type": "text/plain"}, [b"{}"], method="GET")[0] == 200


# ----------------------------------------------------------------------- the service class


@pytest.fixture(scope="module")
def service_module(tmp_path_factory):
    """The real service module imported in this process, against a packaged project's store."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models import ModelStore

    root = packaged_project(tmp_path_factory, "service-units")
    previous_store = BentoMLContainer.model_store.get()
    previous_cwd = os.getcwd()
    BentoMLContainer.model_store.set(ModelStore(str(root / ".bentoml" / "models")))
    os.chdir(root)  # the dev path: the tag comes from ./artifacts/serving
    sys.modules.pop("mlops_template.serving.service", None)
    try:
        yield importlib.import_module("mlops_template.serving.service"), root
    finally:
        sys.modules.pop("mlops_template.serving.service", None)
        os.chdir(previous_cwd)
        BentoMLContainer.model_store.set(previous_store)


@pytest.mark.slow
def test_the_service_class_predicts_like_the_offline_model(service_module):
    module, root = service_module
    assert store.model_tag(SYNTH_PROJECT, root / "artifacts" / "serving") == module.MODEL_TAG
    # No training library at serve time: checked in a fresh interpreter (this process may have
    # imported any of them for other tests).
    assert module.FAMILY == "sklearn"
    assert module.BATCHED is False  # the family does not declare `batchable`
    service = module.Classifier()
    offline = load_model(root / "artifacts" / "model")
    frame = split_frame(root)
    rows = json_instances(frame, offline.spec)
    assert any(None in row for row in rows)  # the nullable column is exercised
    named = [dict(zip(SYNTH_FEATURES, row, strict=True)) for row in rows]
    shaped = [[row[:3], row[3:]] for row in rows]
    expected = offline.predict_proba(frame)
    for form in (rows, named, shaped):
        instances = TypeAdapter(module.Instances).validate_python(form)
        answers = service.predict(instances=instances)
        assert [a.label for a in answers] == offline.predict(frame)
        assert {a.label for a in answers} <= set(SYNTH_CLASSES)
        served = [[a.probabilities[str(c)] for c in offline.classes] for a in answers]
        np.testing.assert_allclose(served, expected, atol=PROBA_TOLERANCE)  # ONNX vs trained
        assert {a.model_version for a in answers} == {module.MODEL_TAG}


@pytest.mark.slow
def test_the_service_loads_no_training_library_and_unpickles_nothing(tmp_path_factory):
    """A fresh interpreter imports the service and loads the model, as a bento does: with the
    exact tag as its argument (the dev path reads params.yaml, which names the families)."""
    root = packaged_project(tmp_path_factory, "service-imports")
    tag = store.model_tag(SYNTH_PROJECT, root / "artifacts" / "serving")
    script = (
        "import pickle, sys\n"
        "loads = []\n"
        "pickle.load = lambda *a, **k: loads.append(a)\n"
        "pickle.loads = lambda *a, **k: loads.append(a)\n"
        "from bentoml._internal.configuration.containers import BentoMLContainer\n"
        f"BentoMLContainer.bento_arguments.set({{'model_tag': {tag!r}}})\n"
        "from mlops_template.serving import service\n"
        "service.Classifier()\n"
        "heavy = {'sklearn', 'joblib', 'lightgbm', 'tensorflow', 'keras', 'skl2onnx', 'onnx'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}), len(loads))\n"
        "print(sorted(m for m in sys.modules if m.startswith('mlops_template.custom')))\n"
    )
    done = run(root, sys.executable, "-c", script)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-2:] == ["[] 0", "[]"]


@pytest.mark.slow
def test_the_service_class_describes_its_model(service_module):
    module, root = service_module
    meta = module.Classifier().metadata()
    version = module.MODEL_TAG.split(":")[1]
    model_dir = root / ".bentoml" / "models" / store.model_name(SYNTH_PROJECT) / version
    record = store.read_provenance(model_dir).to_json()
    assert meta["tag"] == module.MODEL_TAG
    assert meta["project"]["name"] == SYNTH_PROJECT and meta["project"]["description"]
    assert meta["family"] == "sklearn" and meta["classes"] == SYNTH_CLASSES
    assert meta["gate"]["accepted"] is True
    assert (meta["params"], meta["metrics"], meta["data_md5"]) == (
        record["params"],
        record["metrics"],
        record["data"]["md5"],
    )
    columns = {c["name"]: c for c in meta["input"]["columns"]}
    assert list(columns) == SYNTH_FEATURES
    assert (columns["legs"]["integer"], columns["legs"]["min"], columns["legs"]["max"]) == (
        True,
        0,
        12,
    )
    assert columns["colour"]["values"] == ["red", "green", "blue"]
    assert columns["weight_g"]["nullable"] is True
    assert meta["input"]["shape"] == [2, 3] and meta["input"]["max_rows"] == 1000
    assert meta["serving"]["batched"] is False
