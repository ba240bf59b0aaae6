"""Packaging and local serving of the models under model-handlers/ (`aip package`, `aip serve`).

Nothing here imports torch, TorchServe or KServe at import time: training, archiving and serving run
in child processes, so the Pulumi program can read a package manifest (`infra.serving.manifest`)
without the serving dependencies.
"""
