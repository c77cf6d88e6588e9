"""The demo's embedded data: real text about Python that every machine with Python has, no download.

- `reference_text()`: the language reference the interpreter ships for `help()` (`pydoc_data.topics`).
- `source_text()`: the standard library's source code, docstrings cut (optional pretraining text, ~8 MB).
- `docstrings()`: every module, class and function docstring of the standard library, read from the source
  files with `ast` (nothing is imported or executed), with its module and qualified name.
- `area_examples()`: docstrings labelled by the area of the library they come from (text, files and the
  OS, networking, data formats, concurrency, numbers) — a classification task — split **by module** (e.g.
  `asyncio.tasks`), so the test modules were never seen in training.
- `qa_pairs()`: "What does `json.dumps` do?" → the first sentence of its docstring, split **by function**,
  for instruction tuning; held-out functions test whether answers generalise.

Everything is deterministic: sorted files, seeded splits by a hash of the name (so adding a module never
reshuffles the others).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import re
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scratchlm.errors import ScratchLMError

# Top-level modules and packages by area. A module's docstrings take its area's label.
AREAS: dict[str, tuple[str, ...]] = {
    "text": (
        "string",
        "re",
        "textwrap",
        "difflib",
        "unicodedata",
        "stringprep",
        "readline",
        "rlcompleter",
        "gettext",
        "locale",
        "codecs",
        "encodings",
        "html",
        "shlex",
        "pprint",
        "reprlib",
    ),
    "files and OS": (
        "os",
        "pathlib",
        "shutil",
        "glob",
        "fnmatch",
        "tempfile",
        "stat",
        "filecmp",
        "fileinput",
        "io",
        "posixpath",
        "ntpath",
        "genericpath",
        "linecache",
        "platform",
        "getpass",
        "pwd",
        "grp",
        "tty",
        "pty",
        "termios",
        "resource",
        "sysconfig",
        "site",
        "signal",
        "mmap",
    ),
    "networking": (
        "socket",
        "ssl",
        "http",
        "urllib",
        "email",
        "smtplib",
        "poplib",
        "imaplib",
        "ftplib",
        "socketserver",
        "ipaddress",
        "mimetypes",
        "webbrowser",
        "wsgiref",
        "xmlrpc",
        "selectors",
        "select",
        "uuid",
        "nntplib",
        "telnetlib",
        "smtpd",
        "mailbox",
        "quopri",
        "base64",
        "binascii",
    ),
    "data formats": (
        "json",
        "csv",
        "xml",
        "pickle",
        "pickletools",
        "copyreg",
        "shelve",
        "dbm",
        "sqlite3",
        "configparser",
        "tomllib",
        "plistlib",
        "zipfile",
        "tarfile",
        "gzip",
        "bz2",
        "lzma",
        "zlib",
        "struct",
        "marshal",
        "netrc",
        "mailcap",
        "wave",
        "aifc",
        "sunau",
        "chunk",
    ),
    "concurrency": (
        "threading",
        "multiprocessing",
        "asyncio",
        "concurrent",
        "queue",
        "sched",
        "subprocess",
        "contextvars",
        "_threading_local",
        "asynchat",
        "asyncore",
    ),
    "numbers": (
        "math",
        "cmath",
        "decimal",
        "_pydecimal",
        "fractions",
        "random",
        "statistics",
        "numbers",
        "operator",
        "bisect",
        "heapq",
        "array",
        "colorsys",
        "datetime",
        "_strptime",
        "calendar",
        "time",
        "zoneinfo",
    ),
}
_AREA_OF = {module: area for area, modules in AREAS.items() for module in modules}


@dataclass(frozen=True)
class Docstring:
    module: str  # dotted module name, e.g. "json.decoder"
    name: str  # qualified name inside the module ("" for the module docstring), e.g. "JSONDecoder.decode"
    kind: str  # "module", "class" or "function"
    text: str

    @property
    def top(self) -> str:
        return self.module.split(".")[0]


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def reference_text() -> str:
    """The language reference topics of `help()` (pydoc_data.topics), about 0.46 MB of English."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip it
        raise ScratchLMError("this Python has no pydoc_data (its help() topics): pass --data-dir") from None
    return "\n\n".join(f"{name}\n\n{text.strip()}" for name, text in sorted(topics.items()))


def source_text(max_mb: float | None = None) -> str:
    """The standard library's Python source (the modules `docstrings` reads), each file headed by its
    module name, in sorted order, up to `max_mb` megabytes of whole files (all of it, ~8 MB, by default).
    Docstrings are replaced by `...`: they are in `docstrings()` already, and text held out from
    `docstrings()` must not come back through the code."""
    limit = None if max_mb is None else int(max_mb * 1e6)  # characters: a megabyte of mostly ASCII
    parts, size = [], 0
    for module, path in _module_files():
        if module.startswith("pydoc_data"):  # the language reference again, as string literals
            continue
        try:
            text = f"# module {module}\n" + without_docstrings(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        if limit is not None and size + len(text) + 2 > limit:
            break
        parts.append(text)
        size += len(text) + 2
    if not parts:
        raise ScratchLMError(f"{max_mb} MB holds no whole source file: ask for more")
    return "\n\n".join(parts)


def without_docstrings(code: str) -> str:
    """`code` with each module, class and function docstring replaced by `...` (comments and layout kept).

    >>> print(without_docstrings("def f():\\n    'Add one.'\\n    return 1\\n"))
    def f():
        ...
        return 1
    <BLANKLINE>
    """
    lines = code.split("\n")  # as ast counts lines (str.splitlines would also split at form feeds)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    spans = []
    bodies = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.walk(ast.parse(code)):
        first = node.body[0] if isinstance(node, bodies) and node.body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            start = _offset(lines, starts, first.lineno, first.col_offset)
            spans.append((start, _offset(lines, starts, first.end_lineno, first.end_col_offset)))
    for start, end in sorted(spans, reverse=True):
        code = code[:start] + "..." + code[end:]
    return code


def _offset(lines: list[str], starts: list[int], lineno: int, col: int) -> int:
    """The string offset of ast's (1-based line, UTF-8 byte column)."""
    return starts[lineno - 1] + len(lines[lineno - 1].encode("utf-8")[:col].decode("utf-8"))


def _module_files() -> Iterator[tuple[str, Path]]:
    root = stdlib_root()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        parts = rel.parts
        if parts[0] in ("site-packages", "test", "idlelib", "lib2to3", "turtledemo", "tkinter", "ensurepip"):
            continue
        if any(p in ("test", "tests") or p.startswith("__pycache__") for p in parts):
            continue
        name = ".".join(rel.with_suffix("").parts)
        yield name.removesuffix(".__init__"), path


def docstrings(min_chars: int = 20) -> list[Docstring]:
    """Every module/class/function docstring of the standard library, parsed with `ast` (never imported)."""
    return [d for d in _all_docstrings() if len(d.text) >= min_chars]


@functools.lru_cache(maxsize=1)
def _all_docstrings() -> tuple[Docstring, ...]:  # parsing the library takes ~2 s: once per process
    out: list[Docstring] = []
    for module, path in _module_files():
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        out += _walk(module, tree, "")
    if not out:
        raise ScratchLMError(f"found no docstrings under {stdlib_root()}")
    return tuple(out)


def _walk(module: str, node: ast.AST, prefix: str) -> list[Docstring]:
    found = []
    doc = (
        ast.get_docstring(node, clean=True)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        else None
    )
    if doc:
        kind = (
            "module"
            if isinstance(node, ast.Module)
            else "class"
            if isinstance(node, ast.ClassDef)
            else "function"
        )
        found.append(Docstring(module, prefix, kind, doc))
    for child in getattr(node, "body", []):
        if isinstance(
            child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        ) and not child.name.startswith("_"):
            name = f"{prefix}.{child.name}" if prefix else child.name
            found += _walk(module, child, name)
    return found


def split_of(key: str, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """ "train", "val" or "test" for `key`, from a hash of it: stable, and independent of other keys."""
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return "train" if h < fractions[0] else "val" if h < fractions[0] + fractions[1] else "test"


def area_docstrings(fractions=(0.7, 0.1, 0.2)) -> list[tuple[Docstring, str, str]]:
    """(docstring, area, split) for every docstring of a module with a known area; the split is drawn by
    module (e.g. asyncio.tasks), so no test docstring comes from a module seen in training."""
    rows = []
    for d in docstrings(min_chars=40):
        area = _AREA_OF.get(d.top)
        if area is not None:
            rows.append((d, area, split_of(d.module, fractions)))
    return rows


def area_examples(fractions=(0.7, 0.1, 0.2), max_chars: int = 600) -> dict[str, list[tuple[str, str]]]:
    """{"train"|"val"|"test": [(docstring text, area)]}: the classification data of the demo."""
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for d, area, split in area_docstrings(fractions):
        splits[split].append((d.text[:max_chars], area))
    return splits


_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)", re.DOTALL)


def summary(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    m = _SENTENCE.match(first)
    return m.group(1) if m else first


def qa_pairs(fractions=(0.85, 0.05, 0.1), max_chars: int = 300) -> dict[str, list[dict]]:
    """{"train"|"val"|"test": [{"instruction", "input", "output"}]}: "What does `json.dumps` do?" answered
    by the first sentence of its docstring; functions and classes of public modules; split by name."""
    splits: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for d in docstrings(min_chars=30):
        if d.kind == "module" or any(part.startswith("_") for part in d.module.split(".")):
            continue
        answer = summary(d.text)
        if not 15 <= len(answer) <= max_chars or answer.lower().startswith(("deprecated", "internal")):
            continue
        qualified = f"{d.module}.{d.name}"
        question = f"What does `{qualified}` do?"
        splits[split_of(qualified, fractions)].append(
            {"instruction": question, "input": "", "output": answer}
        )
    return splits
