"""The package reads in the book's order: every module imports only from its own stage or an earlier one, and no
module is longer than 300 lines."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "diffnotes"

#: The stages in the book's order (schedules -> forward -> posterior -> networks -> training -> samplers ->
#: evaluation -> plots), with the foundations before them and the shipped models after evaluation.
STAGES = [
    ["runtime", "checks", "files", "data", "perfnotes", "captions", "grading"],
    ["gaussians"],
    ["schedules"],
    ["forward", "mixtures", "toy"],
    ["posterior", "posterior_grid"],
    ["nets"],
    ["objective", "checkpoints", "training", "distributed", "latent"],
    ["samplers"],
    ["evaluation"],
    ["pretrained", "train_digits", "train_autoencoder", "train_latent", "train_text", "pipeline", "prompt_quality",
     "at_scale"],
    ["plotting"],
]
RANK = {name: rank for rank, names in enumerate(STAGES) for name in names}
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def stage(dotted: str) -> int:
    """The rank of ``diffnotes.a.b``: that of its first component (a module or a subpackage)."""
    return RANK[dotted.split(".")[1]]


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("diffnotes"):
            found.update(f"{node.module}.{a.name}" if node.module == "diffnotes" else node.module for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("diffnotes."))
    return found


def dotted(path: Path) -> str:
    return "diffnotes." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def test_every_module_has_a_stage():
    assert {dotted(p).split(".")[1] for p in MODULES} == set(RANK)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_backwards(path):
    here = stage(dotted(path))
    later = sorted(m for m in imports(path) if m != "diffnotes" and stage(m) > here)
    assert not later, f"{dotted(path)} (stage {here}) imports from later stages: {later}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_under_300_lines(path):
    assert len(path.read_text().splitlines()) < 300


def test_the_check_itself_catches_a_backward_import(tmp_path):
    """A forward import is reported (so that the test above can fail)."""
    fake = tmp_path / "fake.py"
    fake.write_text("from diffnotes.evaluation.quality import evaluate\n")
    assert stage(next(iter(imports(fake)))) > stage("diffnotes.posterior")
