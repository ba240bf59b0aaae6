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
# A version: at least major.minor, optionally after `v` (1.2, 1.2.3, 0.12.0-gpu, v2.1); Docker allows 128
# characters. A major alone (1, v1) is no pin: by convention it is re-pointed at each new 1.x release.
_VERSION_TAG = re.compile(r"^v?[0-9]+[.][0-9]+[A-Za-z0-9_.-]*$")
_MAJOR_ONLY = re.compile(r"^v?([0-9]{1,3})(?:[-_+]|$)")
_TAG_TOKEN = re.compile(r"[._+-]")
_LETTERS = re.compile(r"[A-Za-z]+")
# Words that name a branch or a channel rather than a release: registries re-point a tag holding one at each
# new build, whatever version sits beside it (1-latest, 1.0.0-SNAPSHOT, 3.1-dev, 1.2-stable). Matched
# case-insensitively against each token between . - _ + and each run of letters in it, so a word glued to
# digits (1.2latest, 0.13.0.dev0) counts too. Pre-release labels (alpha, beta, rc, pre, preview) are not
# listed: SemVer numbers them in a token of their own (1.0.0-rc.1, 2.0.0-beta.2), and a numbered candidate
# (rc1, rc.1) is never re-pushed.
MOVING_WORDS = frozenset({
    "latest", "current", "stable", "release", "edge", "next", "canary", "nightly", "snapshot", "rolling",
    "testing", "unstable", "experimental",  # channels
    "main", "master", "trunk", "head", "dev", "devel", "develop",  # branches
})
# A wildcard floats like a channel (1.2.x); only a whole token counts, so x86_64 and x64 stay architectures.
_WILDCARDS = frozenset({"x"})
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")

PREFIX_RULE = ("a registry host and at least one repository path segment, ending in '/' "
               "(docker.io/pytorch/, ghcr.io/acme/models/)")
VERSION_RULE = ("a version tag of at least major.minor (1.2, 1.2.3, v2.1, 0.12.0-gpu) with no moving word such as "
                "latest, main, stable, nightly, snapshot or dev")
PIN_ADVICE = f"pin a digest (@sha256: and 64 hex characters) or {VERSION_RULE}"
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
        bad = next((s for s in path if not _PATH_SEGMENT.fullmatch(s)), None)
        if not _HOST.fullmatch(host):
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


# The in-cluster aip-approved-registries policy records the prefixes it admits here (normalised, comma-separated),
# since its CEL may be unknown during a preview: the pack compares them with its own reviewed allowlist.
APPROVED_REGISTRIES_ANNOTATION = "ai-platform.io/approved-registries"


def prefixes_annotation(prefixes: Iterable[str]) -> str:
    """The annotation value for the valid ``prefixes`` (the ones the admission policy's CEL matches)."""
    return ",".join(normalise_prefix(p) for p in prefixes if prefix_problem(p) is None)


def uncovered_prefixes(enforced: Iterable[str], approved: Iterable[str]) -> list[str]:
    """The entries of ``enforced`` no valid ``approved`` prefix covers, valid ones normalised.

    A prefix covers itself and every prefix under it (docker.io/acme/ covers docker.io/acme/models/); the
    patterns of a narrower prefix match a subset of the broader one's, bare official names included.
    """
    covering = [normalise_prefix(p) for p in approved if prefix_problem(p) is None]
    found: list[str] = []
    for entry in enforced:
        prefix = normalise_prefix(entry) if prefix_problem(entry) is None else entry
        if not any(prefix.startswith(c) for c in covering) and prefix not in found:
            found.append(prefix)
    return found


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
    valid = sorted({a for a in accounts if _ACCOUNT.fullmatch(a)})
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
    shown += [f"{a}.dkr.ecr.<region>.amazonaws.com/" for a in sorted({a for a in accounts if _ACCOUNT.fullmatch(a)})]
    return ", ".join(shown) or "nothing"


def _moving_word(tag: str) -> str | None:
    """The first moving word or wildcard in ``tag``, as the tag spells it."""
    for token in _TAG_TOKEN.split(tag):
        if token.lower() in MOVING_WORDS | _WILDCARDS:
            return token
        found = next((w for w in _LETTERS.findall(token) if w.lower() in MOVING_WORDS), None)
        if found:
            return found
    return None


def tag_problem(tag: str) -> str | None:
    """Why ``tag`` is not a version tag (a clause such as "is not a version"); None when it is."""
    if len(tag) > 128:
        return "is longer than the 128 characters a tag may have"
    if tag.lower() in MOVING_WORDS:
        return "is not a version and moves with every push"
    moving = _moving_word(tag)
    if moving is not None:
        return f"moves with every push: '{moving}' names a branch, channel or wildcard, not a release"
    if _VERSION_TAG.fullmatch(tag):
        return None
    major = _MAJOR_ONLY.match(tag)
    if major:
        return f"names a major version only and moves to each new {major.group(1)}.x release"
    return "is not a version"


def is_version_tag(tag: str) -> bool:
    return tag_problem(tag) is None


def pin_problem(image: str, require_digest: bool = False) -> str | None:
    """Why ``image`` is not pinned, with what is allowed; None when it is.

    A digest pins the bytes (whatever tag comes with it: the runtime pulls the digest); a version tag of
    at least major.minor (1.2.3, 0.12.0-gpu, v2.1) is by convention never re-pushed, while ``latest``, a
    bare major (1, v1) and tags holding a moving word (1-latest, 1.0.0-SNAPSHOT, 3.1-dev) move with every
    push. With ``require_digest`` only a digest will do.
    """
    reference, at, digest = image.partition("@")
    name, _, tag = reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (reference, "", "")
    if not name or name.endswith("/") or any(c.isspace() for c in image):
        return "is not an image reference (registry/name:1.2.3 or registry/name@sha256:<64 hex>)"
    if at:
        if not _DIGEST.fullmatch(digest):
            return f"has a malformed digest '{digest}'; a digest is sha256: and 64 lowercase hex characters"
        return None
    if require_digest:
        return f"is not pinned by digest; {DIGEST_ADVICE}"
    if not tag:
        return f"has no tag or digest; {PIN_ADVICE}"
    if tag == "latest":
        return f"uses the 'latest' tag; {PIN_ADVICE}"
    problem = tag_problem(tag)
    if problem:
        return f"uses the tag '{tag}', which {problem}; {PIN_ADVICE}"
    return None
