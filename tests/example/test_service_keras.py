"""The example's keras path end to end, kept lean: a 2-epoch model of the example data (digits)
packaged (its ONNX export), built into a bento that installs ONNX Runtime and no TensorFlow,
served from a fresh BentoML home (with adaptive batching, as the family declares), and checked
against the offline model on the whole test split. A test of the example: a fork that replaces
the example deletes it."""

from __future__ import annotations

import shutil

from helpers_serving import REPO, mlops, packaged_project
from test_keras_onnx import KERAS_SLOW
from test_release_bento import (
    CONVERTERS,
    LOCK_FILES,
    SERVICE_PACKAGES,
    TRAINING_PACKAGES,
    requirement_names,
)

from mlops_template.serving import store

pytestmark = KERAS_SLOW


def test_a_packaged_keras_model_serves_its_offline_predictions(tmp_path_factory):
    root = packaged_project(tmp_path_factory, "keras", family="keras", epochs=2, dataset="digits")
    for lock_file in LOCK_FILES:  # the bento installs the locked packages, as a release does
        shutil.copy2(REPO / lock_file, root / lock_file)
    built = mlops(root, "release", "build", "--version", "v0.1.0", "--out", "dist")
    assert built.returncode == 0, built.stderr
    bento = root / "dist" / f"{store.bento_name('digits')}-v0.1.0.bento"
    names = requirement_names(bento)
    assert names >= SERVICE_PACKAGES
    assert not (TRAINING_PACKAGES | CONVERTERS) & names  # no TensorFlow: the bento serves ONNX

    smoke = mlops(root, "release", "smoke", str(bento), "--timeout", "240")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "450/450 labels agree with the offline model" in smoke.stdout
