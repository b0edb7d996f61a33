"""scikit-learn classifiers behind the schema-driven preprocessing: a calibrated RBF SVC or a
logistic regression."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mlops_template.contract import StrictParams
from mlops_template.custom.families._tabular import PipelineFamily


class SvcParams(StrictParams):
    C: float = Field(gt=0)
    gamma: float | Literal["scale", "auto"]


class LogregParams(StrictParams):
    C: float = Field(gt=0)
    max_iter: int = Field(ge=1)


class SklearnParams(StrictParams):
    estimator: Literal["svc", "logreg"]
    svc: SvcParams
    logreg: LogregParams


class Family(PipelineFamily):
    Params = SklearnParams

    def describe(self) -> str:
        return self.params.estimator

    def estimator(self) -> Any:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import SVC

        p = self.params
        if p.estimator == "svc":
            # Probabilities calibrated on internal folds: the service returns them.
            svc = SVC(C=p.svc.C, gamma=p.svc.gamma, random_state=self.seed)
            return CalibratedClassifierCV(svc, ensemble=False)
        return LogisticRegression(C=p.logreg.C, max_iter=p.logreg.max_iter)
