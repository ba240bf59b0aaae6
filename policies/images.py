"""Container image references, read one way by the stack config, the policy pack and the admission policies.

Registry allowlist entries, version tags and digests are judged here once, so a prefix or tag the config
accepts is one the pack and the cluster accept too. Names resolve as the container runtime resolves them
(github.com/distribution/reference, ``splitDockerDomain``): a first component without ``.`` or ``:``
that is not ``localhost`` and is lowercase is a Docker Hub namespace, ``index.docker.io`` is Docker Hub,
and a bare name is an official image (``nginx`` is ``docker.io/library/nginx``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

DOCKER_HUB = "docker.io"
_LEGACY_DOCKER_HUB = "index.docker.io"
_HOST_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = re.compile(rf"^{_HOST_LABEL}(?:\.{_HOST_LABEL})*(?::[0-9]+)?$")
_PATH_SEGMENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
# A version: a digit first, optionally after `v` (1.2.3, 0.12.0-gpu, v2.1); Docker allows 128 characters.
_VERSION_TAG = re.compile(r"^v?[0-9][A-Za-z0-9_.-]*$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")

PREFIX_RULE = ("a registry host and at least one repository path segment, ending in '/' "
               "(docker.io/pytorch/, ghcr.io/acme/models/)")
PIN_ADVICE = "pin a version tag (1.2.3, 0.12.0-gpu, v2.1) or a digest (@sha256: and 64 hex characters)"
DIGEST_ADVICE = "pin it by digest (@sha256: and 64 hex characters)"


def is_host(component: str) -> bool:
    """Whether the first component of a reference names a registry rather than a Docker Hub namespace."""
    return "." in component or ":" in component or component == "localhost" or component != component.lower()


def _split_prefix(entry: str) -> tuple[str, list[str]]:
    """(registry, path segments) of an allowlist entry; Docker Hub short forms get docker.io."""
    parts = entry.removesuffix("/").split("/")
    host, path = (parts[0], parts[1:]) if is_host(parts[0]) else (DOCKER_HUB, parts)
    return (DOCKER_HUB if host == _LEGACY_DOCKER_HUB else host), path


def prefix_problem(entry: str) -> str | None:
    """Why ``entry`` cannot be an approved-registry prefix, with what is allowed; None when it can."""
    if not entry.strip():
        reason = "is empty, which matches every image"
    elif not entry.endswith("/"):
        reason = "does not end with '/', so it would also match longer names (docker.io/pytorch matches " \
                 "docker.io/pytorchevil/...)"
    else:
        host, path = _split_prefix(entry)
        bad = next((s for s in path if not _PATH_SEGMENT.match(s)), None)
        if not _HOST.match(host):
            reason = f"does not start with a registry host ('{host}')"
        elif not path:
            reason = f"names the whole registry {host}, approving every repository in it"
        elif bad == "":
            reason = "has an empty path segment ('//')"
        elif bad is not None:
            reason = f"has '{bad}', which is not a repository path segment (lowercase letters, digits, . _ -)"
        else:
            return None
    return f"{reason}; allowed: {PREFIX_RULE}"


def normalise_prefix(entry: str) -> str:
    """A valid prefix as the runtime reads it: ``pytorch/`` -> ``docker.io/pytorch/``."""
    host, path = _split_prefix(entry)
    return f"{host}/{'/'.join(path)}/"


def repeated_prefixes(entries: Iterable[str]) -> list[str]:
    """Valid prefixes listed more than once once normalised (``pytorch/`` and ``docker.io/pytorch/``)."""
    seen: list[str] = []
    repeated: list[str] = []
    for prefix in (normalise_prefix(e) for e in entries if prefix_problem(e) is None):
        if prefix in seen and prefix not in repeated:
            repeated.append(prefix)
        seen.append(prefix)
    return repeated


def duplicate_problem(entries: Iterable[str]) -> str | None:
    repeated = repeated_prefixes(entries)
    if not repeated:
        return None
    return (f"lists {', '.join(repeated)} more than once (Docker Hub short forms such as pytorch/ are "
            "docker.io/pytorch/); list each prefix once")


def _escape(text: str) -> str:
    # Prefixes hold letters, digits, '/', ':', '_', '-' and '.'; only '.' means something to RE2 and re.
    return text.replace(".", "[.]")


def prefix_pattern(prefix: str) -> str:
    """A regular expression (RE2 and Python alike) for every spelling of an image under a valid ``prefix``.

    The admission policy sees the image as the pod spec writes it, so Docker Hub prefixes also match
    their short and ``index.docker.io`` forms, and ``docker.io/library/`` also matches bare names.
    """
    host, path = _split_prefix(prefix)
    repository = _escape("/".join(path) + "/")
    if host != DOCKER_HUB:
        return f"^{_escape(host)}/{repository}"
    hub = r"(?:(?:index[.])?docker[.]io/)"
    spellings = [f"{hub}{'' if is_host(path[0]) else '?'}{repository}"]
    if path == ["library"]:
        spellings.append(f"{hub}?[^/]+$")
    return f"^(?:{'|'.join(spellings)})"


def ecr_pattern(accounts: Iterable[str]) -> str | None:
    """The private ECR registries of ``accounts``, in any region; None without an account."""
    valid = sorted({a for a in accounts if _ACCOUNT.match(a)})
    if not valid:
        return None
    return rf"^(?:{'|'.join(valid)})[.]dkr[.]ecr[.][a-z0-9-]+[.]amazonaws[.]com(?:[.]cn)?/"


def approved_patterns(prefixes: Iterable[str], accounts: Iterable[str]) -> tuple[str, ...]:
    """Every pattern an approved image matches: the valid prefixes, then the accounts' ECR."""
    patterns = [prefix_pattern(p) for p in prefixes if prefix_problem(p) is None]
    ecr = ecr_pattern(accounts)
    return (*patterns, *([ecr] if ecr else []))


def image_approved(image: str, patterns: Sequence[str]) -> bool:
    if not image or any(c.isspace() for c in image):
        return False
    return any(re.match(p, image) for p in patterns)


def describe_approved(prefixes: Iterable[str], accounts: Iterable[str]) -> str:
    """What may be pulled, for messages: the prefixes and the accounts' ECR registries."""
    shown = [normalise_prefix(p) for p in prefixes if prefix_problem(p) is None]
    shown += [f"{a}.dkr.ecr.<region>.amazonaws.com/" for a in sorted({a for a in accounts if _ACCOUNT.match(a)})]
    return ", ".join(shown) or "nothing"


def is_version_tag(tag: str) -> bool:
    return len(tag) <= 128 and bool(_VERSION_TAG.match(tag))


def pin_problem(image: str, require_digest: bool = False) -> str | None:
    """Why ``image`` is not pinned, with what is allowed; None when it is.

    A digest pins the bytes (whatever tag comes with it: the runtime pulls the digest); a version tag
    (1.2.3, 0.12.0-gpu, v2.1) is by convention never re-pushed, while ``latest`` and branch-like tags
    (main, stable, nightly) move with every push. With ``require_digest`` only a digest will do.
    """
    reference, at, digest = image.partition("@")
    name, _, tag = reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (reference, "", "")
    if not name or name.endswith("/") or any(c.isspace() for c in image):
        return "is not an image reference (registry/name:1.2.3 or registry/name@sha256:<64 hex>)"
    if at:
        if not _DIGEST.match(digest):
            return f"has a malformed digest '{digest}'; a digest is sha256: and 64 lowercase hex characters"
        return None
    if require_digest:
        return f"is not pinned by digest; {DIGEST_ADVICE}"
    if not tag:
        return f"has no tag or digest; {PIN_ADVICE}"
    if tag == "latest":
        return f"uses the 'latest' tag; {PIN_ADVICE}"
    if not is_version_tag(tag):
        return f"uses the tag '{tag}', which is not a version and moves with every push; {PIN_ADVICE}"
    return None
