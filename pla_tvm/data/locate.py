"""Find dataset files: an explicit directory, ``PLA_TVM_DATA``, the shared data beside the
project, or the user cache — downloading the public UCR archive copy into the cache if needed.

The order makes the common cases need no flags: tests and the demo find ``../shared/data`` next to
a source checkout; an installed package run elsewhere downloads ECG5000 once into
``~/.cache/pla-tvm``; an offline machine gets one sentence saying where to put the files.
"""

from __future__ import annotations

import io
import logging
import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from pla_tvm.data.ucr import find_split_file
from pla_tvm.errors import DataNotFoundError

LOG = logging.getLogger(__name__)

#: Environment variable naming the data root (a directory holding ``ecg5000/``, ``mitdb/`` …).
DATA_ENV = "PLA_TVM_DATA"

#: Where the UCR archive's datasets are published, one zip per dataset.
UCR_DOWNLOAD_URL = "https://www.timeseriesclassification.com/aeon-toolkit/{name}.zip"

#: Seconds to wait for the download server before declaring the machine offline.
DOWNLOAD_TIMEOUT_S = 30

SPLITS = ("train", "test")


def project_shared_data() -> Path:
    """``../shared/data`` relative to the project root of a source checkout."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def user_cache_dir() -> Path:
    """Per-user cache for downloaded datasets (``$XDG_CACHE_HOME/pla-tvm``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pla-tvm"


def data_roots() -> list[Path]:
    """Data roots searched when no directory is given, most specific first."""
    roots = []
    if os.environ.get(DATA_ENV):
        roots.append(Path(os.environ[DATA_ENV]).expanduser())
    roots += [project_shared_data(), user_cache_dir()]
    return roots


def _search_roots(data_dir: Path | None) -> list[Path]:
    return [Path(data_dir).expanduser()] if data_dir is not None else data_roots()


def _candidate_dirs(name: str, data_dir: Path | None) -> list[Path]:
    candidates = []
    roots = _search_roots(data_dir)
    for root in roots:
        candidates += [root, root / name.lower(), root / name]
    return list(dict.fromkeys(candidates))


def _files_in(directory: Path, name: str) -> dict[str, Path] | None:
    files = {split: find_split_file(directory, name, split) for split in SPLITS}
    if all(files.values()):
        return files  # type: ignore[return-value]
    return None


def download_ucr(name: str, destination: Path, url: str | None = None) -> dict[str, Path]:
    """Download dataset ``name`` from the UCR archive and keep its train/test files.

    Files are extracted to a temporary name and renamed into place, so an interrupted download
    never leaves a half-written split that later runs would trust.
    """
    url = url or UCR_DOWNLOAD_URL.format(name=name)
    LOG.info("downloading %s from %s into %s", name, url, destination)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    destination.mkdir(parents=True, exist_ok=True)
    wanted = {f"{name}_{split.upper()}.txt".lower(): split for split in SPLITS}
    for member in archive.namelist():
        base = Path(member).name
        if base.lower() in wanted:
            target = destination / base
            partial = target.with_suffix(target.suffix + ".part")
            partial.write_bytes(archive.read(member))
            partial.replace(target)
    files = _files_in(destination, name)
    if files is None:
        raise DataNotFoundError(f"{url} did not contain {name}_TRAIN.txt and {name}_TEST.txt")
    return files


def locate_ucr(name: str, data_dir: Path | None = None, download: bool = True) -> dict[str, Path]:
    """Paths of the train and test files of UCR dataset ``name``.

    Parameters
    ----------
    name : str
        Dataset name as the archive spells it, e.g. ``"ECG5000"``.
    data_dir : Path, optional
        A directory holding the files (or a data root with a ``<name lower-case>/`` folder).
        When given, only it is searched and nothing is downloaded.
    download : bool
        Try the public download into the user cache when the files are not found.

    Raises
    ------
    DataNotFoundError
        With one sentence naming the places searched and what to do.
    """
    searched = _candidate_dirs(name, data_dir)
    for directory in searched:
        files = _files_in(directory, name)
        if files is not None:
            return files
    if data_dir is not None or not download:
        reason = "no download was attempted for an explicit --data-dir" if data_dir is not None \
            else "downloading is disabled"
    else:
        try:
            return download_ucr(name, user_cache_dir() / name.lower())
        except (urllib.error.URLError, OSError, zipfile.BadZipFile) as error:
            reason = f"download failed: {getattr(error, 'reason', error)}"
    roots = _search_roots(data_dir)
    raise DataNotFoundError(
        f"{name} was not found (looked in {', '.join(map(str, roots))} and their "
        f"{name.lower()}/ folders) and {reason}; put "
        f"{name}_TRAIN.txt and {name}_TEST.txt (or .tsv/.arff) in one of those directories, "
        f"or pass --data-dir or set {DATA_ENV} to a directory holding them.")
