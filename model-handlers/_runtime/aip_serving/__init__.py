"""Shared serving runtime of the AI platform's models.

Shipped at the root of every TorchServe archive and every KServe predictor image, next to one model
folder's files. Modules, one concept each:

- :mod:`aip_serving.errors`: errors that map to HTTP statuses.
- :mod:`aip_serving.checks`: value checks that name the offending JSON path.
- :mod:`aip_serving.protocol`: the KServe v1 body (``{"instances": [...]}``), decoded and validated.
- :mod:`aip_serving.core`: :class:`~aip_serving.core.ModelCore`, the runtime-neutral model core.
- :mod:`aip_serving.torchserve`: the TorchServe handler template.
- :mod:`aip_serving.kserve`: the KServe model template and ``serve()``.
- :mod:`aip_serving.logs`: one ECS JSON record per request.
- :mod:`aip_serving.metrics`: the KServe server's request counter by model and HTTP status.
- :mod:`aip_serving.model_config`: ``model-config.yaml`` settings the runtime reads.
- :mod:`aip_serving.training`: reproducible training (seeds, one thread, weights and metrics files).

Importing this package imports nothing else: the adapters pull in TorchServe or KServe only when their
own module is imported, so a KServe image never needs TorchServe and the other way round.
"""
