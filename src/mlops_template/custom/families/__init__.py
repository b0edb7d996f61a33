"""The model families of this project: one module per family, named after it (train.family).

Replace or add your own: a module `<name>.py` with a `Family` class derived from
`mlops_template.contract.ModelFamily`, a `train.<name>` block in params.yaml, and, when it needs
packages of its own, a uv extra named `<name>` in pyproject.toml. `_tabular.py` is a helper the
examples share (scaling, imputation and one-hot encoding driven by the schema).
"""
