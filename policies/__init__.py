"""ai-platform-guardrails: the CrossGuard policy pack that gates every change of the program.

Policies live one per module under ``policies/<vendor>/<service>/``; ``registry.ALL_POLICIES`` lists
them and ``__main__.py`` (run by the Pulumi CLI) is the only place that builds the ``PolicyPack``.
"""
