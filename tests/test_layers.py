"""Imports point only down the pipeline: a module imports from its own layer or lower ones, never higher.

Every module under src/scratchlm is parsed with `ast` (imports at module level and inside functions, `import
x`, `from x import y` and relative imports); a module's layer is its top-level subpackage or module name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. Same-layer imports are fine. data sits above formats because data/prepare.py loads and saves
# tokenizer files (formats.tokenizer_files); nothing in model, interop or formats uses data. formats (our own
# on-disk formats) sits above interop because our loaders dispatch to other tools' readers (an HF directory
# or a Hub name in load_model, tokenizer.json and tiktoken files in load_tokenizer/save_tokenizer). serve
# sits with inference, below eval and training: it uses generation and classifier inference, nothing that
# trains, and nothing below the pipeline uses it.
LAYERS: list[set[str]] = [
    {"errors", "files", "device", "config", "precision", "results"},
    {"tokenizer", "scratchlm"},  # scratchlm/__init__.py re-exports the tokenizer
    {"model"},
    {"interop"},
    {"formats"},
    {"data"},
    {"generate"},
    {"serve"},
    {"eval"},
    {"train"},
    {"finetune"},
    {"report"},
    {"demo"},
    {"cli", "__main__"},
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}


def _module_name(path: str) -> str:
    """'scratchlm/interop/peft.py' → 'scratchlm.interop.peft'; a package's __init__.py is the package."""
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str:
    """The layer name of a dotted module: its first part below scratchlm (the package itself: 'scratchlm')."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imported(path: str, source: str) -> list[tuple[int, str]]:
    """(line, dotted module) of every scratchlm import in `source`, relative ones resolved. `from scratchlm
    import x` names scratchlm.x when x is a layer's module, else the package itself (__version__,
    Tokenizer)."""
    module = _module_name(path)
    package = module if Path(path).name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: package.count(".") + 2 - node.level]
                target = ".".join([*base, *([node.module] if node.module else [])])
            if target == "scratchlm":
                names = [f"scratchlm.{a.name}" if a.name in LEVEL else "scratchlm" for a in node.names]
                found += [(node.lineno, name) for name in names]
            else:
                found.append((node.lineno, target))
    return [(line, name) for line, name in found if name == "scratchlm" or name.startswith("scratchlm.")]


def upward_imports(path: str, source: str) -> list[str]:
    """A readable line for each import in `source` (the module at `path`, e.g. 'scratchlm/interop/peft.py')
    into a layer above the module's own; also for a module in no layer."""
    module = _module_name(path)
    own = _layer(module)
    if own not in LEVEL:
        return [f"{path}: no layer for '{own}' (add it to LAYERS in tests/test_layers.py)"]
    problems = []
    for line, target in _imported(path, source):
        layer = _layer(target)
        if layer not in LEVEL:
            problems.append(f"{path}:{line} imports {target} (no layer for '{layer}')")
        elif LEVEL[layer] > LEVEL[own]:
            problems.append(f"{path}:{line} imports {target} ({layer} is above {own})")
    return problems


def _sources() -> list[tuple[str, str]]:
    root = SRC / "scratchlm"
    return [
        (p.relative_to(SRC).as_posix(), p.read_text(encoding="utf-8")) for p in sorted(root.rglob("*.py"))
    ]


def test_imports_point_down_the_pipeline():
    sources = _sources()
    assert len(sources) > 50
    problems = [problem for path, source in sources for problem in upward_imports(path, source)]
    assert not problems, "imports into a higher layer:\n" + "\n".join(problems)


def private_uses(path: str, source: str) -> list[str]:
    """A private name of another scratchlm module that `source` uses: `from scratchlm.x import _name`, or
    `mod._name` of a module it imported. Only a private submodule of its own package (tokenizer._bpe_core)
    is fine."""
    package = _module_name(path).rpartition(".")[0]
    tree = ast.parse(source)
    bound = {}  # name in this module → the scratchlm module it was imported from (or as)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scratchlm"):
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                if _private(alias.name) and node.module != package:
                    problems.append(f"{path}:{node.lineno} imports {alias.name} from {node.module}")
        elif isinstance(node, ast.Import):
            bound.update(
                {a.asname: a.name for a in node.names if a.asname and a.name.startswith("scratchlm")}
            )
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr):
            owner = bound.get(node.value.id)
            if owner and owner != package:
                problems.append(f"{path}:{node.lineno} uses {node.value.id}.{node.attr} ({owner})")
    return problems


def test_no_private_names_across_modules():
    problems = [problem for path, source in _sources() for problem in private_uses(path, source)]
    assert not problems, "private names used from another module:\n" + "\n".join(problems)


def test_private_checker_reports_the_old_uses():
    assert private_uses(
        "scratchlm/serve/server.py", "from scratchlm.formats.model_files import _classifier_dir"
    )
    assert private_uses(
        "scratchlm/formats/model_files.py", "from scratchlm.interop import hf\nhf._load_exact(m)"
    )
    assert private_uses("scratchlm/tokenizer/train.py", "from scratchlm.tokenizer import _bpe_core") == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_tokenizer_like_is_defined_once():
    defined = [
        path
        for path, source in _sources()
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ClassDef) and node.name == "TokenizerLike"
    ]
    assert defined == ["scratchlm/tokenizer/protocol.py"]


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        # the back-up imports this layering removed: each must be reported if it comes back
        (
            "scratchlm/train/pretrain.py",
            "def f():\n    from scratchlm.finetune.lora import apply_lora\n",
            "finetune is above train",
        ),
        (
            "scratchlm/interop/model_files.py",
            "from scratchlm.finetune.lora import apply_lora",
            "above interop",
        ),
        (
            "scratchlm/formats/model_files.py",
            "from scratchlm.finetune.lora import merge_lora",
            "above formats",
        ),
        ("scratchlm/interop/peft.py", "from scratchlm.finetune.lora import apply_lora", "above interop"),
        ("scratchlm/interop/peft.py", "from ..finetune.lora import apply_lora", "scratchlm.finetune.lora"),
        ("scratchlm/interop/peft.py", "from scratchlm.finetune import lora", "scratchlm.finetune"),
        ("scratchlm/interop/peft.py", "import scratchlm.finetune.lora as lora", "scratchlm.finetune.lora"),
        (
            "scratchlm/interop/model_files.py",
            "def _load_run(path):\n    from scratchlm.train.checkpoint import best_checkpoint\n",
            "train is above interop",
        ),
        (
            "scratchlm/formats/model_files.py",
            "from scratchlm.train.checkpoint import load_weights",
            "train is above formats",
        ),
        ("scratchlm/formats/checkpoint.py", "from scratchlm.train.loop import TrainState", "above formats"),
        (
            "scratchlm/generate/chat.py",
            "from scratchlm.serve.engine import Engine",
            "serve is above generate",
        ),
        ("scratchlm/generate/generate.py", "from scratchlm.serve.chat import ChatSession", "above generate"),
        (
            "scratchlm/serve/server.py",
            "def build_service():\n    from scratchlm.finetune.classifier import Classifier\n",
            "finetune is above serve",
        ),
        (
            "scratchlm/generate/classifier.py",
            "from scratchlm.train.precision import autocast",
            "above generate",
        ),
        ("scratchlm/model/lora.py", "from scratchlm.finetune.classify import x", "finetune is above model"),
        ("scratchlm/data/prepare.py", "from scratchlm.train import checkpoint", "train is above data"),
        ("scratchlm/newthing.py", "import os", "no layer for 'newthing'"),
    ],
)
def test_checker_reports_upward_imports(path, source, expected):
    problems = upward_imports(path, source)
    assert problems and any(expected in problem for problem in problems), problems
    assert problems[0].startswith(path)


def test_checker_allows_downward_and_same_layer_imports():
    source = (
        "import os\nfrom scratchlm.errors import ScratchLMError\n"
        "from scratchlm.model.lora import apply_lora\nfrom scratchlm.interop import hf\n"
        "from . import checkpoint\nfrom scratchlm import files\n"
    )
    assert upward_imports("scratchlm/formats/model_files.py", source) == []
    assert upward_imports("scratchlm/cli/main.py", "from scratchlm import __version__") == []
