"""Where training runs: `train.compute` in params.yaml.

- `local` (the default): the train stage fits the model in its own process.
- `ray`: the fit, through the same model contract, runs on the Ray cluster at RAY_ADDRESS:
  data-parallel on `num_workers` workers when the family gives a Ray Train trainer
  (`ray_trainer`, see `ray_train.py`), otherwise the family's one-process fit on one worker
  (`remote.py`). The stage writes the same artifacts/model/ and dvclive/ files, so DVC, the
  gate and the release see no difference. `mlops sweep` (`sweep.py`) searches the
  family's hyperparameters with Ray Tune on the same cluster.

`cluster.py` connects, and checks first that the cluster can be reached at all, so a wrong
RAY_ADDRESS is one message and nothing is deleted.
"""
