"""Training and inference of a multi-exit network: the training loop (:mod:`.loop`), ranks and data-parallel
training (:mod:`.distributed`), the checkpoint's fingerprint (:mod:`.fingerprint`), training a benchmark as one call
(:mod:`.job`: :func:`~eenet.training.job.train_benchmark`) and predictions over a split (:mod:`.inference`).

Nothing is imported here: a step that only predicts does not depend on the training loop.
"""
