"""`aip`: the platform's command line (offline preview, generated docs, model packaging, local serving)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pulumi
from rich.console import Console
from rich.text import Text

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# `aip canary analyze`: promote and roll back share 0 and 1 with success and failure; hold is 3 (2 is usage).
EXIT_PROMOTE, EXIT_ROLLBACK, EXIT_HOLD = 0, 1, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aip", description="ai-platform command line")
    commands = parser.add_subparsers(dest="command", required=True)

    preview = commands.add_parser(
        "preview", help="run the Pulumi program offline for one stack and show what it would create",
        description="Runs the program Pulumi.yaml names under the Pulumi SDK's mocks: no cloud account, "
                    "no Pulumi CLI, no network.")
    preview.add_argument("--stack", required=True, help="stack name (a stacks/Pulumi.<stack>.yaml file)")
    preview.add_argument("--no-policy", dest="policy", action="store_false",
                         help="skip the policy pack (policies/) that otherwise gates every preview")
    preview.add_argument("--no-deploy-checks", dest="deploy_checks", action="store_false",
                         help="skip the deploy checks over the whole graph (reachability, ordering, identity, "
                              "recreate, chart values)")
    preview.add_argument("--format", choices=("text", "json", "manifests", "sarif"), default="text",
                         help="text summary (default), one JSON document, or Kubernetes manifests as YAML")
    preview.add_argument("--no-package", dest="package", action="store_false",
                         help="use the packages already built instead of packaging a team stack's models first")
    preview.add_argument("--project-dir", type=Path, default=None,
                         help="folder with Pulumi.yaml (default: the nearest one above the working directory)")

    docs = commands.add_parser("docs", help="regenerate README's configuration reference and version table")
    docs.add_argument("--check", action="store_true", help="exit 1 when README is out of date instead of writing")
    docs.add_argument("--project-dir", type=Path, default=None)

    package = commands.add_parser(
        "package", help="train (cached) and archive models in KServe's TorchServe layout, with a manifest",
        description="For each model folder under model-handlers/: train it unless weights for the same inputs "
                    "exist, build its .mar with torch-model-archiver and write <out>/<model>/config/"
                    "config.properties, <out>/<model>/model-store/<model>.mar and <out>/manifest.json.")
    _add_package_options(package)

    serve = commands.add_parser(
        "serve", help="package, then serve the models with a real TorchServe or KServe on 127.0.0.1",
        description="Packages (cached), starts the server on loopback with the config the cluster gets, waits "
                    "until every model is ready and prints the endpoints. Ctrl-C stops it and everything it "
                    "started.")
    _add_package_options(serve)
    serve.add_argument("--runtime", choices=("torchserve", "kserve"), default="torchserve",
                       help="torchserve (the cluster's kserve-torchserve runtime, default) or kserve "
                            "(the models' own KServe predictors)")
    serve.add_argument("--port", type=_port, default=0,
                       help="HTTP port on 127.0.0.1 (TorchServe inference / KServe REST); default: a free one")
    serve.add_argument("--smoke", action="store_true",
                       help="send every examples/*.json of every model, report, stop; exit 0 or 1")
    serve.add_argument("--no-token-auth", dest="token_auth", action="store_false",
                       help="TorchServe without token authorization, exactly as in the cluster")
    serve.add_argument("--with-prometheus", action="store_true",
                       help="also run Prometheus (Debian's prometheus package) on 127.0.0.1, scraping the server "
                            "with the platform's alert and recording rules, and Alertmanager (Debian's "
                            "prometheus-alertmanager) on 127.0.0.1, which it sends firing alerts to; prints "
                            "their addresses")
    serve.add_argument("--alert-webhook", metavar="URL",
                       help="with --with-prometheus: every receiver of the local Alertmanager posts to this URL "
                            "(http only on loopback), routed as --alerts-stack routes in the cluster")
    serve.add_argument("--alerts-stack", metavar="STACK", default="prod",
                       help="platform stack whose observability.alerts routes the local alerts (default: prod)")

    canary = commands.add_parser("canary", help="start a model's canary, or judge it by its serving metrics",
                                 description="Canary rollouts of team models (docs/delivery.md).")
    canary_commands = canary.add_subparsers(dest="canary_command", required=True)
    analyze = canary_commands.add_parser(
        "analyze", help="compare a model's canary with its stable version in Prometheus: promote, hold or roll back",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reads the model's canary and thresholds (canary.analysis) from the team stack file, asks "
                    "Prometheus for each track's requests, 5xx ratio and latency over the window (the platform's "
                    "recording rules, group aip-inference-versions) and says whether to promote the canary.",
        epilog="exit codes:\n"
               f"  {EXIT_PROMOTE}  promote: every check passed\n"
               f"  {EXIT_ROLLBACK}  roll back: a check failed (5xx ratio, its increase over stable, or latency)\n"
               f"  {EXIT_HOLD}  hold: not enough evidence yet (fewer than minRequests, or a figure missing)\n"
               f"  {EXIT_USAGE}  usage or config error (unknown stack or model, no canary, Prometheus unreachable)")
    analyze.add_argument("--stack", required=True, help="team stack (a stacks/Pulumi.<team>-<env>.yaml file)")
    analyze.add_argument("--model", required=True, help="model of the stack that has a canary")
    analyze.add_argument("--prometheus", required=True, metavar="URL",
                         help="the platform's Prometheus, e.g. http://127.0.0.1:9090 through kubectl port-forward")
    analyze.add_argument("--window", default=None,
                         help="how far back to look (90s, 10m, 1h; default: the model's canary.analysis.window)")
    analyze.add_argument("--format", choices=("text", "json"), default="text",
                         help="a table (default) or one JSON object on stdout")
    analyze.add_argument("--project-dir", type=Path, default=None,
                         help="folder with Pulumi.yaml (default: the nearest one above the working directory)")
    _add_stack_edit_commands(commands, canary_commands)
    return parser


# `aip canary start` when the model serves the packaged version already: no canary, nothing changed.
EXIT_NOTHING_TO_ROLL_OUT = 3


def _add_stack_edit_commands(commands: Any, canary_commands: Any) -> None:
    """`aip promote`, `aip rollback`, `aip canary start`: edits of a team stack file (infra/delivery/stack_edit.py)."""
    refused = (f"exit codes:\n  {EXIT_OK}  the stack file was edited (the diff is shown)\n"
               f"  {EXIT_USAGE}  refused, file unchanged: no such stack or model, no canary, the result would not "
               "validate")
    promote = commands.add_parser(
        "promote", help="end a model's canary: its version becomes the stable one (edits the team stack file)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Replaces the model's `canary` block with `version: <the canary's version>`: the next deploy "
                    "serves that version to every request, whatever is packaged later. The canary's version is the "
                    "packaged one (build/models/manifest.json or $AIP_MODEL_PACKAGES) unless --version names it. "
                    "Comments, key order and quoting of the file stay; the result is validated before it is "
                    "written. Deploy it with `pulumi up` (docs/delivery.md).", epilog=refused)
    rollback = commands.add_parser(
        "rollback", help="end a model's canary: its stable version serves everything again (edits the team stack "
                         "file)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Replaces the model's `canary` block with `version: <its stableVersion>`: the next deploy serves "
                    "the stable version to every request, from the model store (nothing is packaged or uploaded). "
                    "Comments, key order and quoting of the file stay; the result is validated before it is "
                    "written. Deploy it with `pulumi up` (docs/delivery.md).", epilog=refused)
    start = canary_commands.add_parser(
        "start", help="run the packaged version as a canary beside the model's pinned version (edits the team stack "
                      "file)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Replaces the model's `version: <pin>` with `canary: {trafficPercent: N, stableVersion: <pin>}`: "
                    "the next deploy runs the packaged version (or --version) on N% of the requests. Comments, key "
                    "order and quoting of the file stay; the result is validated before it is written.",
        epilog=refused + f"\n  {EXIT_NOTHING_TO_ROLL_OUT}  nothing to roll out: the model's pin is that version "
                         "already (file unchanged)")
    for parser in (promote, rollback, start):
        parser.add_argument("--stack", required=True, help="team stack (a stacks/Pulumi.<team>-<env>.yaml file)")
        parser.add_argument("--model", required=True, help="model of the stack")
    for parser in (promote, start):
        parser.add_argument("--version", default=None, metavar="HEX",
                            help="the canary's version (default: the model's packaged version)")
    start.add_argument("--traffic-percent", type=_percent, default=10, metavar="N",
                       help="share of requests the canary gets, 1 to 99 (default: 10)")
    for parser in (promote, rollback, start):
        parser.add_argument("--project-dir", type=Path, default=None,
                            help="folder with Pulumi.yaml (default: the nearest one above the working directory)")


def _percent(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 99:
        raise argparse.ArgumentTypeError(f"{value} is not between 1 and 99")
    return value


def _add_package_options(parser: argparse.ArgumentParser) -> None:
    from infra.serving.package import DEFAULT_OUT

    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT.relative_to(DEFAULT_OUT.parents[1])})")
    parser.add_argument("--models", default=None, metavar="A,B",
                        help="comma-separated model names (default: every folder under model-handlers/)")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 0 and 65535")
    return port


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    err = Console(stderr=True)
    # A program stopped by a config error leaves the SDK's pending registrations unawaited; the error itself
    # is what the user needs to read, not one warning per orphaned coroutine.
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
    try:
        if args.command == "preview":
            return _preview(args, err)
        if args.command in ("package", "serve"):
            return _serving(args, err)
        if args.command in ("promote", "rollback") or getattr(args, "canary_command", None) == "start":
            return _stack_edit(args, err)
        if args.command == "canary":
            return _canary(args, err)
        return _docs(args, err)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        return 130


def _error(console: Console, message: str) -> None:
    # soft_wrap: long config problems stay on one line each, whatever the terminal width.
    console.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True, highlight=False)


def _package_for(project: Any, stack: str, err: Console) -> None:
    """Package (cached) the models a team stack deploys, as `aip package` would before `pulumi up`."""
    from infra.config.loader import packaged_model_names
    from infra.serving.catalog import MODEL_HANDLERS, Catalog
    from infra.serving.package import package_models

    known = set(Catalog(MODEL_HANDLERS).names())
    names = [n for n in packaged_model_names(project.stack_config(stack).values, project=project.name) if n in known]
    if names:
        with err.status(f"packaging {', '.join(names)}…") as status:
            package_models(names=names, on_progress=lambda model, step: status.update(f"packaging {model}: {step}"))


def _preview(args: argparse.Namespace, err: Console) -> int:
    from infra.preview import ProgramError, Project, ProjectError, run_preview
    from infra.preview.policy_render import deploy_checks_run, print_policy_report, to_sarif
    from infra.preview.render import print_summary, to_document, to_manifests
    from infra.serving.problems import ServingError

    try:
        project = Project.find(args.project_dir)
        if args.package:
            _package_for(project, args.stack, err)
        count = 0
        with err.status(f"previewing stack [bold]{args.stack}[/] offline…") as status:
            def progress(record) -> None:
                nonlocal count
                count += 1
                status.update(f"previewing stack [bold]{args.stack}[/]: {count} resources registered")

            previews: dict[str, Any] = {}
            result = run_preview(args.stack, project, on_resource=progress, cache=previews)
    except ProjectError as exc:
        _error(err, str(exc))
        return EXIT_USAGE
    except ServingError as exc:
        _error(err, f"packaging the stack's models failed: {exc}")
        return EXIT_FAILED
    except ProgramError as exc:
        if isinstance(exc.cause, pulumi.RunError):
            _error(err, str(exc.cause))
            return EXIT_USAGE
        # An unexpected failure is a bug in the program: its traceback is what a developer needs.
        _error(err, f"the program of stack {exc.stack!r} failed:")
        traceback.print_exception(exc.cause, file=sys.stderr)
        return EXIT_FAILED
    gate = None
    if args.policy:
        try:
            gate = _policy_gate(project, args.stack, result)
        except (ValueError, OSError) as exc:
            _error(err, f"policy gate: {exc}")
            return EXIT_USAGE
    findings = _deploy_checks(project, args.stack, result, previews, err) if args.deploy_checks else None
    if args.format == "json":
        document = to_document(result)
        if gate is not None:
            document["policies"] = gate[0].to_json()
        if findings is not None:
            document["deployChecks"] = [dataclasses.asdict(f) for f in findings]
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif args.format == "manifests":
        sys.stdout.write(to_manifests(result))
    elif args.format == "sarif":
        if gate is None:
            _error(err, "--format sarif reports the policy gate; drop --no-policy")
            return EXIT_USAGE
        report, policies = gate
        log = to_sarif(report, policies, _stack_file(project, args.stack))
        if findings is not None:
            log["runs"].append(deploy_checks_run(findings, _stack_file(project, args.stack)))
        sys.stdout.write(json.dumps(log, indent=2) + "\n")
    else:
        console = Console()
        print_summary(result, console)
        if gate is not None:
            print_policy_report(gate[0], console)
        if findings is not None:
            _print_deploy_checks(findings, console)
    failed = False
    if gate is not None and gate[0].refused_waivers:
        # On stderr in every format: a refused waiver is easy to miss inside a JSON or SARIF document.
        refused = gate[0].refused_waivers
        err.print(Text("warning: ", style="bold yellow") + Text(
            f"{len(refused)} waiver(s) refused, waiving nothing: "
            + "; ".join(f"{r.waiver.policy} on {r.waiver.resource} ({r.reason})" for r in refused)),
            soft_wrap=True, highlight=False)
    if gate is not None and gate[0].blocking:
        names = sorted({v.policy for v in gate[0].blocking})
        _error(err, f"{len(gate[0].blocking)} mandatory policy violation(s): {', '.join(names)}")
        failed = True
    if findings:
        if args.format == "manifests":
            # Manifests have no place for them; stderr still says what fails the preview.
            _print_deploy_checks(findings, err)
        _error(err, f"{len(findings)} deploy check finding(s): {', '.join(sorted({f.check for f in findings}))}")
        failed = True
    return EXIT_FAILED if failed else EXIT_OK


def _deploy_checks(project: Any, stack: str, result: Any, previews: dict[str, Any],
                   err: Console) -> list[Any] | None:
    """The checks over the whole previewed graph (infra/graph_checks) with the stack's parsed config.

    A team stack's platform was previewed with it (its StackReference), so identity reads that preview.
    Chart values are checked where the pinned charts' upstream values are at hand (AIP_UPSTREAM_CHARTS_DIR), custom
    resources where their upstream CRDs are (AIP_CRDS_DIR).
    """
    from infra.config import ConfigError, TeamConfig, parse_stack_config
    from infra.graph_checks import run_deploy_checks
    from infra.graph_checks.chart_values import UPSTREAM_CHARTS_ENV, upstream_charts_dir
    from infra.graph_checks.custom_resources import CRDS_ENV, crds_dir

    try:
        values = project.stack_config(stack)
        config = parse_stack_config(values.values, project=project.name, stack=stack,
                                    secret_keys=values.secret_keys, secure_paths=values.secure_paths)
    except ConfigError:
        # The program ran, so it is not this platform's (a project reusing `aip preview` for another
        # program): the checks read this platform's config and have nothing to say about it.
        return None
    platform = previews.get(config.platform_stack.rsplit("/", 1)[-1]) if isinstance(config, TeamConfig) else None
    charts_dir = upstream_charts_dir()
    if charts_dir is None:
        err.print(Text(f"note: chart values not checked: {UPSTREAM_CHARTS_ENV} does not name the pinned charts' "
                       "upstream values (see README, Deploy checks)", style="dim"), soft_wrap=True)
    crds = crds_dir()
    if crds is None:
        err.print(Text(f"note: custom resources not checked: {CRDS_ENV} does not name a folder of their upstream "
                       "CRDs (see README, Deploy checks)", style="dim"), soft_wrap=True)
    return run_deploy_checks(result, config, platform=platform, charts_dir=charts_dir, crds_dir=crds)


def _print_deploy_checks(findings: Sequence[Any], console: Console) -> None:
    summary = f"{len(findings)} finding(s)" if findings else "no findings"
    console.print(Text(f"\nDeploy checks: {summary}", style="bold"))
    for finding in findings:
        console.print(Text(f"  {finding.render()}", style="red"), soft_wrap=True, highlight=False)


def _stack_file(project: Any, stack: str) -> str:
    return str(project.stack_path(stack).relative_to(project.root))


def _policy_gate(project: Any, stack: str, result: Any) -> tuple[Any, list[Any]]:
    """The policy pack over the preview, at the enforcement levels of the stack's environment."""
    from infra.preview.policy_gate import evaluate
    from policies import registry
    from policies.registry import ALL_POLICIES, PACK_NAME
    from policies.waivers import DEFAULT_PATH, expired_waivers, find_waiver, load_waivers, vet_waivers

    # The pack's own folder holds its per-environment config and the waivers, whichever project runs it.
    pack_dir = Path(registry.__file__).parent
    environment = project.stack_config(stack).values.get(f"{project.name}:environment", "")
    config_file = pack_dir / "config" / f"{environment}.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    waivers = load_waivers(DEFAULT_PATH) if DEFAULT_PATH.is_file() else []
    today = datetime.date.today()
    # Only waivers that meet the rules (time-boxed by the waived policy's severity, a real reason and
    # approver) may suppress; the refused ones are reported and the violations they name still count.
    severities = {p.name: p.severity.value if p.severity is not None else "unspecified" for p in ALL_POLICIES}
    accepted, refused = vet_waivers(waivers, severities, today)
    report = evaluate(result, ALL_POLICIES, pack=PACK_NAME, config=config,
                      waiver_for=lambda policy, urn: find_waiver(accepted, policy, urn, today))
    report.expired_waivers = expired_waivers(accepted, today)
    report.refused_waivers = refused
    return report, ALL_POLICIES


def _docs(args: argparse.Namespace, err: Console) -> int:
    from infra.docs import update_readme
    from infra.preview import Project, ProjectError

    try:
        project = Project.find(args.project_dir)
    except ProjectError as exc:
        _error(err, str(exc))
        return EXIT_USAGE
    changed = update_readme(project.root / "README.md", project, check=args.check)
    if args.check and changed:
        err.print("README.md is out of date: run `aip docs`", highlight=False)
        return EXIT_FAILED
    err.print("README.md " + ("updated" if changed else "is up to date"), highlight=False)
    return EXIT_OK


def _serving(args: argparse.Namespace, err: Console) -> int:
    # Imported here: `aip preview` and `aip docs` must not need the serving dependencies.
    from infra.serving.catalog import parse_model_names
    from infra.serving.problems import BuildFailed, ServingError

    try:
        names = parse_model_names(args.models)
        if args.command == "package":
            return _package(args, names, err)
        from infra.serving.local import ServeOptions, serve

        options = ServeOptions(runtime=args.runtime, models=names, port=args.port, smoke=args.smoke, out=args.out,
                               token_auth=args.token_auth, with_prometheus=args.with_prometheus,
                               alert_webhook=args.alert_webhook, alerts_stack=args.alerts_stack)
        return serve(options, Console(), err)
    except BuildFailed as exc:
        _error(err, str(exc))
        return EXIT_FAILED
    except ServingError as exc:
        _error(err, str(exc))
        return EXIT_USAGE


def _stack_name_problem(stack: str) -> str | None:
    from infra.preview.project import NOT_A_STACK_NAME, STACK_NAME

    return None if STACK_NAME.fullmatch(stack) else f"--stack {stack[:100]!r}: {NOT_A_STACK_NAME}"


def _canary_argument_problems(args: argparse.Namespace) -> list[str]:
    """What is wrong with the arguments themselves, all of it, before any stack file is read."""
    from infra.config.canary import window_seconds
    from infra.delivery.prometheus import PrometheusError, check_url

    problems = [problem for problem in [_stack_name_problem(args.stack)] if problem]
    try:
        check_url(args.prometheus)
    except PrometheusError as exc:
        problems.append(str(exc))
    if args.window is not None:
        try:
            window_seconds(args.window)
        except ValueError as exc:
            problems.append(f"--window {args.window[:100]!r}: {exc}")
    return problems


def _canary(args: argparse.Namespace, err: Console) -> int:
    from infra.config import ConfigError
    from infra.delivery.canary import CanaryError, analyze, load_target
    from infra.delivery.prometheus import PrometheusClient, PrometheusError, without_password
    from infra.delivery.report import print_verdict, verdict_document
    from infra.preview import Project, ProjectError

    problems = _canary_argument_problems(args)
    if problems:
        _error(err, "; ".join(problems))
        return EXIT_USAGE
    try:
        project = Project.find(args.project_dir)
        target = load_target(project, args.stack, args.model, args.window)
        with PrometheusClient(args.prometheus) as prometheus, \
                err.status(Text(f"asking {prometheus.shown_url} about {target.model}'s canary…")):
            result = analyze(target, prometheus.query)
    except (ProjectError, CanaryError, ConfigError, PrometheusError) as exc:
        _error(err, str(exc))
        return EXIT_USAGE
    code = {"promote": EXIT_PROMOTE, "rollback": EXIT_ROLLBACK, "hold": EXIT_HOLD}[result.decision]
    if args.format == "json":
        document = verdict_document(target, result, prometheus=without_password(args.prometheus), exit_code=code)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        print_verdict(target, result, Console())
    return code


def _stack_edit(args: argparse.Namespace, err: Console) -> int:
    """Edit the team stack file; show what changed, or why nothing did."""
    from infra.delivery.stack_edit import NothingToRollOut, StackEditError, promote, rollback, start_canary
    from infra.preview import Project, ProjectError

    try:
        problem = _stack_name_problem(args.stack)
        if problem:
            raise StackEditError(problem)
        project = Project.find(args.project_dir)
        path = project.stack_path(args.stack)
        if not path.is_file():
            raise StackEditError(f"no stack {args.stack!r}: {_stack_file(project, args.stack)} does not exist "
                                 f"(stacks: {', '.join(project.stacks()) or 'none'})")
        # An empty --version is a version to check, not a request for the packaged one.
        version = getattr(args, "version", None)
        packaged = version if version is not None else (lambda: _packaged_version(args.model))
        if args.command == "rollback":
            edit = rollback(path, args.model)
        elif args.command == "promote":
            edit = promote(path, args.model, packaged)
        else:
            edit = start_canary(path, args.model, packaged, args.traffic_percent)
    except NothingToRollOut as exc:
        err.print(Text(str(exc)), soft_wrap=True, highlight=False)
        return EXIT_NOTHING_TO_ROLL_OUT
    except (ProjectError, StackEditError) as exc:
        _error(err, str(exc))
        return EXIT_USAGE
    console = Console()
    for line in edit.diff(_stack_file(project, args.stack)).splitlines():
        style = ("bold" if line.startswith(("---", "+++")) else "green" if line.startswith("+")
                 else "red" if line.startswith("-") else "cyan" if line.startswith("@@") else "")
        console.print(Text(line, style=style), soft_wrap=True, highlight=False)
    console.print(Text(edit.summary, style="bold"), soft_wrap=True, highlight=False)
    console.print(Text(f"Deploy it: pulumi up --stack <org>/{args.stack} (see docs/delivery.md)", style="dim"),
                  soft_wrap=True, highlight=False)
    return EXIT_OK


def _packaged_version(model: str) -> str:
    """The version `aip package` built of ``model``: what a canary runs."""
    from infra.delivery.stack_edit import StackEditError
    from infra.serving.manifest import load_manifest, manifest_path
    from infra.serving.problems import ServingError

    path = manifest_path()
    try:
        packages = load_manifest(path).models
    except OSError as exc:
        raise StackEditError(f"the canary runs the packaged version of {model}, which is not known: {path}: "
                             f"{exc.strerror or exc} (or pass --version)") from None
    except ServingError as exc:
        raise StackEditError(f"the canary runs the packaged version of {model}, which is not known: {exc} (or pass "
                             "--version)") from None
    if model not in packages:
        raise StackEditError(f"{model} is not packaged in {path}: run `aip package` (or pass --version)")
    return packages[model].version


def _package(args: argparse.Namespace, names: list[str] | None, err: Console) -> int:
    from rich.table import Table

    from infra.serving.manifest import CONFIG_PROPERTIES, MANIFEST_FILE
    from infra.serving.package import package_models

    started = time.monotonic()
    with err.status("packaging…") as status:
        manifest = package_models(args.out, names, on_progress=lambda model, step: (
            status.update(f"packaging {model}: {step}…"), err.print(f"{model}: {step}", highlight=False)))
    table = Table(title=f"{args.out.resolve() / MANIFEST_FILE} ({time.monotonic() - started:.1f} s)",
                  title_justify="left")
    for column in ("model", "version", "layout", "metrics"):
        table.add_column(column)
    for name, entry in manifest.models.items():
        if names is not None and name not in names:
            continue
        metrics = ", ".join(f"{k}={v}" for k, v in entry.metrics.items() if isinstance(v, float))
        layout = entry.files[CONFIG_PROPERTIES].parents[1]
        table.add_row(name, entry.version, f"{layout}/", metrics)
    Console().print(table)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
