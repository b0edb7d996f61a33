"""Operating the served model: drift of the prediction log against the training split
(`mlops monitor drift`), the one GitHub issue that tracks it (`mlops monitor issue`) and the
project's Prometheus series (`mlops monitor rules`)."""
