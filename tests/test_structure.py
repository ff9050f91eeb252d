"""The code's shape: each option's default and help are defined once, and the layers import only downwards."""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest
import typer

from specvoice.cli import app
from specvoice.options import DecodingOptions, DistillOptions, ListenOptions, ModelOptions, SynthesisOptions, describe

PACKAGE = Path(__file__).resolve().parents[1] / "specvoice"

# What each part of specvoice may import from specvoice (besides itself). Read from the bottom up: engine is
# model-agnostic, adapters wrap models for it, models/ finds weights, pipelines run on all of these, bench
# measures the pipelines, and the command line sits on top. The README's "Architecture" names the same layers.
BASE = {"errors", "files"}
ALLOWED = {
    "errors": set(),
    "files": {"errors"},
    "engine": set(),
    "audio": BASE,
    "whisper": BASE | {"engine", "audio"},
    "lm": BASE | {"engine"},
    "bark": BASE | {"engine"},
    "llasa": BASE | {"engine", "lm"},
    "hibari": BASE,
    "models": BASE | {"whisper", "lm"},
    "options": BASE | {"engine", "whisper"},
    "transcript": BASE | {"engine"},
    "transcribe": BASE | {"engine", "whisper", "audio", "options", "transcript"},
    "synthesize": BASE | {"engine", "audio", "options", "models", "bark", "llasa", "hibari"},
    "listen": BASE | {"engine", "whisper", "audio", "options", "transcript", "transcribe"},
    "distill": BASE | {"engine", "whisper", "audio", "options"},
    "bench": BASE | {"engine", "whisper", "audio", "options", "transcript", "models", "transcribe", "synthesize",
                     "listen"},
}
ALLOWED["cli"] = set(ALLOWED)  # the top: every layer below it (none imports it back)
ALLOWED["__main__"] = {"cli"}  # `python -m specvoice` only runs the command line
PIPELINES = {"transcribe", "synthesize", "listen", "distill"}


def specvoice_imports(path: Path) -> list[str]:
    """Dotted specvoice modules a file imports (relative imports resolved), e.g. 'whisper.model'."""
    here = path.relative_to(PACKAGE).with_suffix("").parts
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - node.level])
                module = ".".join(base + ([node.module] if node.module else []))
                names = [module] if node.module else [".".join(base + [alias.name]) for alias in node.names]
                found += names
            elif node.module and node.module.startswith("specvoice."):
                found.append(node.module.removeprefix("specvoice."))
        elif isinstance(node, ast.Import):
            found += [a.name.removeprefix("specvoice.") for a in node.names if a.name.startswith("specvoice.")]
    return [name for name in found if name]


def exists(module: str) -> bool:
    place = PACKAGE.joinpath(*module.split("."))
    return place.with_suffix(".py").is_file() or (place / "__init__.py").is_file()


def layer(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_import_only_downwards(path):
    own = layer(".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    allowed = ALLOWED.get(own, set())  # the package's own __init__ imports nothing
    for module in specvoice_imports(path):
        target = layer(module)
        assert exists(module), f"{path.relative_to(PACKAGE)} imports specvoice.{module}, which is not there"
        if target == own:
            continue
        assert target in allowed, f"{path.relative_to(PACKAGE)} imports specvoice.{module}"
        if own == "bench" and target in PIPELINES:
            assert module == target, f"bench must measure the {target} pipeline through its public entry, not {module}"


def test_the_layer_table_covers_every_part():
    parts = {layer(".".join(p.relative_to(PACKAGE).with_suffix("").parts)) for p in PACKAGE.rglob("*.py")}
    assert parts - {"__init__"} <= set(ALLOWED)


KERNELS = PACKAGE.parent / "kernels"


@pytest.mark.parametrize("path", sorted(KERNELS.rglob("*.py")), ids=lambda p: str(p.relative_to(KERNELS)))
def test_kernels_import_nothing_from_specvoice(path):
    """kernels/ is a leaf the engine picks up (engine/ops.py): no adapter, no engine, no pipeline in it."""
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        assert not any(name.split(".")[0] == "specvoice" for name in names), f"{path.name} imports {names}"


def cli_parameters(command: str) -> dict:
    click_command = typer.main.get_command(app).commands[command]
    return {param.name: param for param in click_command.params}


@pytest.mark.parametrize("command, options", [("transcribe", DecodingOptions), ("transcribe", ModelOptions),
                                              ("bench", ModelOptions), ("synthesize", SynthesisOptions),
                                              ("synthesize", ModelOptions), ("bench", ListenOptions),
                                              ("listen", ListenOptions), ("listen", DecodingOptions),
                                              ("listen", ModelOptions), ("distill", DistillOptions),
                                              ("distill", ModelOptions)])
def test_cli_defaults_and_help_come_from_the_options(command, options):
    parameters = cli_parameters(command)
    shared = [f for f in fields(options) if f.name in parameters]
    assert shared, "the command exposes none of these options"
    defaults = options()
    for f in shared:
        parameter = parameters[f.name]
        if command == "bench" and f.name == "draft":
            continue  # the bench always measures a draft: its default is the default draft, not "none"
        if command == "synthesize" and options is ModelOptions and f.name in ("model", "draft"):
            continue  # synthesize's model and draft are SynthesisOptions' (TTS models, not Whisper)
        default = getattr(defaults, f.name)
        if command == "distill" and f.name == "shares":
            default = ",".join(map(str, default))  # a tuple, given on the command line as 0,5
        assert getattr(parameter.default, "value", parameter.default) == default, f.name
        meta = describe(options, f.name, command)
        assert (parameter.help, parameter.rich_help_panel) == (meta["help"], meta["panel"]), f.name
        for bound in ("min", "max"):  # click's range types hold the bounds typer was given
            assert getattr(parameter.type, bound, None) == meta.get(bound), (f.name, bound)


def test_transcribe_offers_every_method_and_the_specasr_knobs():
    parameters = cli_parameters("transcribe")
    assert set(parameters["method"].type.choices) == {"auto", "ar", "spec", "specasr", "dllm"}
    for name in ("draft_len", "max_draft", "confidence", "recycle", "tree_positions", "language", "task", "timestamps"):
        assert name in parameters, name
