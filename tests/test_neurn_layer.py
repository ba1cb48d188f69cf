"""NeuRN layer: box-filter kernel vs the direct unfold reference, gradients, invariances, edge cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import neurn
from neurn import NeuRN
from neurn.functional import local_std, neurn_reference


def _rand(n, c, h, w, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g, dtype=dtype)


@pytest.mark.parametrize("k", [1, 3, 5, 7])
@pytest.mark.parametrize("hw", [(13, 11), (16, 16), (9, 20)])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
@pytest.mark.parametrize("max_over", ["image", "channel"])
def test_matches_unfold_reference_float64(k, hw, channels, padding, max_over):
    x = _rand(3, channels, *hw, seed=k)
    fast = neurn.neurn(x, k, padding=padding, max_over=max_over)
    ref = neurn_reference(x, k, padding=padding, max_over=max_over)
    assert fast.shape == x.shape
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("k", [2, 4, 6])
def test_even_kernels_match_reference(k):
    x = _rand(2, 3, 15, 12, seed=k)
    torch.testing.assert_close(neurn.neurn(x, k), neurn_reference(x, k), atol=1e-5, rtol=0)


def test_local_std_is_population_std_of_window():
    x = _rand(1, 1, 5, 5)
    # centre pixel with k=3: the 3x3 block around (2, 2), divisor 9
    block = x[0, 0, 1:4, 1:4]
    assert torch.isclose(local_std(x, 3)[0, 0, 2, 2], block.std(unbiased=False))
    # corner with zero padding: the 4 real cells plus 5 zeros, divisor still k² = 9
    window = torch.zeros(3, 3, dtype=x.dtype)
    window[1:, 1:] = x[0, 0, :2, :2]
    assert torch.isclose(local_std(x, 3)[0, 0, 0, 0], window.std(unbiased=False))


def test_float32_large_image_close_to_float64_reference():
    # a low-contrast, high-mean 224x224 image is where E[x²]−E[x]² would cancel catastrophically
    x = 0.7 + 0.01 * _rand(2, 3, 224, 224, dtype=torch.float32)
    out = neurn.neurn(x, 7)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), neurn_reference(x.double(), 7), atol=1e-5, rtol=0)


@pytest.mark.parametrize("k,padding,max_over", [(1, "zeros", "image"), (3, "zeros", "image"), (2, "reflect", "channel"),
                                                (5, "reflect", "image"), (4, "zeros", "channel")])
def test_gradcheck(k, padding, max_over):
    x = _rand(2, 2, 6, 7, seed=k).requires_grad_(True)
    fn = lambda t: neurn.neurn(t, k, padding=padding, max_over=max_over)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,), fast_mode=True)
    assert torch.autograd.gradcheck(fn, (x[:1, :1].detach().requires_grad_(True),))  # full Jacobian, small


def test_gradient_matches_reference_gradient():
    x = _rand(2, 3, 10, 9, seed=3).requires_grad_(True)
    w = _rand(2, 3, 10, 9, seed=4)
    (g_fast,) = torch.autograd.grad((neurn.neurn(x, 5) * w).sum(), x)
    (g_ref,) = torch.autograd.grad((neurn_reference(x, 5) * w).sum(), x)
    torch.testing.assert_close(g_fast, g_ref, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("padding", ["zeros", "reflect"])
@pytest.mark.parametrize("value", [0.0, 0.3, 1.0])
def test_constant_image_gives_zeros_and_finite_grads(padding, value):
    x = torch.full((2, 3, 12, 12), value, requires_grad=True)
    out = neurn.neurn(x, 3, padding=padding)
    assert torch.isfinite(out).all()
    if padding == "reflect" or value == 0.0:
        assert (out == 0).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_constant_interior_is_zero_with_zero_padding():
    out = neurn.neurn(torch.full((1, 1, 9, 9), 0.5), 3)
    assert (out[..., 1:-1, 1:-1] == 0).all()
    assert (out[..., 0, :] > 0).all()  # the zero padding makes the border a contrast edge
    assert out.max() == 1


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3), c=st.sampled_from([1, 3]), h=st.integers(3, 17), w=st.integers(3, 17),
    k=st.integers(1, 6), padding=st.sampled_from(["zeros", "reflect"]),
    max_over=st.sampled_from(["image", "channel"]), seed=st.integers(0, 2**16),
)
def test_property_range_and_reference(n, c, h, w, k, padding, max_over, seed):
    if padding == "reflect" and k // 2 >= min(h, w):
        with pytest.raises(ValueError, match="reflect"):
            neurn.neurn(_rand(n, c, h, w), k, padding=padding)
        return
    x = _rand(n, c, h, w, seed=seed)
    out = neurn.neurn(x, k, padding=padding, max_over=max_over)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(out, neurn_reference(x, k, padding=padding, max_over=max_over), atol=1e-5, rtol=0)
    if k > 1:  # every image (or channel) reaches exactly 1 at its own maximum
        dims = (1, 2, 3) if max_over == "image" else (2, 3)
        torch.testing.assert_close(out.amax(dim=dims), torch.ones_like(out.amax(dim=dims)))


@settings(max_examples=30, deadline=None)
@given(scale=st.floats(0.05, 20.0), offset=st.floats(-5.0, 5.0), seed=st.integers(0, 2**16))
def test_property_invariant_to_intensity_gain_and_offset(scale, offset, seed):
    # The point of NeuRN: responses depend on local structure, not absolute intensity or contrast.
    x = _rand(2, 3, 11, 13, seed=seed)
    base = neurn.neurn(x, 3, padding="reflect")
    torch.testing.assert_close(neurn.neurn(scale * x + offset, 3, padding="reflect"), base, atol=1e-6, rtol=0)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_property_batch_items_independent(seed):
    x = _rand(4, 3, 10, 10, seed=seed)
    full = neurn.neurn(x, 3)
    for i in range(4):
        torch.testing.assert_close(neurn.neurn(x[i:i + 1], 3), full[i:i + 1])


def test_channel_max_normalises_each_channel():
    x = _rand(1, 3, 8, 8)
    x[:, 1] *= 0.1  # a low-contrast channel
    per_image = neurn.neurn(x, 3, max_over="image")
    per_channel = neurn.neurn(x, 3, max_over="channel")
    assert per_image[0, 1].max() < 0.5
    torch.testing.assert_close(per_channel.amax(dim=(2, 3)), torch.ones(1, 3, dtype=x.dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_dtype_device_and_shape_preserved(dtype):
    x = _rand(5, 3, 9, 7, dtype=torch.float32).to(dtype)
    out = NeuRN()(x)
    assert out.dtype == dtype and out.device == x.device and out.shape == x.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x = _rand(4, 3, 32, 32, dtype=torch.float32)
    out = neurn.neurn(x.cuda(), 5)
    assert out.is_cuda
    torch.testing.assert_close(out.cpu(), neurn.neurn(x, 5), atol=1e-6, rtol=0)


def test_module_has_no_parameters_and_matches_functional():
    layer = NeuRN(kernel_size=5, padding="reflect", max_over="channel")
    assert list(layer.parameters()) == [] and list(layer.buffers()) == []
    assert "kernel_size=5" in repr(layer) and "reflect" in repr(layer)
    x = _rand(2, 3, 16, 16)
    model = nn.Sequential(layer, nn.Flatten())
    torch.testing.assert_close(model(x), neurn.neurn(x, 5, padding="reflect", max_over="channel").flatten(1))


@pytest.mark.parametrize("kwargs", [{"kernel_size": 0}, {"kernel_size": 2.5}, {"padding": "circular"},
                                    {"max_over": "batch"}])
def test_bad_configuration_raises_value_error(kwargs):
    with pytest.raises(ValueError):
        NeuRN(**kwargs)
    with pytest.raises(ValueError):
        neurn.neurn(_rand(1, 1, 8, 8), **kwargs)


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="4-D"):
        neurn.neurn(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="floating"):
        neurn.neurn(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))


# --- issue #9, item 7: argument checks, huge values, double backward, empty inputs --------------

@pytest.mark.parametrize("eps", [-1, 0, 0.0, -1e-6, float("nan"), float("inf"), True, "1e-6", None])
def test_eps_must_be_finite_and_positive(eps):
    # eps=-1 used to give all-NaN output
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        neurn.neurn(_rand(1, 1, 8, 8), 3, eps=eps)
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        NeuRN(eps=eps)
    with pytest.raises(ValueError, match="eps"):
        neurn_reference(_rand(1, 1, 8, 8), 3, eps=eps)


def test_eps_accepts_numpy_and_tensor_scalars():
    x = _rand(1, 2, 8, 8)
    for eps in (np.float32(1e-3), np.float64(1e-3), torch.tensor(1e-3)):
        torch.testing.assert_close(neurn.neurn(x, 3, eps=eps), neurn.neurn(x, 3))
        assert isinstance(NeuRN(eps=eps).eps, float)
    assert NeuRN(eps=1).eps == 1.0


@pytest.mark.parametrize("k", [np.int64(3), np.int32(3), np.uint8(3), torch.tensor(3),
                               torch.tensor(3, dtype=torch.int16)])
def test_kernel_size_accepts_numpy_and_torch_integers(k):
    x = _rand(2, 3, 9, 8)
    expected = neurn.neurn(x, 3)
    torch.testing.assert_close(neurn.neurn(x, k), expected)
    torch.testing.assert_close(neurn_reference(x, k), neurn_reference(x, 3))
    layer = NeuRN(kernel_size=k)
    assert type(layer.kernel_size) is int and layer.kernel_size == 3
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("k", [True, False, np.bool_(True), torch.tensor(True), 3.0, np.float64(3.0), torch.tensor(3.0),
                               torch.tensor([3, 3]), "3", None, np.int64(0), torch.tensor(-1)])
def test_kernel_size_rejects_bool_float_and_non_positive(k):
    with pytest.raises(ValueError, match="kernel_size must be a positive int"):
        neurn.neurn(_rand(1, 1, 8, 8), k)
    with pytest.raises(ValueError, match="kernel_size must be a positive int"):
        NeuRN(kernel_size=k)


@pytest.mark.parametrize("magnitude", [1e200, 1e300, 1e-200])
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
def test_float64_extreme_magnitudes_stay_finite(magnitude, padding):
    # E[x²] of values near 1e200 overflowed to inf (inf − inf = NaN) before the per-channel scaling
    x = _rand(2, 3, 9, 11, seed=7)
    eps = 1e-300 if magnitude < 1 else 1e-6  # a tiny image is below the default eps by design
    out = neurn.neurn(x * magnitude, 5, eps=eps, padding=padding)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, neurn.neurn(x, 5, padding=padding), atol=1e-9, rtol=0)
    assert torch.isfinite(local_std(x * magnitude, 3, padding)).all()


def test_float64_huge_offset_and_float32_near_max_stay_finite():
    x = _rand(1, 3, 8, 8, seed=2)
    assert torch.isfinite(neurn.neurn(x * 1e308 - 5e307, 3)).all()
    big32 = (x * 3e38).float()
    out = neurn.neurn(big32, 3)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), neurn_reference(x, 3), atol=1e-5, rtol=0)


@pytest.mark.parametrize("magnitude", [1e200, 1e-200])
def test_huge_and_tiny_inputs_have_exact_gradients(magnitude):
    # NeuRN is scale invariant, so d out / d(m·x) = (d out / dx) / m
    x = _rand(1, 2, 7, 7, seed=5)
    w = _rand(1, 2, 7, 7, seed=6)
    xm = (x * magnitude).requires_grad_(True)
    (g_m,) = torch.autograd.grad((neurn.neurn(xm, 3, eps=1e-300) * w).sum(), xm)
    (g,) = torch.autograd.grad((neurn.neurn(x.requires_grad_(True), 3) * w).sum(), x)
    assert torch.isfinite(g_m).all()
    torch.testing.assert_close(g_m * magnitude, g, atol=1e-9, rtol=1e-7)


@pytest.mark.parametrize("k,padding,max_over", [(3, "zeros", "image"), (2, "reflect", "channel"),
                                                (5, "zeros", "channel")])
def test_double_backward_is_exact(k, padding, max_over):
    # The hand-written backward used to ignore that the saved mean/std depend on x: wrong 2nd derivatives.
    x = _rand(1, 2, 6, 7, seed=k).requires_grad_(True)
    fn = lambda t: neurn.neurn(t, k, padding=padding, max_over=max_over)  # noqa: E731
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)
    w = _rand(1, 2, 6, 7, seed=11)
    v = _rand(1, 2, 6, 7, seed=12)
    hv = []
    for f in (fn, lambda t: neurn_reference(t, k, padding=padding, max_over=max_over)):
        (g,) = torch.autograd.grad((f(x) * w).sum(), x, create_graph=True)
        hv.append(torch.autograd.grad((g * v).sum(), x)[0])
    torch.testing.assert_close(hv[0], hv[1], atol=1e-7, rtol=1e-6)


def test_double_backward_of_constant_image_is_finite():
    x = torch.full((1, 1, 6, 6), 0.4, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(neurn.neurn(x, 3, padding="reflect").sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    assert torch.isfinite(g).all() and torch.isfinite(gg).all()


@pytest.mark.parametrize("shape", [(0, 3, 8, 8), (2, 0, 8, 8), (2, 3, 0, 8), (2, 3, 8, 0), (0, 0, 0, 0)])
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
@pytest.mark.parametrize("max_over", ["image", "channel"])
def test_empty_inputs_give_empty_outputs(shape, padding, max_over):
    # amax over an empty dimension used to crash
    x = torch.rand(shape, requires_grad=True)
    for fn in (lambda t: neurn.neurn(t, 3, padding=padding, max_over=max_over),
               lambda t: neurn_reference(t, 3, padding=padding, max_over=max_over),
               lambda t: local_std(t, 3, padding),
               NeuRN(3, padding=padding, max_over=max_over)):
        out = fn(x)
        assert out.shape == x.shape and out.dtype == x.dtype
        out.sum().backward()
        assert x.grad.shape == x.shape
        x.grad = None


def test_empty_input_still_validates_arguments():
    with pytest.raises(ValueError, match="eps"):
        neurn.neurn(torch.rand(0, 3, 8, 8), 3, eps=-1)
    with pytest.raises(ValueError, match="reflect"):
        neurn.neurn(torch.rand(0, 3, 2, 2), 5, padding="reflect")


def test_constant_image_zeros_only_with_reflect_is_documented():
    for doc in (neurn.neurn.__doc__, NeuRN.__doc__):
        assert "constant image gives all zeros only with" in " ".join(doc.split())
    x = torch.full((1, 1, 6, 6), 0.5)
    assert (neurn.neurn(x, 3, padding="reflect") == 0).all()
    assert (neurn.neurn(x, 3, padding="zeros") > 0).any()
