"""Resnet convolutions as im2col + GEMM: the im2col matrix is each pixel's padded 3x3 neighbourhood, the GEMM
equals PyTorch's convolution in both memory layouts, large inputs keep the convolution, the engine with
them renders the frame it renders without; on a GPU, inductor writes the im2col matrix from the group
norm's kernel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from engine_fixtures import control_sequence, tiny_settings
from torch import nn
from torch.overrides import TorchFunctionMode

from sonosteer.engine.conv_gemm import GEMM_MAX_PIXELS, GemmConv3x3, im2col_3x3, plain_3x3
from sonosteer.engine.steered_engine import SteeredEngine


def test_the_im2col_matrix_holds_each_pixels_padded_neighbourhood():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    cols = im2col_3x3(x).view(2, 4, 5, 3, 3, 3)  # (n, y, x, ky, kx, c)
    padded = F.pad(x, (1, 1, 1, 1))
    for n, y, xx, ky, kx in [(0, 0, 0, 0, 0), (1, 3, 4, 2, 2), (0, 2, 1, 1, 2), (1, 0, 4, 0, 2)]:
        assert torch.equal(cols[n, y, xx, ky, kx], padded[n, :, y + ky, xx + kx])  # zero outside the image
    assert cols[0, 0, 0, 0, 0].abs().sum() == 0 and cols[0, 0, 0, 1, 1].tolist() == x[0, :, 0, 0].tolist()


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_the_gemm_is_pytorchs_convolution(channels_last, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 12, 3, padding=1, bias=bias)
    x = torch.randn(2, 8, 7, 5)
    if channels_last:
        conv, x = conv.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    out = GemmConv3x3(conv)(x)
    assert out.shape == (2, 12, 7, 5) and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, F.conv2d(x, conv.weight, conv.bias, padding=1), rtol=1e-5, atol=1e-5)


class _Calls(TorchFunctionMode):
    """Records which of convolution and GEMM ran."""

    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (F.conv2d, torch.addmm):
            self.names.append(func.__name__)
        return func(*args, **(kwargs or {}))


def test_only_inputs_up_to_the_pixel_limit_become_gemms():
    conv = nn.Conv2d(4, 4, 3, padding=1)
    gemm = GemmConv3x3(conv)
    side = int(GEMM_MAX_PIXELS**0.5)
    for height, expected in ((side, "addmm"), (side + 1, "conv2d")):
        x = torch.randn(1, 4, height, side)
        with _Calls() as calls:
            out = gemm(x)
        assert calls.names == [expected]
        torch.testing.assert_close(out, conv(x), rtol=1e-5, atol=1e-5)


def test_only_plain_3x3_convolutions_convert():
    assert plain_3x3(nn.Conv2d(4, 4, 3, padding=1))
    for conv in (nn.Conv2d(4, 4, 3, padding=1, stride=2), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3, padding=1, groups=2),
                 nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), nn.Conv2d(4, 4, 3)):
        assert not plain_3x3(conv)
        with pytest.raises(ValueError, match="not a 3x3 convolution with stride 1 and padding 1"):
            GemmConv3x3(conv)


def test_the_engine_with_conv_gemms_renders_the_frame_it_renders_without(tiny_weights):
    plain = SteeredEngine.from_settings(tiny_settings(tiny_weights))
    gemms = SteeredEngine.from_settings(tiny_settings(tiny_weights, conv_gemm=True))
    resnets = [m for m in gemms.generator.unet.modules() if type(m).__name__ == "ResnetBlock2D"]
    assert gemms.conv_gemms == 2 * len(resnets) > 0 and plain.conv_gemms == 0
    assert "conv GEMMs" in gemms.label and "conv GEMMs" not in plain.label
    for controls in control_sequence()[:3]:
        plain.apply(controls)
        gemms.apply(controls)
        difference = np.abs(plain.render().astype(np.int16) - gemms.render().astype(np.int16))
        assert difference.max() <= 1 and difference.mean() < 0.01
    exact = SteeredEngine.from_settings(tiny_settings(tiny_weights, conv_gemm=True, attention="reference"))
    assert exact.conv_gemms == 0  # the published fp16 path stays as published


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_inductor_writes_the_im2col_matrix_from_the_group_norms_kernel():
    from torch._inductor.utils import run_and_get_code

    torch.manual_seed(0)
    norm = nn.GroupNorm(32, 640).cuda().half()
    conv = nn.Conv2d(640, 640, 3, padding=1).cuda().half().to(memory_format=torch.channels_last)
    gemm = GemmConv3x3(conv)
    x = torch.randn(1, 640, 32, 32, device="cuda", dtype=torch.float16).to(memory_format=torch.channels_last)
    compiled = torch.compile(lambda x: gemm(F.silu(norm(x))), fullgraph=True, dynamic=False)
    with torch._inductor.config.patch(fx_graph_cache=False):
        out, code = run_and_get_code(compiled, x)
    torch.testing.assert_close(out, conv(F.silu(norm(x))), rtol=2e-2, atol=2e-2)
    kernels = {name for name in "\n".join(code).split() if name.startswith("triton_") and "(" not in name}
    gathers = [k for k in kernels if "index" in k]
    assert gathers and all("group_norm" in k for k in gathers), kernels
