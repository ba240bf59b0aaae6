"""Tuning set-ups of benchmarks/serving.py (`--variants`): parsing, overrides, archives, servers' wiring, lines."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import serving
import yaml
from pydantic import ValidationError
from serving_models import BenchModel
from serving_plan import KSERVE_V1, SHIPPED, TARGETS, TORCHSERVE_V1, Target, raw_batch_sizes, targets_with
from serving_report import markdown_table, result_lines
from serving_rounds import judge_rounds
from serving_servers import Servers, torchserve_config_problems
from serving_variants import (
    DEFAULT_VARIANTS,
    VARIANTS,
    Variant,
    archived_config,
    parse_variants,
    rewrite_archive,
    variant_model,
)
from serving_verdict import Bounds

from infra.serving.catalog import CONFIG_FILE, MODEL_HANDLERS, ModelConfig, ModelFolder, load_model_config
from infra.serving.local_server import ServedModel
from infra.serving.manifest import PackagedModel, mar_path

DIGITS_YAML = MODEL_HANDLERS / "digits" / CONFIG_FILE
SHIPPED_DIGITS = load_model_config(DIGITS_YAML)
TS_2W = Target("torchserve", "v1-json", "ts-2w")


# -- choosing variants ------------------------------------------------------------------------------


def test_variants_are_picked_in_order_once_and_default_stands_for_the_default_list():
    assert [v.name for v in parse_variants("ts-2w, ks-nobatch,ts-2w")] == ["ts-2w", "ks-nobatch"]
    assert [v.name for v in parse_variants("default")] == list(DEFAULT_VARIANTS)
    assert [v.name for v in parse_variants("ks-1t,default")] == ["ks-1t", *DEFAULT_VARIANTS]


def test_an_unknown_variant_names_every_choice():
    with pytest.raises(ValueError) as raised:
        parse_variants("ts-2w,ts-9w")
    assert str(raised.value).startswith("unknown variants ['ts-9w']; choose from ts-1w, ts-2w, ")
    assert all(name in str(raised.value) for name in VARIANTS)
    with pytest.raises(ValueError, match="no variant named"):
        parse_variants(" , ")


def test_the_command_line_takes_variants_alone_or_named_and_rejects_unknown_ones(capsys):
    parser = serving.build_parser()
    assert parser.parse_args([]).variants == ()
    assert [v.name for v in parser.parse_args(["--variants", "--quick"]).variants] == list(DEFAULT_VARIANTS)
    assert [v.name for v in parser.parse_args(["--variants", "ts-2w,ks-nobatch"]).variants] == ["ts-2w", "ks-nobatch"]
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--variants", "fast"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "argument --variants: unknown variants ['fast']; choose from ts-1w, ts-2w, ts-1w-nobatch" in error


def test_the_default_variants_exist_and_each_runtime_has_its_own_prefix():
    assert set(DEFAULT_VARIANTS) <= set(VARIANTS)
    for variant in VARIANTS.values():
        assert variant.runtime == {"ts": "torchserve", "ks": "kserve"}[variant.name.split("-")[0]]


# -- overrides --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "changed"), [
    ("ts-1w", {"min_workers": 1, "max_workers": 1}),
    ("ts-2w", {"min_workers": 2, "max_workers": 2}),
    ("ts-2w-nobatch", {"min_workers": 2, "max_workers": 2, "batch_size": 1}),
    ("ts-1w-nobatch", {"min_workers": 1, "max_workers": 1, "batch_size": 1}),
    ("ts-2w-delay5", {"min_workers": 2, "max_workers": 2, "max_batch_delay": 5}),
    ("ts-2w-1t", {"min_workers": 2, "max_workers": 2, "torch_threads": 1}),
    ("ks-nobatch", {"batch_size": 1}),
    ("ks-1t", {"torch_threads": 1}),
])
def test_overrides_change_exactly_their_fields_of_the_shipped_config(name, changed):
    configured = VARIANTS[name].apply(SHIPPED_DIGITS)
    assert isinstance(configured, ModelConfig)
    assert configured.model_dump() == {**SHIPPED_DIGITS.model_dump(), **changed}


def test_overrides_are_validated_like_a_model_config_yaml():
    with pytest.raises(ValidationError, match="maxWorkers"):
        Variant("x", "torchserve", {"max_workers": 1}, "").apply(SHIPPED_DIGITS.model_copy(update={"min_workers": 2}))


def test_a_variant_describes_its_overrides_with_the_yaml_keys():
    assert VARIANTS["ts-2w-1t"].yaml_overrides() == {"minWorkers": 2, "maxWorkers": 2, "torchThreads": 1}
    assert VARIANTS["ks-nobatch"].describe() == "batchSize=1"


def test_the_archived_config_carries_the_overrides_and_keeps_the_rest(tmp_path):
    variant = VARIANTS["ts-2w-1t"]
    written = tmp_path / CONFIG_FILE
    written.write_text(archived_config(DIGITS_YAML.read_text(), variant))
    assert load_model_config(written) == variant.apply(SHIPPED_DIGITS)
    assert yaml.safe_load(written.read_text())["maxBatchInstances"] == SHIPPED_DIGITS.max_batch_instances


# -- archives and models as a variant's server hosts them -------------------------------------------


def a_mar(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("MAR-INF/MANIFEST.json", json.dumps({"model": {"configFile": CONFIG_FILE}}))
        archive.writestr(CONFIG_FILE, DIGITS_YAML.read_text())
        archive.writestr("weights.pt", b"\x00weights")
    return path


def a_model(tmp_path: Path) -> BenchModel:
    mar = a_mar(tmp_path / "store" / "digits.mar")
    folder = ModelFolder(name="digits", path=MODEL_HANDLERS / "digits", config=SHIPPED_DIGITS, examples=())
    package = PackagedModel(version="0123456789ab", files={mar_path("digits"): mar},
                            sha256={mar_path("digits"): "0" * 64})
    return BenchModel(ServedModel(folder, MODEL_HANDLERS / "_runtime", package), instances=([0] * 64,))


def archived_yaml(mar: Path) -> dict[str, Any]:
    with zipfile.ZipFile(mar) as archive:
        return yaml.safe_load(archive.read(CONFIG_FILE))


def test_the_rewritten_archive_differs_only_in_its_config(tmp_path):
    source = a_mar(tmp_path / "digits.mar")
    target = tmp_path / "copy" / "digits.mar"
    rewrite_archive(source, target, VARIANTS["ts-1w"])
    with zipfile.ZipFile(source) as before, zipfile.ZipFile(target) as after:
        assert before.namelist() == after.namelist()
        assert all(before.read(name) == after.read(name) for name in before.namelist() if name != CONFIG_FILE)
    assert archived_yaml(target)["minWorkers"] == 1 and archived_yaml(source)["minWorkers"] == 2


def test_a_torchserve_variant_serves_an_archive_that_agrees_with_its_snapshot(tmp_path):
    model = a_model(tmp_path)
    hosted = variant_model(model, VARIANTS["ts-2w-1t"], tmp_path / "archives")
    assert hosted.served.folder.config == VARIANTS["ts-2w-1t"].apply(SHIPPED_DIGITS)
    mar = hosted.served.package.files[mar_path("digits")]
    assert mar != model.served.package.files[mar_path("digits")]
    assert {k: archived_yaml(mar)[k] for k in ("minWorkers", "maxWorkers", "torchThreads")} == {
        "minWorkers": 2, "maxWorkers": 2, "torchThreads": 1}
    assert hosted.instances == model.instances and model.served.folder.config == SHIPPED_DIGITS


def test_a_kserve_variant_changes_the_config_its_spec_is_written_from_not_the_archive(tmp_path):
    model = a_model(tmp_path)
    hosted = variant_model(model, VARIANTS["ks-nobatch"], tmp_path / "archives")
    assert hosted.served.folder.config.batch_size == 1 and hosted.server_batch_size == 1
    assert hosted.served.package == model.served.package


def test_servers_host_each_variant_apart_and_the_raw_reference_covers_the_largest_batch(tmp_path):
    variants = parse_variants("ts-1w-nobatch,ks-nobatch,ts-2w")
    servers = Servers({"digits": a_model(tmp_path)}, tmp_path / "servers", variants=variants)
    assert list(servers.setups) == ["torchserve", "kserve", "ts-1w-nobatch", "ks-nobatch", "ts-2w"]
    assert [t.key for t in servers.targets()] == [
        "torchserve/v1-json", "torchserve/v1-json@ts-1w-nobatch", "torchserve/v1-json@ts-2w",
        "kserve/v1-json", "kserve/v1-json@ks-nobatch", "kserve/v2-binary", "kserve/v2-grpc"]
    sizes = servers.batch_sizes("digits")
    assert sizes == {"torchserve": 8, "kserve": 8, "ts-1w-nobatch": 1, "ks-nobatch": 1, "ts-2w": 8}
    assert raw_batch_sizes(16, max(sizes.values()), 1) == (1, 8)
    assert servers.info["ts-2w"]["overrides"] == {"minWorkers": 2, "maxWorkers": 2}
    assert servers.info["torchserve"]["setup"] == SHIPPED
    servers.problems["ts-1w-nobatch"] = "its server did not start"
    assert "ts-1w-nobatch" not in servers.batch_sizes("digits")


class FakeServer:
    """Stands in for a server process: starts (or fails to), is ready at once, stops."""

    def __init__(self, runtime: str, work_dir: Path, fails: bool = False) -> None:
        self.runtime, self.work_dir, self.fails, self.stopped = runtime, work_dir, fails, False

    def start(self) -> None:
        if self.fails:
            raise RuntimeError("port in use")

    def wait_ready(self, timeout: float) -> None:
        pass

    def process_group(self) -> None:
        return None

    def metrics_url(self) -> str:
        return "http://127.0.0.1:9/metrics"

    def stop(self) -> None:
        self.stopped = True


def test_a_variant_that_cannot_start_is_reported_and_the_shipped_servers_are_measured(tmp_path):
    servers = Servers({"digits": a_model(tmp_path)}, tmp_path / "servers", variants=parse_variants("ks-nobatch"))
    for name, setup in servers.setups.items():
        setup.server = FakeServer(setup.runtime, tmp_path / name, fails=name == "ks-nobatch")
    logged: list[str] = []
    servers.start(logged.append)
    assert servers.problems == {"ks-nobatch": "its server did not start: RuntimeError: port in use"}
    assert servers.setups["ks-nobatch"].server.stopped and not servers.setups["kserve"].server.stopped
    assert list(servers.batch_sizes("digits")) == ["torchserve", "kserve"]
    assert servers.info["kserve"]["ready_s"] is not None and "ready_s" not in servers.info["ks-nobatch"]
    servers.stop()

    servers.setups["torchserve"].server = FakeServer("torchserve", tmp_path / "ts", fails=True)
    with pytest.raises(RuntimeError, match="port in use"):
        servers.start(logged.append)


def test_targets_keep_the_shipped_keys_and_name_the_variants_server():
    assert targets_with([]) == TARGETS
    assert [t.key for t in TARGETS] == ["torchserve/v1-json", "kserve/v1-json", "kserve/v2-binary", "kserve/v2-grpc"]
    assert TS_2W.key == "torchserve/v1-json@ts-2w" and TS_2W.server == "ts-2w"
    assert TORCHSERVE_V1.server == "torchserve" and TORCHSERVE_V1.setup == SHIPPED


@pytest.mark.parametrize(("change", "problem"), [
    ({}, None),
    ({"batchSize": 1}, "batchSize 1 instead of 8"),
    ({"maxBatchDelay": 100}, "maxBatchDelay 100 instead of 1"),
    ({"workers": [{"status": "READY"}, {"status": "STARTING"}]}, "1 READY workers instead of 2"),
])
def test_torchserve_must_describe_the_models_as_the_set_up_configures_them(change, problem):
    config = VARIANTS["ts-2w"].apply(SHIPPED_DIGITS)
    described = {"minWorkers": 2, "maxWorkers": 2, "batchSize": 8, "maxBatchDelay": 1,
                 "workers": [{"status": "READY"}, {"status": "READY"}], **change}
    assert torchserve_config_problems([described], config) == ([problem] if problem else [])
    assert torchserve_config_problems([], config) == ["no version described"]


# -- results ----------------------------------------------------------------------------------------


def a_round(index: int) -> dict[str, Any]:
    def phase(ips: float, p50: float, handler: float | None = None) -> dict[str, Any]:
        return {"ips": ips, "p50_ms": p50, "handler_p50_ms": handler, "other_cores": 0.0, "wall_s": 2.0,
                "requests": 100, "errors": 0, "problems": []}

    served = {"torchserve/v1-json": 80.0, "torchserve/v1-json@ts-2w": 90.0, "kserve/v1-json": 70.0}
    return {"round": index, "other_cores": 0.0, "raw_ips": 100.0,
            "raw": {"1": {"other_cores": 0.0, "wall_s": 1.0}, "8": {"other_cores": 0.0, "wall_s": 1.0}},
            "phases": {key: {"latency": phase(50.0, 5.0, 3.0), "throughput": phase(ips, 20.0)}
                       for key, ips in served.items()}}


def test_variant_lines_carry_their_setup_and_overrides_and_join_the_table():
    targets = targets_with([("ts-2w", "torchserve")])
    measured = [TORCHSERVE_V1, TS_2W, KSERVE_V1]
    chosen, verdicts = judge_rounds([a_round(i) for i in range(3)], measured, 3, Bounds(spread=0.2))
    record = {"concurrency": 16, "latency_concurrency": 1, "instances_per_request": 1, "raw_batches": [1, 8],
              "selected_rounds": chosen, "rounds": [a_round(i) for i in range(3)], "unavailable": {}}
    servers = {"torchserve": {"setup": SHIPPED, "overrides": {}, "description": "shipped", "ready_s": 6.0},
               "kserve": {"setup": SHIPPED, "overrides": {}, "description": "shipped", "ready_s": 5.0},
               "ts-2w": {"setup": "ts-2w", "overrides": {"minWorkers": 2, "maxWorkers": 2},
                         "description": VARIANTS["ts-2w"].description, "ready_s": 9.0}}
    lines = result_lines(["digits"], {"digits": record}, {"digits": verdicts}, servers, targets)
    by_key = {(line["runtime"], line["protocol"], line["setup"]): line for line in lines}
    assert [line["setup"] for line in lines] == [SHIPPED, "ts-2w", SHIPPED, SHIPPED, SHIPPED]
    variant = by_key[("torchserve", "v1-json", "ts-2w")]
    assert variant["status"] == "trusted" and variant["served_rps"] == 90.0 and variant["ratio"] == 0.9
    assert variant["overrides"] == {"minWorkers": 2, "maxWorkers": 2} and variant["ready_s"] == 9.0
    assert by_key[("torchserve", "v1-json", SHIPPED)]["served_rps"] == 80.0
    assert by_key[("kserve", "v2-binary", SHIPPED)]["status"] == "not available"

    table = markdown_table(lines).splitlines()
    assert table[3].startswith("| digits | torchserve | v1-json | ts-2w: minWorkers=2, maxWorkers=2 | 100.0 (±0%) "
                               "| 90.0 (±0%) | 0.90 (±0%) |")
    assert table[2].startswith("| digits | torchserve | v1-json | shipped | 100.0 (±0%) | 80.0 (±0%) |")


def test_lines_of_runs_before_variants_are_reported_as_shipped():
    old = {"model": "digits", "runtime": "kserve", "protocol": "v1-json", "status": "not available",
           "reasons": ["not available: x"]}
    assert "| digits | kserve | v1-json | shipped | - |" in markdown_table([old])
