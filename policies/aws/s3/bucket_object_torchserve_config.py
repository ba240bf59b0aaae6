"""aws-s3-bucketobject-torchserve-config: uploaded TorchServe config.properties is locked down.

The ClusterServingRuntime starts TorchServe with ``--ts-config=/mnt/models/config/config.properties``,
which is the object this policy reads. Offline (and in ``pulumi preview``) its ``source`` is a file
asset on disk, so the policy reads the file itself; sources it cannot read are skipped.
"""

from __future__ import annotations

from pathlib import Path

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import ISO27001, SOC2, aws_fsbp
from policies.props import get

OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
MAX_CONFIG_BYTES = 1 << 20
WIDE_OPEN_URLS = {"", ".*", "^.*$", "http.*", "https.*", "http(s)?://.*", "https?://.*", "s3://.*", "file:///.*"}


def source_path(source) -> Path | None:
    """The file a FileAsset (engine) or a ``{"fileAsset": path}`` mapping (preview records) names, if any."""
    path = getattr(source, "path", None) or get(source, "fileAsset") or get(source, "path")
    return Path(str(path)) if path else None


def source_problem(source) -> str | None:
    """Why a source file that exists cannot be read as a config; None where it can, or does not exist here.

    Only a regular file of a config's size is read: a device or a FIFO named here would stall the gate.
    """
    path = source_path(source)
    try:
        if path is None or not path.exists():
            return None
        if not path.is_file():
            return f"has source {path}, which is not a regular file"
        if path.stat().st_size > MAX_CONFIG_BYTES:
            return f"has source {path}, larger than {MAX_CONFIG_BYTES // 1024} KiB"
    except (OSError, ValueError):
        return None
    return None


def source_text(source) -> str | None:
    """The text of a StringAsset or of the file a source names; None where there is none to read."""
    text = getattr(source, "text", None) or get(source, "stringAsset")
    if text is not None:
        return str(text)
    path = source_path(source)
    if path is None or source_problem(source) is not None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != OBJECT or not str(get(args.props, "key", default="")).endswith("config/config.properties"):
        return
    source = get(args.props, "source")
    problem = source_problem(source)
    if problem:
        report_violation(f"TorchServe config '{args.name}' {problem}: its settings cannot be checked.")
        return
    text = source_text(source)
    if text is None:
        return
    config = parse_properties(text)
    if config.get("enable_model_api", "false").lower() != "false":
        report_violation(f"TorchServe config '{args.name}' sets enable_model_api={config['enable_model_api']}; "
                         "it must be false.")
    if "allowed_urls" not in config:
        report_violation(f"TorchServe config '{args.name}' does not set allowed_urls "
                         "(TorchServe then accepts any file or http(s) URL).")
    for url in (u.strip() for u in config.get("allowed_urls", "x").split(",")):
        if url in WIDE_OPEN_URLS:
            report_violation(f"TorchServe config '{args.name}' allows model URLs '{url}'; "
                             "restrict allowed_urls to the model store.")


aws_s3_bucketobject_torchserve_config = ResourceValidationPolicy(
    name="aws-s3-bucketobject-torchserve-config",
    description="TorchServe config.properties uploaded to the model store disables the model API "
                "and restricts allowed_urls.",
    validate=validate,
    severity=Severity.HIGH,
    framework=aws_fsbp("S3.17"),
    tags=["aws", "s3", "torchserve", "CVE-2023-43654", SOC2, ISO27001],
    remediation_steps="Generate config.properties with `aip package` (infra/serving/config_properties.py): "
                      "enable_model_api=false and allowed_urls limited to file:///mnt/models/model-store/.",
    url="https://pytorch.org/serve/configuration.html",
)
