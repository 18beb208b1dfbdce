"""``make bench``: the whole study from data to firmware, written to ``docs/results.md``,
``docs/results.json`` and plots — every figure produced by the run itself (or by a cached stage
of an earlier run with identical inputs). Run with ``python -m pla_tvm.bench``."""
