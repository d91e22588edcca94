"""Measurement and the runtime: per-exit costs (:mod:`.costs`) and the adaptive runtime that really exits
(:mod:`.runtime`)."""
