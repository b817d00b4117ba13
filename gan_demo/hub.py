"""Checkpoints on the Hugging Face Hub, resolved to a file in the standard Hub cache.

References (`@revision` is optional everywhere: a branch, a tag or a commit hash; without it, `main`):

    owner/repo[@rev]                        the repository's one *.safetensors file
    owner/repo:name[@rev]                   <name>.safetensors in a repository that holds several models
    hf://owner/repo[@rev]/path/file.safetensors   that file; without /path, as owner/repo
                                            (a revision holding '/' is percent-encoded: refs%2Fpr%2F1)

GAN_DEMO_HUB_REPO=owner/repo[@rev] makes registry names resolve to <name>.safetensors in that repository instead of
weights/ (see `registry_file`), so an app can start from the Hub without shipping the files.

Downloads land in the standard cache (HF_HOME / HF_HUB_CACHE), so the second load is a local read. With
HF_HUB_OFFLINE=1 only the cache is read. Both variables are read when a reference is resolved, not when
huggingface_hub is imported (which reads them once), so setting them later in a process still counts.
huggingface_hub itself is imported inside the functions: `import gan_demo` stays light.
Every failure is a one-line `HubError` (a `CheckpointError`, so callers that handle bad files handle these too).
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from .checkpoint import CheckpointError

SCHEME = "hf://"
_REPO = r"[A-Za-z0-9][\w.-]*/[\w.-]+"
_PLAIN = re.compile(rf"^(?P<repo>{_REPO})(?::(?P<name>[\w.-]+))?(?:@(?P<rev>[^\s@:]+))?$")
_URL = re.compile(rf"^(?P<repo>{_REPO})(?:@(?P<rev>[^\s/@]+))?(?:/(?P<path>.+))?$")
_TRUE = {"1", "on", "yes", "true"}


class HubError(CheckpointError):
    """A Hub reference that cannot be resolved; the message is one line and says what to do."""


@dataclass(frozen=True)
class HubRef:
    repo: str                   # owner/name
    filename: str | None        # path in the repository; None: its one *.safetensors file
    revision: str | None        # None: main

    def __str__(self) -> str:           # for messages, in the owner/repo:name@revision order of the input
        return (self.repo + (f":{self.filename}" if self.filename else "")
                + (f"@{self.revision}" if self.revision else ""))


def is_reference(text: str) -> bool:
    """Whether `text` reads as a Hub reference (the caller has already ruled out existing paths)."""
    text = str(text)
    return text.startswith(SCHEME) or (not text.endswith(".safetensors") and _PLAIN.match(text) is not None)


def parse(text: str) -> HubRef:
    text = str(text).strip()
    if text.startswith(SCHEME):
        m = _URL.match(text[len(SCHEME):])
        if not m or text.endswith("/"):
            raise HubError(f"{text}: not a Hub reference (use hf://owner/repo[@revision]/file.safetensors)")
        rev = unquote(m["rev"]) if m["rev"] else None
        return HubRef(m["repo"], m["path"], rev)
    m = _PLAIN.match(text)
    if not m:
        raise HubError(f"{text}: not a Hub reference (use owner/repo, owner/repo:name or owner/repo@revision)")
    name = m["name"]
    return HubRef(m["repo"], f"{name}.safetensors" if name else None, m["rev"])


def registry_file(hub_repo: str, weights_file: str) -> Path:
    """<weights_file> in the repository named by GAN_DEMO_HUB_REPO (owner/repo[@revision])."""
    m = _PLAIN.match(hub_repo.strip())
    if not m or m["name"]:
        raise HubError(f"GAN_DEMO_HUB_REPO={hub_repo}: expected owner/repo or owner/repo@revision")
    ref = parse(hub_repo)
    return download(HubRef(ref.repo, weights_file, ref.revision))


# --- the cache and the network ------------------------------------------------------------------------------------
def offline() -> bool:
    """HF_HUB_OFFLINE as the environment says now; if it is not set, as huggingface_hub read it at import."""
    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        return value.strip().lower() in _TRUE
    from huggingface_hub import constants
    return bool(constants.HF_HUB_OFFLINE)


def cache_dir() -> str | None:
    """The Hub cache as the environment names it now; None: huggingface_hub's default (~/.cache/huggingface/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None


def _cache_name() -> str:
    if cache_dir():
        return cache_dir()
    from huggingface_hub import constants
    return constants.HF_HUB_CACHE


# Resolved files, per process: the app asks for the same model's path on every status check, and each
# hf_hub_download would otherwise cost a round trip to the Hub. A file removed from the cache is resolved again.
_resolved: dict[tuple, Path] = {}
_lock = threading.Lock()


def download(ref: HubRef | str) -> Path:
    """The local path of a Hub checkpoint (downloaded into the cache on first use). Raises HubError."""
    ref = parse(ref) if isinstance(ref, str) else ref
    key = (ref, cache_dir(), offline())
    with _lock:
        hit = _resolved.get(key)
    if hit is not None and hit.is_file():
        return hit
    path = _call(ref, lambda: _download(ref))
    with _lock:
        _resolved[key] = path
    return path


def _download(ref: HubRef) -> Path:
    from huggingface_hub import hf_hub_download
    filename = ref.filename or _only_checkpoint(ref)
    return Path(hf_hub_download(ref.repo, filename, revision=ref.revision, cache_dir=cache_dir(),
                                local_files_only=offline()))


def _only_checkpoint(ref: HubRef) -> str:
    """The repository's single *.safetensors file: listed on the Hub, or in the cache when offline or unreachable."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.utils import RepositoryNotFoundError, RevisionNotFoundError
    files = None
    if not offline():
        try:
            files = HfApi().list_repo_files(ref.repo, revision=ref.revision)
        except (RepositoryNotFoundError, RevisionNotFoundError):
            raise
        except Exception:      # no network or a Hub hiccup: what the cache holds is still usable
            files = None
    if files is None:
        folder = Path(snapshot_download(ref.repo, revision=ref.revision, cache_dir=cache_dir(),
                                        local_files_only=True))
        files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    found = sorted(f for f in files if f.endswith(".safetensors"))
    if not found:
        raise HubError(f"{ref}: the repository holds no .safetensors checkpoint")
    if len(found) > 1:
        names = ", ".join(Path(f).stem for f in found[:6]) + (", …" if len(found) > 6 else "")
        raise HubError(f"{ref}: the repository holds {len(found)} checkpoints ({names}): name one, "
                       f"e.g. {ref.repo}:{Path(found[0]).stem}")
    return found[0]


def _call(ref: HubRef, fn):
    """Run a huggingface_hub call; its exceptions become one-line HubErrors that say what to do."""
    from huggingface_hub.utils import (EntryNotFoundError, GatedRepoError, HFValidationError,
                                       LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)
    what = ref.filename or "its checkpoint"
    try:
        return fn()
    except HubError:
        raise
    except LocalEntryNotFoundError:
        if offline():
            raise HubError(f"{ref}: {what} is not in the Hub cache ({_cache_name()}) and HF_HUB_OFFLINE is set: "
                           f"download it once online, or unset HF_HUB_OFFLINE") from None
        raise HubError(f"{ref}: cannot reach the Hub and {what} is not in the Hub cache ({_cache_name()})") from None
    except GatedRepoError:
        raise HubError(f"{ref}: gated repository: accept its terms on huggingface.co and log in "
                       f"(`hf auth login` or HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise HubError(f"{ref}: no such Hub repository (or it is private: log in with `hf auth login` "
                       f"or set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise HubError(f"{ref}: no revision '{ref.revision}' in {ref.repo}") from None
    except EntryNotFoundError:
        raise HubError(f"{ref}: no file {what} in {ref.repo}") from None
    except HFValidationError as e:
        raise HubError(f"{ref}: not a valid Hub repository id ({str(e).splitlines()[0]})") from None
    except OSError as e:         # network failures, a full disk, an unwritable cache
        raise HubError(f"{ref}: download failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
