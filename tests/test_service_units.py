"""The service's parts in-process: request validation, the body-limit middleware, tags, metrics,
and the BentoML service class itself called directly (no HTTP)."""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os
import sys
from typing import Any

import numpy as np
import pytest
from helpers_serving import packaged_project
from pydantic import ValidationError

from mlops_template.errors import UserError
from mlops_template.model_io import load_model
from mlops_template.serving import schemas, store
from mlops_template.serving.config import ServiceArgs
from mlops_template.serving.middleware import RequestLimits

COLUMNS = {"pixel_[0-7]_[0-7]": {"regex": True, "dtype": "int64", "min": 0, "max": 16}}
FEATURES = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
SPEC = schemas.InputSpec(n_features=64, low=0.0, high=16.0, max_rows=5)
Request = schemas.request_model(SPEC)


def validate(instances: Any) -> list[list[float]]:
    return Request.model_validate({"instances": instances}).instances


def errors(instances: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        validate(instances)
    return caught.value.errors()


# ----------------------------------------------------------------------- validation


def test_a_row_and_the_same_image_as_a_grid_are_the_same_instance():
    row = [float(i % 17) for i in range(64)]
    grid = [row[r * 8 : r * 8 + 8] for r in range(8)]
    assert validate([row, grid]) == [row, row]
    assert validate([[0] * 64]) == [[0.0] * 64]  # integers are numbers too


@pytest.mark.parametrize(
    ("instances", "kind", "where", "says"),
    [
        ([], "too_short", ("instances",), "at least 1 item"),
        ([[0] * 64] * 6, "too_long", ("instances",), "at most 5 items"),
        ([[0] * 63], "too_short", ("instances", 0), "must be 64 numbers"),
        ([[0] * 65], "too_long", ("instances", 0), "must be 64 numbers"),
        ([[0] * 64, "abc"], "list_type", ("instances", 1), "valid list"),
        ([["3"] * 64], "float_type", ("instances", 0), "value 0: Input should be a valid number"),
        ([[True, *[0] * 63]], "float_type", ("instances", 0), "value 0:"),
        ([[None, *[0] * 63]], "float_type", ("instances", 0), "value 0:"),
        ([[math.nan, *[0] * 63]], "finite_number", ("instances", 0), "value 0: "),
        ([[*[0] * 63, math.inf]], "finite_number", ("instances", 0), "value 63: "),
        ([[-1, *[0] * 63]], "greater_than_equal", ("instances", 0), "greater than or equal to 0"),
        ([[16.5, *[0] * 63]], "less_than_equal", ("instances", 0), "less than or equal to 16"),
        ([[[0] * 8] * 7], "value_error", ("instances", 0), "8 rows of 8"),
        ([[[0] * 8] * 7 + [[0] * 9]], "value_error", ("instances", 0), "8 rows of 8"),
    ],
    ids=[
        "empty",
        "too-many-rows",
        "short-row",
        "long-row",
        "row-not-a-list",
        "strings",
        "boolean",
        "null",
        "nan",
        "infinity",
        "negative",
        "above-range",
        "grid-7-rows",
        "ragged-grid",
    ],
)
def test_bad_instances_are_refused_with_where_and_why(instances, kind, where, says):
    found = errors(instances)
    assert any(
        e["type"] == kind and tuple(e["loc"]) == where and says in e["msg"] for e in found
    ), found


def test_each_bad_instance_reports_one_problem_and_counts_the_rest():
    found = errors([[math.nan] * 64, [0] * 64, [-1, 17, *[0] * 62]])
    assert [tuple(e["loc"]) for e in found] == [("instances", 0), ("instances", 2)]
    assert found[0]["msg"].endswith("(and 63 more problems in this instance)")
    assert found[1]["msg"].endswith("(and 1 more problem in this instance)")


def test_a_ragged_grid_says_what_shape_is_expected():
    (error,) = errors([[[0] * 8] * 7 + [[0] * 9]])
    assert "64 numbers (or 8 rows of 8) from 0 to 16" in error["msg"]
    assert "got row lengths [8, 8, 8, 8, 8, 8, 8, 9]" in error["msg"]


def test_value_bounds_come_from_the_params_schema():
    assert schemas.feature_bounds(COLUMNS, FEATURES) == (0.0, 16.0)
    assert schemas.feature_bounds({"pixel_0_0": {"min": 0}}, FEATURES) == (None, None)
    unbounded = schemas.InputSpec(64, None, None, 5)
    assert schemas.request_model(unbounded).model_validate({"instances": [[-5] * 64]})
    assert schemas.InputSpec(10).side is None and SPEC.side == 8


def test_each_instance_gets_its_label_confidence_and_probabilities():
    proba = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    first, second = schemas.predictions(proba, [0, 1, 2], "m:v1")
    assert (first.label, first.confidence) == (1, 0.7)
    assert second.label == 0
    assert first.probabilities == {"0": 0.1, "1": 0.7, "2": 0.2}
    assert first.model_version == second.model_version == "m:v1"


def test_service_arguments_reject_unknown_keys_and_bad_values():
    assert ServiceArgs().max_rows == 1000
    with pytest.raises(ValidationError):
        ServiceArgs(max_row=5)
    with pytest.raises(ValidationError):
        ServiceArgs(max_rows=0)


# ----------------------------------------------------------------------- tags


def test_the_version_is_a_hash_of_the_model_files(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text('{"family": "sklearn"}')
    (model / "model.joblib").write_bytes(b"weights")
    first = store.model_version(model)
    assert store.model_version(model) == first and len(first) == store.VERSION_LENGTH
    (model / "model.joblib").write_bytes(b"weights2")
    assert store.model_version(model) != first
    assert store.model_tag(model) == f"{store.MODEL_NAME}:{store.model_version(model)}"


@pytest.mark.parametrize("tag", ["digits-model", "digits-model:latest", "Bad:V1", "a:-x"])
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

    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": "/predict",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(RequestLimits(inner, max_body_bytes=limit)(scope, receive, send))
    return sent[0]["status"], sent[1]["body"], seen[0] if seen else None


def test_a_body_within_the_limit_reaches_the_app_unchanged():
    status, _, seen = call_middleware(10, {"content-type": "application/json"}, [b"12345", b"67"])
    assert (status, seen) == (200, b"1234567")


def test_a_declared_oversized_body_gets_413_without_being_read():
    status, body, seen = call_middleware(10, {"content-length": "11"}, [b"x" * 11])
    assert status == 413 and seen is None
    assert "larger than the limit of 10 bytes" in json.loads(body)["error"]


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
    os.chdir(root)  # the dev path: the tag comes from ./artifacts/model
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
    assert store.model_tag(root / "artifacts" / "model") == module.MODEL_TAG
    assert module.FAMILY == "sklearn" and "tensorflow" not in sys.modules
    service = module.Classifier()
    offline = load_model(root / "artifacts" / "model")
    rows = np.arange(3 * 64, dtype=np.float32).reshape(3, 64) % 17
    answers = service.predict(instances=rows.tolist())
    assert [a.label for a in answers] == offline.predict(rows)
    served = [[a.probabilities[str(c)] for c in offline.classes] for a in answers]
    np.testing.assert_allclose(served, offline.predict_proba(rows))
    assert {a.model_version for a in answers} == {module.MODEL_TAG}
    assert module.BATCHED is False  # scikit-learn answers each request directly


@pytest.mark.slow
def test_the_service_class_describes_its_model(service_module):
    module, root = service_module
    meta = module.Classifier().metadata()
    record = json.loads(
        (
            root
            / ".bentoml"
            / "models"
            / store.MODEL_NAME
            / module.MODEL_TAG.split(":")[1]
            / store.PROVENANCE
        ).read_text()
    )
    assert meta["tag"] == module.MODEL_TAG
    assert meta["family"] == "sklearn"
    assert meta["gate"]["accepted"] is True
    assert (meta["params"], meta["metrics"], meta["data_md5"]) == (
        record["params"],
        record["metrics"],
        record["data"]["md5"],
    )
    assert meta["input"] == {
        "n_features": 64,
        "image_side": 8,
        "min": 0.0,
        "max": 16.0,
        "max_rows": 1000,
    }
    assert meta["serving"]["batched"] is False
