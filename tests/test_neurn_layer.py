"""NeuRN layer: box-filter kernel vs the direct unfold reference, gradients, invariances, edge cases."""
from __future__ import annotations

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
