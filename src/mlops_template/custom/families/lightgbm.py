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

    def ray_trainer(self, trainer_args: dict[str, Any]) -> Any:
        """Data-parallel on Ray: Ray Train's LightGBM trainer (it connects the workers'
        LightGBM), each worker fitting this family's pipeline on its share of the rows."""
        from ray.train.lightgbm import LightGBMTrainer

        from mlops_template.compute.ray_train import worker_loop

        return LightGBMTrainer(worker_loop(_fit_share), **trainer_args)


# Set by Ray Train on each worker for the fit; a saved model must not keep them (ports vary).
NETWORK_PARAMS = ("machines", "local_listen_port", "num_machines", "time_out")


def _fit_share(model: Family, X: Any, y: Any, live: Any, rank: int, world_size: int) -> None:
    """One worker's part: the preprocessing is fitted on all rows (each worker gets them all,
    so every worker computes the same statistics: medians, means, scales), then the trees are
    grown data-parallel from each worker's share (every `world_size`-th row from `rank`),
    LightGBM summing the shares' histograms over the network. The result is the same kind of
    model as `fit` makes: the scikit-learn pipeline of the preprocessing and an LGBMClassifier."""
    import lightgbm
    import numpy as np
    from ray.train.lightgbm import get_network_params
    from sklearn.pipeline import make_pipeline

    from mlops_template.custom.families._tabular import preprocessor
    from mlops_template.errors import UserError

    share = np.arange(rank, len(y), world_size)
    lacking = sorted(set(range(len(model.spec.classes))) - set(y[share].tolist()))
    if lacking:
        names = ", ".join(str(model.spec.classes[i]) for i in lacking[:5])
        raise UserError(
            f"worker {rank}'s share of the train split ({len(share)} rows) has no row of "
            f"class {names}: every worker must see every class",
            "lower train.compute.num_workers, or train on more rows",
        )
    prep = preprocessor(model.spec).fit(X)
    classifier = model.estimator()
    classifier.set_params(tree_learner="data_parallel", pre_partition=True, **get_network_params())
    classifier.fit(prep.transform(X.iloc[share]), y[share])
    for key in NETWORK_PARAMS:
        classifier._other_params.pop(key, None)
        classifier.__dict__.pop(key, None)
    text = classifier.booster_.model_to_string()
    network_lines = tuple(f"[{key}:" for key in NETWORK_PARAMS)
    kept = [line for line in text.splitlines() if not line.startswith(network_lines)]
    classifier._Booster = lightgbm.Booster(model_str="\n".join(kept) + "\n")
    model.model = make_pipeline(prep, classifier)
