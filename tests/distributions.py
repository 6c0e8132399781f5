"""The sdist and the wheel of this checkout, built for real, as an index would serve
them; shared by the packaging test and the install test (one build a session)."""

from __future__ import annotations

import email
import email.message
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Distributions:
    sdist: Path
    wheel: Path
    tree: set[str]  # the repository's files (tracked or new), relative paths

    def wheel_names(self) -> set[str]:
        with zipfile.ZipFile(self.wheel) as wheel:
            return set(wheel.namelist())

    def sdist_names(self) -> set[str]:
        """The sdist's files, without its leading ``name-version/`` directory."""
        with tarfile.open(self.sdist) as sdist:
            return {
                member.name.split("/", 1)[1]
                for member in sdist.getmembers()
                if member.isfile() and "/" in member.name
            }

    def metadata(self) -> email.message.Message:
        with zipfile.ZipFile(self.wheel) as wheel:
            (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
            return email.message_from_bytes(wheel.read(name))


def repository_files() -> set[str]:
    """The tree's files as a commit would hold them: tracked or new, not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return {name for name in listed.split("\0") if name and (REPO / name).is_file()}


def build(source: Path, out: Path) -> Distributions:
    """Build the sdist from a copy of the repository's files in ``source`` (so
    build/, *.egg-info, .nox/ and other runs in the working tree never leak in),
    then the wheel from the sdist, into ``out``."""
    tree = repository_files()
    for name in tree:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Distributions(sdist=sdist, wheel=wheel, tree=tree)
