"""The ops profile: what a network computes, however it is written, from PyTorch or from an ONNX file."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from archsim.alignment import align
from archsim.equivalence import DIFFERENT, EQUIVALENT, equivalence_table, margin
from archsim.errors import DataError, UsageError
from archsim.optrace import BINARY_TOKENS, EXPANSIONS, OP_TOKENS, canonical_order, fuse
from archsim.onnxgraph import ONNX_TOKENS, read_onnx
from archsim.tokens import KNOWN, LETTERS
from archsim.tracing import extract


class ModuleReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.act = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        self.drop, self.skip, self.flat, self.fc = nn.Dropout(0.5), nn.Identity(), nn.Flatten(), nn.Linear(8, 10)

    def forward(self, x):
        y = self.act(self.bn(self.conv(x)))
        return self.fc(self.flat(F.adaptive_avg_pool2d(self.skip(self.drop(y)), 1)))


class FunctionalReLU(ModuleReLU):
    """The same network with the ReLU and the pooling moved into forward, as many authors write it."""

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        return self.fc(torch.flatten(y.mean((2, 3), keepdim=True), 1))


class Residual(ModuleReLU):
    def forward(self, x):
        y = self.act(self.bn(self.conv(x)) + self.conv(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def ops(model, size=(3, 16, 16)):
    return extract(model, profile="ops", input_size=size).tokens


def test_module_or_functional_is_the_same_architecture():
    assert ops(ModuleReLU()) == ops(FunctionalReLU()) == (
        "Conv2d", "BatchNorm2d", "ReLU", "AdaptiveAvgPool2d", "Linear")
    # The torch profile cannot see the functional ReLU: that is what the ops profile is for.
    assert extract(ModuleReLU(), input_size=(3, 16, 16)).tokens != extract(FunctionalReLU(), input_size=(3, 16, 16)).tokens


def test_residual_add_is_a_token():
    assert "Add" in ops(Residual()) and "Add" not in ops(ModuleReLU())


def test_identity_and_flatten_are_never_layers():
    for profile in ("torch", "keras-like", "ops"):
        toks = extract(ModuleReLU(), profile=profile, input_size=(3, 16, 16)).tokens
        assert "Identity" not in toks and "Flatten" not in toks, profile
    assert "Dropout" in extract(ModuleReLU(), input_size=(3, 16, 16)).tokens  # a layer of the torch profile
    assert "Dropout" not in ops(ModuleReLU())  # an eval-time no-op


def test_every_op_records_its_module_path():
    seq = extract(ModuleReLU(), profile="ops", input_size=(3, 16, 16))
    assert seq.paths == ("conv", "bn", "act", "", "fc")


def test_scalar_arithmetic_and_bookkeeping_are_not_architecture():
    class Scaled(nn.Module):
        def forward(self, x):
            x = x.view(1, -1).reshape(1, 3, 4, 4).permute(0, 1, 3, 2).contiguous().clone()
            return (x * 0.5 + 1.0) / 6.0 + x[:, :1].expand_as(x).float()

    assert ops(Scaled(), (3, 4, 4)) == ("Add",)


def test_attention_spelled_out_is_attention():
    class Manual(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv, self.proj = nn.Linear(8, 24), nn.Linear(8, 8)

        def forward(self, x):
            q, k, v = self.qkv(x).split(8, -1)
            att = (q @ k.transpose(-2, -1) * 8 ** -0.5).softmax(-1)
            return self.proj(att @ v)

    class Fused(Manual):
        def forward(self, x):
            q, k, v = self.qkv(x).split(8, -1)
            return self.proj(F.scaled_dot_product_attention(q, k, v))

    assert ops(Manual(), (4, 8)) == ops(Fused(), (4, 8)) == ("Linear", "Split", "Attention", "Linear")


def test_branch_order_does_not_matter():
    class A(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU())
            self.proj = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return self.main(x) + self.proj(x)

    class B(A):
        def forward(self, x):
            p = self.proj(x)  # the shortcut written first (torchvision's RegNet), main branch after
            return p + self.main(x)

    assert ops(A()) == ops(B()) == ("Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "Add")


@given(st.lists(st.integers(0, 5), min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_canonical_order_is_a_topological_permutation(parents, rnd):
    deps = [tuple(sorted({p % (i or 1) for p in parents[: rnd.randint(0, 2)]})) if i else () for i in range(len(parents))]
    order = canonical_order(deps)
    assert sorted(order) == list(range(len(deps)))
    pos = {n: i for i, n in enumerate(order)}
    assert all(pos[d] < pos[i] for i, ds in enumerate(deps) for d in ds)


def test_gated_activations_fuse():
    # x * sigmoid(x) is SiLU; SE gating x * sigmoid(f(x)) is not.
    assert fuse(["Conv2d", "Sigmoid", "Mul"], [(), (0,), (0, 1)])[0] == ["Conv2d", "SiLU"]
    assert fuse(["Conv2d", "Conv2d", "Sigmoid", "Mul"], [(), (0,), (1,), (0, 2)])[0] == ["Conv2d", "Conv2d", "Sigmoid", "Mul"]


def test_every_ops_token_has_a_stable_letter():
    names = set(OP_TOKENS.values()) | set(BINARY_TOKENS.values()) | {t for e in EXPANSIONS.values() for t in e}
    names |= {t for t in ONNX_TOKENS.values() if t} | {"AdaptiveAvgPool2d", "BatchNorm1d", "BatchNorm3d",
                                                        "InstanceNorm1d", "InstanceNorm3d", "SiLU", "GELU", "ReLU6"}
    names -= {"BatchNorm", "InstanceNorm"}  # named by rank before they become tokens
    assert names <= set(LETTERS) | set(KNOWN), sorted(names - set(LETTERS) - set(KNOWN))


def test_ops_cannot_be_derived_from_another_profile():
    with pytest.raises(ValueError, match="recorded during the forward pass"):
        extract(ModuleReLU(), input_size=(3, 16, 16)).with_profile("ops")


# --- same architecture, two libraries ------------------------------------------------------------

@pytest.fixture(scope="module")
def table():
    return equivalence_table("ops")


def test_equivalent_pairs_score_at_least_095_in_ops(table):
    for r in table:
        if r.equivalent and not r.note:
            assert r.similarity >= 0.95, (r.a, r.b, r.similarity)
    assert margin(table) > 0.15  # every different-family pair sits well below every equivalent one


def test_noted_pairs_differ_where_the_note_says(table):
    seq = {n: extract(n, profile="ops", cache=True) for n in ("tv:vgg16", "timm:vgg16")}
    al = align(seq["tv:vgg16"], seq["timm:vgg16"])
    diff_paths = {c["b_path"] for c in al.columns() if c["op"] != "match" and c["b_path"]}
    assert any(p.startswith("pre_logits") for p in diff_paths)  # timm's ConvMlp head
    assert all(r.similarity < 1 for r in table if r.note)


def test_ops_beats_torch_on_the_equivalence_table(table):
    torch_rows = equivalence_table("torch")
    assert margin(table) > margin(torch_rows)
    assert min(r.similarity for r in table if r.equivalent and not r.note) > \
        min(r.similarity for r in torch_rows if r.equivalent and not r.note)


@pytest.mark.parametrize("a, b", [("tv:resnet50", "timm:resnet50"), ("tv:vit_b_16", "timm:vit_base_patch16_224")])
def test_fresh_extraction_agrees_with_the_zoo(a, b):
    from archsim.zoo.store import load_zoo
    zoo = load_zoo()
    for name in (a, b):
        assert extract(name, profile="ops", cache=True).tokens == zoo.seq(name, "ops").tokens
    assert align(extract(a, profile="ops", cache=True), extract(b, profile="ops", cache=True)).similarity == 1.0


def test_pair_lists_are_well_formed():
    names = [n for p in EQUIVALENT for n in p[:2]] + [n for p in DIFFERENT for n in p]
    assert len(EQUIVALENT) >= 12 and all(n.startswith(("tv:", "timm:", "keras:")) for n in names)


# --- ONNX ---------------------------------------------------------------------------------------

onnx = pytest.importorskip("onnx")


def _export(model, size, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, *size),), str(path), dynamo=False, opset_version=17,
                          do_constant_folding=False)
    return path


@pytest.mark.parametrize("name", ["tv:resnet18", "tv:mobilenet_v3_small", "timm:vit_tiny_patch16_224"])
def test_onnx_export_scores_like_its_pytorch_original(name, tmp_path):
    from archsim.models import get_model
    spec = get_model(name)
    model = spec.factory()
    size = (3, 224, 224)
    path = _export(model, size, tmp_path / "m.onnx")
    seq = extract(f"onnx:{path}", profile="ops")
    assert seq.source == "onnx" and seq.order == "graph" and seq.input_size == size
    sim = align(extract(name, profile="ops", cache=True), seq).similarity
    assert sim >= 0.95, sim


def test_onnx_paths_are_module_scopes(tmp_path):
    path = _export(ModuleReLU(), (3, 16, 16), tmp_path / "m.onnx")
    seq = read_onnx(path)
    assert seq.tokens == ("Conv2d", "BatchNorm2d", "ReLU", "AdaptiveAvgPool2d", "Linear")
    assert seq.paths[0] == "conv" and seq.paths[-1] == "fc"


def test_onnx_missing_corrupt_and_wrong_profile(tmp_path, archsim_cli):
    with pytest.raises(DataError, match="no such ONNX file"):
        read_onnx(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not a protobuf at all\xff" * 10)
    with pytest.raises(DataError, match="bad.onnx: not a readable ONNX model"):
        read_onnx(bad)
    with pytest.raises(UsageError, match="only the ops profile"):
        extract(f"onnx:{bad}", profile="torch")
    r = archsim_cli("compare", f"onnx:{bad}", "resnet18", "--profile", "ops")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "bad.onnx" in r.stderr and "Traceback" not in r.stderr
    r = archsim_cli("tokens", f"onnx:{bad}", "--profile", "torch")
    assert r.returncode == 2 and "only the ops profile" in r.stderr


def test_onnx_subgraphs_are_flattened_with_a_warning(tmp_path):
    from onnx import TensorProto, helper
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["y1"], name="/then/Relu")], "then", [],
                               [helper.make_tensor_value_info("y1", TensorProto.FLOAT, None)])
    else_g = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y2"], name="/else/Sigmoid")], "else", [],
                               [helper.make_tensor_value_info("y2", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0), helper.make_node("Cast", ["m"], ["c"], to=9),
             helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g, name="gate"),
             helper.make_node("Add", ["y", "x"], ["z"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "if.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    seq = read_onnx(path)
    assert set(seq.tokens) == {"ReLU", "Sigmoid", "Add"} and seq.tokens[-1] == "Add"
    assert any("flattened the subgraphs of If gate" in w for w in seq.warnings)
