"""End-to-end runs of the installed `archsim` console script (the default suite keeps these)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ARCHSIM = shutil.which("archsim", path=str(Path(sys.executable).parent)) or "archsim"


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([ARCHSIM, *args], capture_output=True, text=True, timeout=300, env=os.environ, **kw)


def test_compare_vgg16_vgg19_e2e():
    r = run("compare", "vgg16", "vgg19", "--profile", "torch")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "vgg16: 39 layers, torchvision, torch profile, execution order" in out
    assert "similarity 0.8667 (39 matches / 45 columns)" in out
    assert "gaps 6" in out
    r = run("compare", "vgg16", "vgg19")  # the default profile is ops (no Dropout: eval-time no-op)
    assert r.returncode == 0 and "vgg16: 37 layers, torchvision, ops profile" in r.stdout
    assert "similarity 0.8605 (37 matches / 43 columns)" in r.stdout
    # the inserted layers are listed with their module paths
    assert any(line.startswith("+") and "Conv2d" in line and "features.10" in line for line in out.splitlines())


def test_compare_json_keras_profile():
    r = run("compare", "vgg16", "vgg19", "--profile", "keras-like", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["score"] == 15 and d["matches"] == 21 and d["gaps"] == 3 and d["length"] == 24
    assert d["similarity"] == pytest.approx(21 / 24)
    assert len(d["tokens_a"]) == 21 and len(d["tokens_b"]) == 24
    assert [op["op"] for op in d["ops"]].count("gap_a") == 3
    assert d["order"] == {"a": "execution", "b": "execution"}


def test_compare_literal_tokens_with_matrix():
    r = run("compare", "--tokens", "CCMCCMCCCMCCCMCCCMLLL", "CRMCRMCRCRMCRCRMCRCRMALRDLRDL", "--matrix")
    assert r.returncode == 0, r.stderr
    assert "score -10" in r.stdout and "0*" in r.stdout


def test_unknown_model_exits_2_with_suggestions():
    r = run("compare", "vgg17", "vgg19")
    assert r.returncode == 2
    assert "did you mean" in r.stderr and "vgg16" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_broken_factory_file_is_named(tmp_path):
    f = tmp_path / "net.py"
    f.write_text("raise ImportError('torch.cuda not available')\n")
    r = run("compare", f"{f}:build", "vgg11")
    assert r.returncode == 1 and "net.py" in r.stderr and "torch.cuda not available" in r.stderr
    assert "Traceback" not in r.stderr


def test_list_with_wildcards():
    r = run("list", "vgg1*", "--source", "torchvision")
    assert r.returncode == 0
    names = r.stdout.split()
    assert "tv:vgg11" in names and "tv:vgg19_bn" in names and all("vgg1" in n for n in names)
    r = run("list", "resnet50*", "--count")
    assert int(r.stdout) > 5


def test_tokens_command():
    r = run("tokens", "vgg16", "--profile", "keras-like")
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "CCMCCMCCCMCCCMCCCMLLL"


def test_help_does_not_import_torch():
    code = "import sys, archsim.cli; sys.exit('torch' in sys.modules or 'numba' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    assert run("--help").returncode == 0


def test_misspelt_source_is_named_e2e():
    r = run("compare", "timn:resnet50", "vgg11")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("archsim: error: unknown source 'timn'; did you mean timm?")


@pytest.mark.parametrize("args", [["tokens", "vgg11", "--input-size", "0"],
                                  ["tokens", "vgg11", "--input-size", "-5"],
                                  ["compare", "vgg11", "vgg13", "--input-size", "0"]])
def test_input_size_must_be_positive(args):
    from click.testing import CliRunner

    from archsim.cli import cli
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2 and "Invalid value for '--input-size'" in res.stderr, res.output
    from archsim.errors import UsageError
    from archsim.tracing import extract
    for size in (0, -224, (3, 0, 224), (3, -1, 1), True, (), "224"):
        with pytest.raises(UsageError, match="input size must be a positive"):
            extract("vgg11", input_size=size)


LONG = "y" * 300


@pytest.mark.parametrize("args", [["compare", f"{LONG}:{LONG}", "vgg11"], ["matrix", LONG, LONG, "-o", "{tmp}"],
                                  ["compare", f"timn{LONG}:resnet50", "vgg11"], ["nearest", "vgg11", "--zoo", LONG]])
def test_long_names_are_shortened_in_messages(args, tmp_path):
    from click.testing import CliRunner

    from archsim.cli import cli
    res = CliRunner().invoke(cli, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert res.exit_code == 2, res.output
    (line,) = res.stderr.strip().splitlines()[-1:]
    assert line.startswith("archsim: error: ") and "…" in line and len(line) < 250, line
