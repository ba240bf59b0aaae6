"""`aip`: the platform's command line (offline preview, generated docs)."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import pulumi
from rich.console import Console
from rich.text import Text

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aip", description="ai-platform command line")
    commands = parser.add_subparsers(dest="command", required=True)

    preview = commands.add_parser(
        "preview", help="run the Pulumi program offline for one stack and show what it would create",
        description="Runs the program Pulumi.yaml names under the Pulumi SDK's mocks: no cloud account, "
                    "no Pulumi CLI, no network.")
    preview.add_argument("--stack", required=True, help="stack name (a stacks/Pulumi.<stack>.yaml file)")
    preview.add_argument("--format", choices=("text", "json", "manifests"), default="text",
                         help="text summary (default), one JSON document, or Kubernetes manifests as YAML")
    preview.add_argument("--project-dir", type=Path, default=None,
                         help="folder with Pulumi.yaml (default: the nearest one above the working directory)")

    docs = commands.add_parser("docs", help="regenerate README's configuration reference and version table")
    docs.add_argument("--check", action="store_true", help="exit 1 when README is out of date instead of writing")
    docs.add_argument("--project-dir", type=Path, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    err = Console(stderr=True)
    try:
        if args.command == "preview":
            return _preview(args, err)
        return _docs(args, err)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        return 130


def _error(console: Console, message: str) -> None:
    # soft_wrap: long config problems stay on one line each, whatever the terminal width.
    console.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True, highlight=False)


def _preview(args: argparse.Namespace, err: Console) -> int:
    from infra.preview import ProgramError, Project, ProjectError, run_preview
    from infra.preview.render import print_summary, to_json, to_manifests

    try:
        project = Project.find(args.project_dir)
        count = 0
        with err.status(f"previewing stack [bold]{args.stack}[/] offline…") as status:
            def progress(record) -> None:
                nonlocal count
                count += 1
                status.update(f"previewing stack [bold]{args.stack}[/]: {count} resources registered")

            result = run_preview(args.stack, project, on_resource=progress)
    except ProjectError as exc:
        _error(err, str(exc))
        return EXIT_USAGE
    except ProgramError as exc:
        if isinstance(exc.cause, pulumi.RunError):
            _error(err, str(exc.cause))
            return EXIT_USAGE
        # An unexpected failure is a bug in the program: its traceback is what a developer needs.
        _error(err, f"the program of stack {exc.stack!r} failed:")
        traceback.print_exception(exc.cause, file=sys.stderr)
        return EXIT_FAILED
    if args.format == "json":
        sys.stdout.write(to_json(result) + "\n")
    elif args.format == "manifests":
        sys.stdout.write(to_manifests(result))
    else:
        print_summary(result, Console())
    return EXIT_OK


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


if __name__ == "__main__":
    raise SystemExit(main())
