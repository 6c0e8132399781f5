"""The distributions as an index would serve them, built for real once per session.

``python -m build`` builds the sdist from a copy of the tree, then the wheel from the
sdist, so a wheel that holds everything also proves the sdist is complete. The support
matrix's tooling (noxfile.py) is tested here too.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest

from .distributions import REPO, Distributions

GITHUB = "https://github.com/imagegen/django-imagegen"
RAW = "https://raw.githubusercontent.com/imagegen/django-imagegen/main/"
BLOB = f"{GITHUB}/blob/main/"
# Besides imagegen/ and docs/, the sdist's top level holds exactly these.
SDIST_TOP_LEVEL = {
    "CHANGELOG.md",
    "LICENSE",
    "MANIFEST.in",
    "PKG-INFO",
    "README.md",
    "django_imagegen.egg-info",
    "pyproject.toml",
    "setup.cfg",
}


def _package_files(dists: Distributions) -> set[str]:
    return {name for name in dists.tree if name.startswith("imagegen/")}


def test_wheel_holds_exactly_the_package(dists: Distributions) -> None:
    """Every file of the package in the tree (each subpackage's modules, migrations,
    templates, static files, translation catalogs compiled and not, py.typed) is in
    the wheel, and the wheel holds nothing else beside its .dist-info (LICENSE
    included)."""
    package = _package_files(dists)
    assert {
        "imagegen/py.typed",
        "imagegen/migrations/0001_initial.py",
        "imagegen/templates/admin/imagegen/generationjob/generate.html",
        "imagegen/static/imagegen/admin/progress.js",
        "imagegen/contrib/wagtail/templates/imagegen_wagtail/job.html",
        *(
            f"imagegen/locale/{language}/LC_MESSAGES/{domain}.{kind}"
            for language in ["fr", "de"]
            for domain in ["django", "djangojs"]
            for kind in ["po", "mo"]
        ),
    } <= package
    names = dists.wheel_names()
    dist_info = {name for name in names if name.split("/", 1)[0].endswith(".dist-info")}
    assert names - dist_info == package
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in dist_info)


def test_sdist_is_the_package_and_its_documents(dists: Distributions) -> None:
    """The sdist holds the package, LICENSE, README, CHANGELOG and every file of docs/;
    nothing of the test suite, the example project, scripts or benchmarks (a part of
    the suite could not run without the rest: it runs from a clone)."""
    names = dists.sdist_names()
    docs = {name for name in dists.tree if name.startswith("docs/")}
    assert docs and docs <= names
    assert _package_files(dists) <= names
    top_level = {name.split("/", 1)[0] for name in names} - {"imagegen", "docs"}
    assert top_level == SDIST_TOP_LEVEL
    assert (REPO / "LICENSE").read_text().startswith("MIT License")


def _matrix_django_versions() -> list[str]:
    """The Django feature releases the matrix runs, from its pip constraints."""
    versions = []
    for name in ["lts", "newest"]:
        text = (REPO / "requirements" / f"{name}.txt").read_text()
        (found,) = re.findall(r"^Django>=(\d+\.\d+),<", text, flags=re.MULTILINE)
        versions.append(found)
    return versions


def test_metadata_declares_the_supported_range(dists: Distributions) -> None:
    """The wheel's metadata: the MIT license as an SPDX expression with its file;
    classifiers that PyPI accepts, naming exactly the Django versions the matrix runs
    and Python 3.11 to 3.13; Django bounded from the LTS to below the feature release
    after the newest the matrix runs, Celery and httpx below their next major; the
    project's URLs on GitHub; a Markdown description."""
    from packaging.requirements import Requirement
    from trove_classifiers import classifiers as known

    meta = dists.metadata()
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["Description-Content-Type"] == "text/markdown"

    classifiers = meta.get_all("Classifier")
    assert set(classifiers) <= known
    assert not [c for c in classifiers if c.startswith("License ::")]  # the SPDX field says it
    assert "Typing :: Typed" in classifiers
    lts, newest = _matrix_django_versions()
    assert [c.rsplit(" ", 1)[1] for c in classifiers if c.startswith("Framework :: Django ::")] == [
        lts,
        newest,
    ]
    pythons = [c.rsplit(" ", 1)[1] for c in classifiers if re.search(r"Python :: 3\.\d+$", c)]
    assert pythons == ["3.11", "3.12", "3.13"]

    requires = {
        (req := Requirement(line)).name.lower(): req
        for line in meta.get_all("Requires-Dist")
        if "extra ==" not in line
    }
    major, minor = newest.split(".")
    assert requires["django"].specifier == f">={lts},<{major}.{int(minor) + 1}"
    assert requires["celery"].specifier == ">=5.5,<6"
    assert requires["httpx"].specifier == ">=0.27,<1"

    urls = dict(line.split(", ", 1) for line in meta.get_all("Project-URL"))
    assert set(urls) == {"Documentation", "Source", "Changelog", "Issues"}
    assert all(url.startswith(GITHUB) for url in urls.values())


# Markdown links and images, reference definitions, HTML src/href attributes.
_LINK_TARGETS = re.compile(
    r"\]\(\s*<?([^)\s>]+)|^\s*\[[^\]]+\]:\s*<?(\S+?)>?\s*$|\b(?:src|href)=[\"']([^\"']+)",
    re.MULTILINE,
)


def test_long_description_links_work_on_an_index_page(dists: Distributions) -> None:
    """Every link and image in the long description (the README, as PyPI shows it) is
    absolute or an anchor on the page; those into this repository name a file that
    exists (images through raw URLs, so they render)."""
    description = dists.metadata().get_payload()
    assert description.startswith("# imagegen")
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", description, flags=re.M | re.S))
    targets = [next(group for group in match if group) for match in _LINK_TARGETS.findall(prose)]
    assert len(targets) > 10
    for target in targets:
        assert target.startswith(("https://", "#", "mailto:")), target
        for prefix in (BLOB, RAW):
            if target.startswith(prefix):
                path = target.removeprefix(prefix).split("#", 1)[0]
                assert (REPO / path).is_file(), target
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)", description)
    assert images and all(image.startswith(RAW) for image in images)


@pytest.fixture(scope="session")
def noxfile() -> dict[str, Any]:
    """noxfile.py's namespace, loaded once (nox registers its sessions globally)
    without its pyenv lookup touching this process's environment."""
    pytest.importorskip("nox", reason="nox is not installed (requirements/test.txt)")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYENV_VERSION", "unchanged")
        patch.chdir(REPO)
        return runpy.run_path(str(REPO / "noxfile.py"))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["tests/test_a.py", "tests/install"]),
        (["-k", "admin", "-x"], ["tests/test_a.py", "tests/install", "-k", "admin", "-x"]),
        (["tests"], ["tests/test_a.py", "tests/install"]),
        (["tests/", "-x"], ["tests/test_a.py", "tests/install", "-x"]),
        (["tests/test_a.py::test_one"], ["tests/test_a.py::test_one"]),
        (["tests/install/test_site.py"], ["tests/install/test_site.py"]),
        (["tests/test_b.py"], []),
        (["tests/test_b.py", "tests/test_a.py", "-q"], ["tests/test_a.py", "-q"]),
    ],
)
def test_newest_session_narrows_its_tests_like_every_pass(
    noxfile: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    expected: list[str],
) -> None:
    """scripts/test's arguments narrow each pass; the newest-Django session keeps its
    own tests. Family: no arguments; options only; a directory holding all of them
    (with or without a slash); a test inside one of its files; a file inside one of
    its directories; a file outside them (nothing to run); a mix."""
    for name in ["tests/test_a.py", "tests/test_b.py", "tests/install/test_site.py"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    monkeypatch.chdir(tmp_path)
    assert noxfile["_narrowed"](["tests/test_a.py", "tests/install"], args) == expected


def test_newest_session_runs_existing_tests(noxfile: dict[str, Any]) -> None:
    """Every path the newest-Django session runs exists, the admin's test files
    included, and every Python the matrix runs appears among the classifiers."""
    tests = noxfile["NEWEST_TESTS"]
    assert all((REPO / path).exists() for path in tests)
    assert "tests/test_admin_jobs.py" in tests and "tests/test_pipeline.py" in tests
    pyproject = (REPO / "pyproject.toml").read_text()
    for python in [noxfile["LTS_PYTHON"], *noxfile["NEWEST_PYTHONS"]]:
        assert f'"Programming Language :: Python :: {python}"' in pyproject
