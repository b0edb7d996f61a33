"""The parts a forker replaces: where the example data comes from and how models are built.

Everything outside this package (stages, gate, report, packaging, CI) is generic and kept.
"""
