"""The zoo explorer (`archsim zoo map`), its family bands, and the page itself in headless Chromium.

The browser tests drive the SYSTEM Chromium through playwright-python (no `playwright install`):
they skip, saying why, when playwright or Chromium is missing (`apt-get install chromium`,
`pip install playwright`); ARCHSIM_CHROMIUM names another Chromium binary.
"""
from __future__ import annotations

import base64
import os
import shutil
import string
import sys
import time
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from archsim.alignment import align
from archsim.tokens import LayerSeq
from archsim.zoo.families import Families, bands_from_linkage, dominant_prefix, family_bands, stems
from archsim.zoo.store import PACKAGED, load_zoo

needs_zoo = pytest.mark.skipif(not PACKAGED.exists(), reason="no shipped zoo cache")


# ------------------------------------------------------------------------------------------ families

def test_stems_end_at_word_boundaries():
    assert stems("vgg16_bn") == ["vgg", "vgg16", "vgg16_bn"]
    assert stems("EfficientNetV2B0") == ["Efficient", "EfficientNet", "EfficientNetV", "EfficientNetV2",
                                         "EfficientNetV2B", "EfficientNetV2B0"]
    assert stems("xlm-roberta") == ["xlm", "xlm-roberta"]
    assert stems("") == []
    from archsim.zoo.families import _related  # two named halves of a subtree stay one band when related
    assert _related("resnet", "resnet50") and _related("EfficientNet", "efficientnet_v2")
    assert not _related("vit", "vitamin") and not _related("vgg", "resnet")


def test_dominant_prefix_names_the_family_of_any_source():
    got = dominant_prefix(["timm:resnet18", "timm:resnet50d", "tv:resnet34", "timm:vgg11"])
    assert got == ("timm+tv:resnet*", 0.75)
    # hf: names count the part after the last "/", and match other sources case-insensitively
    assert dominant_prefix(["hf:google/vit-base", "hf:vit_mae", "keras:ViT"])[0] == "hf+keras:vit*"
    assert dominant_prefix(["keras:ResNet50", "keras:ResNet101V2", "tv:resnet18"]) == ("keras+tv:ResNet*", 1.0)
    # no stem shared by 60%: the dominant source, with its share
    assert dominant_prefix(["timm:a1", "timm:b2", "tv:c3"]) == ("timm:*", 2 / 3)
    assert dominant_prefix(["mine", "mine_v2"]) == ("mine*", 1.0)  # unqualified names
    assert dominant_prefix([]) == ("", 0.0)


def _blocks(sizes, noise=0.05, seed=0):
    """A similarity matrix of len(sizes) families (0.9 inside, 0.2 across), rows shuffled."""
    rng = np.random.default_rng(seed)
    fam = np.repeat(np.arange(len(sizes)), sizes)
    sim = np.where(fam[:, None] == fam[None, :], 0.9, 0.2) + rng.uniform(-noise, noise, (len(fam),) * 2)
    sim = (sim + sim.T) / 2
    np.fill_diagonal(sim, 1.0)
    perm = rng.permutation(len(fam))
    return sim[np.ix_(perm, perm)], fam[perm]


def test_families_label_contiguous_clusters():
    groups = [["tv:vgg11", "tv:vgg13", "tv:vgg16", "timm:vgg19", "timm:vgg11_bn"],
              ["timm:resnet18", "timm:resnet50d", "tv:resnet34", "timm:resnet101", "timm:resnet152", "tv:resnet50"],
              ["hf:bert", "hf:bert-generation", "hf:org/bert_large", "hf:roberta"],
              ["keras:EfficientNetB0", "keras:EfficientNetB3", "keras:EfficientNetV2S"]]
    sim, fam_of = _blocks([len(g) for g in groups])
    pools = [list(g) for g in groups]
    names = [pools[f].pop(0) for f in fam_of]
    fam = family_bands(sim, names, min_size=1)
    assert sorted(fam.order.tolist()) == list(range(len(names)))
    labels = {b.label: [names[i] for i in fam.order[b.start:b.stop]] for b in fam.bands}
    assert set(labels) == {"tv+timm:vgg*", "timm+tv:resnet*", "hf:bert*", "keras:EfficientNet*"}
    for g in groups:  # each family is one contiguous band of the order
        assert any(sorted(v) == sorted(g) for v in labels.values())
    assert labels["hf:bert*"] and fam.labelled(4) and all(b.size >= 4 for b in fam.labelled(4))
    assert [b.label for b in fam.ticks(min_gap=0, min_size=1)] == [b.label for b in fam.bands]


def test_mixed_bands_are_not_ticked_and_ticks_keep_their_distance():
    sim, fam_of = _blocks([6, 6, 6, 6])
    names = [f"timm:{a}{i}" for i, a in enumerate(np.array(["vgg", "x", "resnet", "y"])[fam_of])]
    names = [n if not n.startswith(("timm:x", "timm:y")) else f"timm:{string.ascii_lowercase[i % 26]}q{i}"
             for i, n in enumerate(names)]
    fam = family_bands(sim, names, min_size=1)
    ticked = [b.label for b in fam.ticks(min_gap=0, min_size=1)]
    assert "timm:vgg*" in ticked and "timm:resnet*" in ticked
    assert not any(t.endswith(":*") for t in ticked)
    spaced = fam.ticks(min_gap=100, min_size=1)
    assert len(spaced) == 1  # 24 rows: only the largest named band fits


def test_a_pure_run_of_a_minority_source_is_ticked_by_its_source():
    """hf text transformers without a common stem (bert, roberta, ernie) form an `hf:*` band that is ticked
    in a mostly-timm zoo; the same run made of the majority source is not."""
    sim, fam_of = _blocks([8, 8, 8, 8])
    hf = ["bert", "roberta", "ernie", "camembert", "electra", "albert", "xlm", "dpr"]
    stem = {0: "timm:vgg", 1: "timm:resnet", 3: "timm:densenet"}
    names = [f"hf:{hf[i % 8]}" if f == 2 else f"{stem[f]}{i}" for i, f in enumerate(fam_of)]  # hf: 25 %
    ticked = [b.label for b in family_bands(sim, names, min_size=8).ticks(min_gap=0, min_size=1)]
    assert "hf:*" in ticked and "timm:vgg*" in ticked
    timm_only = family_bands(sim, [n.replace("hf:", "timm:q") for n in names], min_size=8)
    assert not any(b.label.endswith(":*") for b in timm_only.ticks(min_gap=0, min_size=1))


def test_deep_chain_linkage_does_not_recurse():
    """A chain-shaped tree of 1,500 leaves (deeper than Python's recursion limit) is cut without recursion."""
    n = 1500
    z = np.array([[0 if k == 0 else n + k - 1, k + 1, k + 1, k + 2] for k in range(n - 1)], dtype=float)
    rng = np.random.default_rng(1)
    names = ["".join(rng.choice(list(string.ascii_lowercase), 8)) for _ in range(n)]
    fam = bands_from_linkage(z, names, min_size=1)
    assert sum(b.size for b in fam.bands) == n and sorted(fam.order.tolist()) == list(range(n))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(0, 10_000), st.integers(1, 6))
def test_bands_tile_the_order(n, seed, min_size):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, n))
    sim = (x + x.T) / 2
    np.fill_diagonal(sim, 1.0)
    pre = ["tv", "timm", "hf", "keras"]
    names = [f"{pre[i % 4]}:{rng.choice(['vgg', 'resnet', 'vit', 'Dense'])}{i}" for i in range(n)]
    fam = family_bands(sim, names, min_size=min_size)
    assert isinstance(fam, Families) and sorted(fam.order.tolist()) == list(range(n))
    pos = 0
    for b in fam.bands:  # contiguous, in order, no overlap, every row covered
        assert b.start == pos and b.stop > b.start and 0 <= b.share <= 1
        pos = b.stop
    assert pos == n
    assert all(fam.bands[k].label != fam.bands[k + 1].label for k in range(len(fam.bands) - 1))
    assert (np.diff(fam.band_of()) >= 0).all()


@needs_zoo
def test_zoo_overview_png_labels_family_bands():
    """`archsim matrix --zoo`'s overview names the family bands on both axes (it had no labels)."""
    import matplotlib.pyplot as plt

    from archsim.zoo.matrix import _overview, _overview_figure, similarity_array
    z = load_zoo()
    names = z.names("torchvision")
    sim = similarity_array([z.seq(n, "ops") for n in names], progress=False)
    fig = _overview_figure(sim, names, "t")
    try:
        ax = fig.axes[0]
        xs, ys = [t.get_text() for t in ax.get_xticklabels()], [t.get_text() for t in ax.get_yticklabels()]
        assert xs == ys and len(xs) >= 5
        assert any(x.startswith("tv:vgg* (") for x in xs) and any(x.startswith("tv:efficientnet") for x in xs)
        assert len(ax.patches) == len(xs)  # each labelled band's block outlined
    finally:
        plt.close(fig)
    assert _overview(sim, names, "t")[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------ page data

def _decode(data):
    raw = zlib.decompress(base64.b64decode(data["blob"]))
    assert len(raw) == data["raw_bytes"]
    return {k: np.frombuffer(raw, dtype=np.dtype(e["dtype"]).newbyteorder("<"), count=e["count"], offset=e["offset"])
            for k, e in data["arrays"].items()}


def _steps(opcodes):
    return [{0: 0, 1: 0, 2: 1, 3: 2}[int(o)] for o in opcodes]


def test_explorer_data_round_trips():
    from archsim.zoo.explorer import encode_steps, explorer_data
    letters = ["CBRCBRM", "CBRM", "CRM", "CBRCBRCBRM", "LLL", "CCMCCML", "CCMCCMCCML", "CBRCBRMLL"]
    seqs = [LayerSeq.from_letters(s, name=f"x:{s.lower()}") for s in letters]
    data = explorer_data(seqs, k=3, progress=False)
    arr, names, n, k = _decode(data), data["names"], data["n"], data["k"]
    by_name = {s.name: s for s in seqs}
    assert sorted(names) == sorted(by_name) and k == 3
    iu = np.triu_indices(n, 1)
    for t, (i, j) in enumerate(zip(*iu)):
        al = align(by_name[names[i]], by_name[names[j]])
        assert (arr["matches"][t], arr["length"][t]) == (al.matches, al.length)
    offs = arr["stepoff"]
    for i in range(n):
        toks = arr["tokens"][arr["tokoff"][i]:arr["tokoff"][i + 1]]
        assert [data["vocab"][t] for t in toks] == list(by_name[names[i]].tokens)
        for r in range(k):
            j = int(arr["nearest"][i * k + r])
            assert j != i
            al = align(by_name[names[i]], by_name[names[j]])
            assert bytes(arr["steps"][offs[i * k + r]:offs[i * k + r + 1]]) == encode_steps(al.opcodes)
    assert explorer_data(seqs[:3], k=10, progress=False)["k"] == 2  # k is capped at N - 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=400))
def test_step_runs_decode_to_the_traceback(ops):
    from archsim.zoo.explorer import encode_steps
    out = []
    for byte in encode_steps(np.array(ops, dtype=np.int8)):
        out += [byte >> 6] * ((byte & 63) + 1)
    assert out == _steps(ops)


def test_explorer_refuses_bad_input():
    from archsim.errors import UsageError
    from archsim.zoo.explorer import explorer_data
    a = LayerSeq.from_letters("CBR", name="a")
    with pytest.raises(UsageError, match="at least two models"):
        explorer_data([a])
    with pytest.raises(UsageError, match="only once"):
        explorer_data([a, a])
    with pytest.raises(UsageError, match="k must be"):
        explorer_data([a, LayerSeq.from_letters("CB", name="b")], k=0)


@needs_zoo
def test_write_explorer_refuses_unknown_or_too_few_models(tmp_path, plotly):
    from archsim.errors import UnknownNameError, UsageError
    from archsim.zoo.explorer import write_explorer
    with pytest.raises(UnknownNameError, match="tv:vgg17"):
        write_explorer(tmp_path / "z.html", zoo="torchvision", names=["tv:vgg16", "tv:vgg17"])
    with pytest.raises(UsageError, match="at least two models.*gives 1"):
        write_explorer(tmp_path / "z.html", zoo="torchvision", names=["tv:vgg16"])
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------ CLI

@pytest.fixture
def plotly():
    return pytest.importorskip("plotly", reason="the explorer page needs plotly (pip install plotly)")


def test_zoo_map_without_plotly_fails_before_computing(tmp_path, monkeypatch):
    from archsim.errors import ArchsimError
    from archsim.zoo.explorer import write_explorer
    monkeypatch.setitem(sys.modules, "plotly", None)  # import plotly -> ImportError
    with pytest.raises(ArchsimError, match="needs plotly: pip install plotly"):
        write_explorer(tmp_path / "z.html")
    assert not list(tmp_path.iterdir())


@needs_zoo
def test_zoo_map_cli_writes_one_offline_page(tmp_path, plotly):
    from click.testing import CliRunner

    from archsim.cli import cli
    out = tmp_path / "sub" / "zoo.html"
    res = CliRunner().invoke(cli, ["zoo", "map", "--zoo", "torchvision", "-k", "4", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"wrote {out} (")
    html = out.read_text(encoding="utf-8")
    names = load_zoo().names("torchvision")
    assert all(f'"{n}"' in html for n in names)
    low = html.lower()
    # nothing fetched: no external script, stylesheet, font or image
    assert "<script src" not in low and "<link" not in low and "@import" not in low and "url(http" not in low
    assert low.count("<script") == 3  # plotly.js, the data, the page's script
    assert not [p.name for p in out.parent.iterdir() if p.name != "zoo.html"]  # no temp file left


@needs_zoo
def test_zoo_map_bad_output_fails_before_computing(tmp_path, monkeypatch, plotly):
    from click.testing import CliRunner

    from archsim import matrices
    from archsim.cli import cli
    monkeypatch.setattr(matrices, "pair_matrices", lambda *a, **k: pytest.fail("the matrix was computed"))
    (tmp_path / "adir").mkdir()
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (tmp_path / "adir", afile / "sub.html", "/proc/zoo.html"):
        res = CliRunner().invoke(cli, ["zoo", "map", "--zoo", "torchvision", "-o", str(out)])
        assert res.exit_code == 1, res.output
        assert res.stderr.startswith("archsim: error: ") and len(res.stderr.splitlines()) == 1
    res = CliRunner().invoke(cli, ["zoo", "map", "-k", "0", "-o", str(tmp_path / "z.html")])
    assert res.exit_code == 2 and "Invalid value for '-k'" in res.stderr


# ------------------------------------------------------------------------------------------ browser

def _chromium() -> str | None:
    for exe in (os.environ.get("ARCHSIM_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if exe and os.path.exists(exe):
            return exe
    return None


@pytest.fixture(scope="module")
def browser():
    # In CI `[test]` installs playwright, so its absence is a failure there, not a skip. Chromium comes from
    # apt in .ci/run, which warns when it cannot install it (no root, no sudo): then the browser tests skip.
    missing = pytest.fail if os.environ.get("CI") == "true" else pytest.skip
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright-python is not installed (pip install playwright; no `playwright install` needed)")
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set ARCHSIM_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe)
        yield b
        b.close()


def _open(browser, path):
    """A fresh page at ``path``, ready; returns (page, console errors, seconds to ready)."""
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    t0 = time.perf_counter()
    page.goto(path.resolve().as_uri())
    page.wait_for_function("window.zooReady === true", timeout=120_000, polling=10)
    return page, errors, time.perf_counter() - t0


def _cell(page, i, j):
    """Screen coordinates of map cell (row i, column j)."""
    return page.evaluate("""([i, j]) => {
        const gd = document.getElementById('zoo-map'), fl = gd._fullLayout, r = gd.getBoundingClientRect();
        return [r.left + fl.xaxis._offset + fl.xaxis.l2p(j), r.top + fl.yaxis._offset + fl.yaxis.l2p(i)];
    }""", [i, j])


def _check_page(page, errors, names, seqs):
    """The assertions shared by the small and the whole-zoo page."""
    assert errors == []
    shown = page.eval_on_selector_all("#zoo-names option", "os => os.map(o => o.value)")
    assert sorted(shown) == sorted(names)
    order = page.evaluate("JSON.parse(document.getElementById('zoo-data').textContent).names")
    # a scripted search: typed, Enter -> the right row and column highlighted, zoomed to it
    target = sorted(names)[len(names) // 2]
    page.fill("#search", target)
    page.press("#search", "Enter")
    page.wait_for_function("window.zooState.highlight >= 0")
    i = order.index(target)
    assert page.evaluate("window.zooState.highlight") == i
    shapes = page.evaluate("document.getElementById('zoo-map').layout.shapes")
    row = [s for s in shapes if s.get("name") == "highlight-row"]
    col = [s for s in shapes if s.get("name") == "highlight-col"]
    assert row and row[0]["y0"] == i - 0.5 and row[0]["y1"] == i + 0.5
    assert col and col[0]["x0"] == i - 0.5
    yr = page.evaluate("document.getElementById('zoo-map').layout.yaxis.range")
    assert min(yr) < i < max(yr) and abs(yr[1] - yr[0]) < len(names)
    assert page.text_content("#model-a") == target
    # zoomed in, the axes name the models instead of the families
    page.wait_for_function("(t) => (document.getElementById('zoo-map').layout.yaxis.ticktext || []).includes(t)",
                           arg=target)
    # a real click on a cell: row model in the side panel, its nearest listed, strips drawn
    r, c = (i + 1) % len(names), i
    x, y = _cell(page, r, c)
    page.mouse.move(x, y)
    page.wait_for_selector("#tooltip", state="visible")
    tip = page.text_content("#tooltip")
    assert order[r] in tip and order[c] in tip and "similarity" in tip and "NW score" in tip
    page.mouse.click(x, y)
    page.wait_for_function("(r) => window.zooState.a === r", arg=r)
    assert page.text_content("#model-a") == order[r]
    k = page.evaluate("JSON.parse(document.getElementById('zoo-data').textContent).k")
    assert page.eval_on_selector_all("#nearest-list li", "ls => ls.length") == k
    last = page.evaluate("window.zooState.lastPair")
    assert (last["a"], last["b"]) == (order[r], order[c])
    al = align(seqs[order[r]], seqs[order[c]])
    assert (last["score"], last["matches"], last["length"]) == (al.score, al.matches, al.length)
    boxes = page.eval_on_selector_all("#strips .strip.a span", "s => s.length")
    gaps_a = page.eval_on_selector_all("#strips .strip.a span.gap", "s => s.length")
    marks = page.eval_on_selector_all("#strips .strip.marks span.m", "s => s.length")
    assert boxes == al.length and gaps_a == int(np.count_nonzero(al.opcodes == 3)) and marks == al.matches
    # a second model beyond the k nearest: aligned by the in-page NW, equal to archsim's alignment
    a = order[r]
    b = page.evaluate("""(a) => window.zooNames.slice().reverse()
                               .find((b) => b !== a && window.zooPrecomputed(a, b) === null)""", a)
    al = align(seqs[a], seqs[b])
    js = page.evaluate("([a, b]) => window.zooAlign(a, b)", [a, b])
    assert (js["score"], js["matches"], js["length"]) == (al.score, al.matches, al.length)
    assert js["steps"] == _steps(al.opcodes)
    page.fill("#compare", b)
    page.dispatch_event("#compare", "change")
    last = page.evaluate("window.zooState.lastPair")
    assert last == {"a": a, "b": b, "source": "page", "score": al.score, "matches": al.matches, "length": al.length}
    assert "computed in the page" in page.text_content("#pair-stats")
    # every stored alignment of a model is the traceback of archsim and of the in-page aligner
    stored = page.evaluate("""(a) => window.zooNames.map((b) => [b, window.zooPrecomputed(a, b)])
                                          .filter((x) => x[1] !== null)""", a)
    assert len(stored) == k
    for b, st_ in stored:
        assert st_["steps"] == _steps(align(seqs[a], seqs[b]).opcodes)
        assert st_["steps"] == page.evaluate("([a, b]) => window.zooAlign(a, b).steps", [a, b])
    assert errors == []


@needs_zoo
def test_explorer_page_in_chromium_small_zoo(browser, tmp_path, plotly):
    from archsim.zoo.explorer import write_explorer
    z = load_zoo()
    names = z.names("torchvision")[::3] + z.names("timm")[::60] + z.names("keras")[::8]
    path = write_explorer(tmp_path / "small.html", names=names, k=5, progress=False)
    page, errors, seconds = _open(browser, path)
    print(f"small page: {len(names)} models, {path.stat().st_size / 1e6:.1f} MB, ready in {seconds:.2f} s")
    _check_page(page, errors, names, {n: z.seq(n, "ops") for n in names})
    page.close()


@needs_zoo
@pytest.mark.slow
def test_explorer_page_in_chromium_whole_zoo(browser, tmp_path, plotly):
    from archsim.zoo.explorer import write_explorer
    z = load_zoo()
    path = write_explorer(tmp_path / "zoo.html", progress=False)
    size = path.stat().st_size
    page, errors, seconds = _open(browser, path)
    print(f"whole zoo: {len(z.names())} models, {size / 1e6:.1f} MB, ready in {seconds:.2f} s", file=sys.stderr)
    assert size <= 15e6
    _check_page(page, errors, z.names(), {n: z.seq(n, "ops") for n in z.names()})
    page.close()
