"""Gradient-boosted trees with LightGBM (the `lightgbm` extra), behind the same schema-driven
preprocessing as the scikit-learn family. The example of a family from another library: this
file, its `train.lightgbm` block in params.yaml and the `lightgbm` extra are all it took; its
ONNX export (what the service runs) uses onnxmltools' converter, in the extra too."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mlops_template.contract import StrictParams
from mlops_template.custom.families._tabular import PipelineFamily


class LightgbmParams(StrictParams):
    n_estimators: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    num_leaves: int = Field(ge=2)
    min_child_samples: int = Field(ge=1)


class Family(PipelineFamily):
    Params = LightgbmParams

    def estimator(self) -> Any:
        from lightgbm import LGBMClassifier

        p = self.params
        return LGBMClassifier(
            n_estimators=p.n_estimators,
            learning_rate=p.learning_rate,
            num_leaves=p.num_leaves,
            min_child_samples=p.min_child_samples,
            random_state=self.seed,
            deterministic=True,
            force_row_wise=True,
            n_jobs=1,  # the same trees whatever the machine's core count
            verbose=-1,
        )

    def register_converter(self) -> None:
        """onnxmltools' LightGBM converter, registered with skl2onnx, so the preprocessing
        and the trees convert as one graph."""
        from lightgbm import LGBMClassifier
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
        from skl2onnx import update_registered_converter
        from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

        update_registered_converter(
            LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
        )
