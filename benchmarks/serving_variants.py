"""Tuning set-ups of benchmarks/serving.py (`--variants`): model-config overrides measured next to the shipped settings.

A variant is a named set of `model-config.yaml` overrides for one runtime. It gets a server of its own,
hosting every model with the overrides applied to each model's parsed config, and it is measured in
the same rounds as the shipped settings, so the figures that decide the shipped defaults come from the
same machine states.

How the overrides reach the servers:
- TorchServe: the frontend takes workers and batching from `model_snapshot` in config.properties,
  rendered from the parsed config, but each worker reads the `model-config.yaml` inside the archive
  (TorchServe hands it to the handler as `context.model_yaml_config`): `torchThreads`, and `minWorkers`,
  which divides the CPUs among the workers when `torchThreads` is unset (aip_serving.threads). The
  variant's server therefore serves copies of the archives whose `model-config.yaml` carries the same
  overrides, so the frontend and its workers agree.
- KServe: the host process reads `batch_size` (its in-process batcher) and `torch_threads` from the spec
  infra/serving/kserve_process.py writes from the parsed config; the archive only provides the weights.

The raw reference stays one process with the shipped torch threads, at the largest batchSize of the
set-ups measured. A set-up with more workers runs forward passes side by side and could in principle
beat it; the served/raw bound then refuses the figure rather than printing a ratio above 1.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from serving_models import BenchModel

from infra.serving.catalog import CONFIG_FILE, ModelConfig
from infra.serving.fingerprint import sha256_file
from infra.serving.local_server import ServedModel
from infra.serving.manifest import mar_path

MANIFEST_ENTRY = "MAR-INF/MANIFEST.json"


@dataclass(frozen=True)
class Variant:
    """One tuning set-up: overrides of every model's config, for one runtime.

    Attributes:
        name: What `--variants` takes and the `setup` of its results.
        runtime: `torchserve` or `kserve`.
        overrides: ModelConfig field names and the values they take.
        description: What the set-up means in processes and threads.
    """

    name: str
    runtime: str
    overrides: Mapping[str, int]
    description: str

    def apply(self, config: ModelConfig) -> ModelConfig:
        """`config` with the overrides, validated again (model_copy alone would accept maxWorkers < minWorkers)."""
        return ModelConfig.model_validate(config.model_copy(update=dict(self.overrides)).model_dump())

    def yaml_overrides(self) -> dict[str, int]:
        """The overrides under their model-config.yaml keys (minWorkers, batchSize, ...)."""
        fields = ModelConfig.model_fields
        return {fields[name].alias or name: value for name, value in self.overrides.items()}

    def describe(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.yaml_overrides().items())


def _workers(count: int) -> dict[str, int]:
    return {"min_workers": count, "max_workers": count}


# The three models' model-config.yaml files ask TorchServe for one worker per model (minWorkers 1;
# TorchServe never scales up to maxWorkers by itself) with every CPU's torch thread, dynamic batching of
# up to batchSize requests, and maxBatchDelay 5 ms. Each variant changes one of those, or two that
# belong together; ts-2w-delay5 pins the delay, so it stays comparable if a shipped delay changes (today
# it serves as ts-2w does).
VARIANTS: Mapping[str, Variant] = {v.name: v for v in (
    Variant("ts-1w", "torchserve", _workers(1), "1 TorchServe worker per model with every CPU's torch threads"),
    Variant("ts-2w", "torchserve", _workers(2),
            "2 TorchServe workers per model, each with half the CPUs' torch threads"),
    Variant("ts-1w-nobatch", "torchserve", {**_workers(1), "batch_size": 1},
            "1 TorchServe worker per model, no dynamic batching (one request per forward pass)"),
    Variant("ts-2w-nobatch", "torchserve", {**_workers(2), "batch_size": 1},
            "2 TorchServe workers per model, half the CPUs' threads each, no dynamic batching"),
    Variant("ts-2w-delay5", "torchserve", {**_workers(2), "max_batch_delay": 5},
            "2 TorchServe workers per model, batches wait at most 5 ms to fill"),
    Variant("ts-2w-delay1", "torchserve", {**_workers(2), "max_batch_delay": 1},
            "2 TorchServe workers per model, batches wait at most 1 ms to fill"),
    Variant("ts-2w-1t", "torchserve", {**_workers(2), "torch_threads": 1},
            "2 TorchServe workers per model x 1 torch thread each"),
    Variant("ks-nobatch", "kserve", {"batch_size": 1},
            "KServe without its in-process batcher (one request per forward pass)"),
    Variant("ks-1t", "kserve", {"torch_threads": 1}, "KServe process with 1 torch thread"),
)}

# One question each about a shipped default, with one setting changed: more workers (TorchServe), and
# dynamic batching on each runtime. Each variant adds a v1-json target to every round: 8-10 s per round
# and model in a full run, about 2.3 minutes over the three models' 5 rounds and more with extra rounds.
# Three keep the full run at about 23 minutes on 2 cores (15 without), and the extra servers at about
# 3 GiB (a TorchServe worker holds about 250 MiB, and ts-2w starts two per model).
DEFAULT_VARIANTS = ("ts-1w", "ts-2w-nobatch", "ks-nobatch")


def parse_variants(text: str) -> tuple[Variant, ...]:
    """Comma-separated variant names, in the order given, each once; `default` stands for DEFAULT_VARIANTS.

    Raises:
        ValueError: A name is unknown (the message lists the choices), or none is given.
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    names = [part for name in names for part in (DEFAULT_VARIANTS if name == "default" else (name,))]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)} "
                         f"(alone, --variants means {','.join(DEFAULT_VARIANTS)})")
    if not names:
        raise ValueError(f"no variant named; choose from {', '.join(VARIANTS)}")
    return tuple(VARIANTS[name] for name in dict.fromkeys(names))


def describe_variants(variants: Sequence[Variant]) -> dict[str, dict[str, Any]]:
    """What the results file records of each variant."""
    return {v.name: {"runtime": v.runtime, "overrides": v.yaml_overrides(), "description": v.description}
            for v in variants}


def archived_config(text: str, variant: Variant) -> str:
    """An archive's model-config.yaml with the variant's overrides (the other keys as they were)."""
    config = yaml.safe_load(text) or {}
    if not isinstance(config, dict):
        raise ValueError(f"{CONFIG_FILE} in the archive is not a mapping")
    config.update(variant.yaml_overrides())
    return yaml.safe_dump(config, sort_keys=False)


def rewrite_archive(source: Path, target: Path, variant: Variant) -> None:
    """A copy of the .mar at `source` whose model-config.yaml carries the variant's overrides."""
    with zipfile.ZipFile(source) as archive:
        manifest = json.loads(archive.read(MANIFEST_ENTRY))
        config_entry = manifest.get("model", {}).get("configFile") or CONFIG_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w") as copy:
            for info in archive.infolist():
                data = archive.read(info)
                if info.filename == config_entry:
                    data = archived_config(data.decode("utf-8"), variant).encode("utf-8")
                copy.writestr(info, data)


def variant_model(model: BenchModel, variant: Variant, folder: Path) -> BenchModel:
    """`model` as the variant's server hosts it: the overridden config, and for TorchServe an archive that
    carries it (written under `folder`)."""
    served = model.served
    configured = replace(served.folder, config=variant.apply(served.folder.config))
    package = served.package
    if variant.runtime == "torchserve":
        entry = mar_path(model.name)
        archive = folder / variant.name / f"{model.name}.mar"
        rewrite_archive(package.files[entry], archive, variant)
        package = package.model_copy(update={"files": {**package.files, entry: archive},
                                             "sha256": {**package.sha256, entry: sha256_file(archive)}})
    return replace(model, served=ServedModel(configured, served.runtime_dir, package))

