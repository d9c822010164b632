"""Our attention op: PyTorch's SDPA on token-major rows (strided views, K/V shared by a batch, any
key count), the fused query projection and the float8 output as their definitions say, a fake kernel
consistent with the op; on a GPU, the Triton kernel computes what the torch arithmetic computes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sonosteer.engine.quantize import FP8, FP8_MAX, to_fp8
from sonosteer.engine.triton_attention import attention, launch, probe, reference_attention, supports


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Plain multi-head attention, head by head with an explicit softmax: the independent expectation."""
    batch, queries, width = q.shape
    d = width // heads
    outs = []
    for h in range(heads):
        cols = slice(h * d, (h + 1) * d)
        weights = torch.softmax(q[..., cols].double() @ k[..., cols].double().transpose(-1, -2) / math.sqrt(d), dim=-1)
        outs.append(weights @ v[..., cols].double())
    return torch.cat(outs, dim=-1)


def _qkv(batch: int, tokens: int, width: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, tokens, 3 * width, generator=torch.Generator().manual_seed(seed))


def test_self_attention_reads_q_k_v_in_place_from_the_fused_projection():
    qkv = _qkv(2, 40, 96, seed=0)
    q, k, v = qkv.chunk(3, dim=-1)  # strided views, as the fused QKV linear leaves them
    assert q.stride(1) == 3 * 96
    out = attention(q, k, v, 3)
    assert out.shape == (2, 40, 96) and out.dtype == q.dtype
    torch.testing.assert_close(out.double(), _sdpa(q, k, v, 3), rtol=1e-5, atol=1e-5)


def test_cross_attention_shares_one_k_v_across_the_batch_for_any_key_count():
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(3, 16, 64, generator=gen)
    packed = torch.randn(77, 4 * 64, generator=gen)  # token-major K/V of two attentions side by side
    k, v = packed[:, 64:128], packed[:, 128:192]
    out = attention(q, k, v, 2)
    expected = _sdpa(q, k.expand(3, -1, -1), v.expand(3, -1, -1), 2)
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)


def test_fused_query_projection_and_float8_output_are_what_they_say():
    gen = torch.Generator().manual_seed(2)
    x = to_fp8(torch.randn(1, 24, 128, generator=gen), 3.0 / FP8_MAX)
    weight = to_fp8(torch.randn(64, 128, generator=gen) * 0.1, 0.3 / FP8_MAX)
    k, v = (torch.randn(1, 77, 64, generator=gen) for _ in range(2))
    q_scale = (3.0 / FP8_MAX) * (0.3 / FP8_MAX)
    q = x.float() @ weight.float().t() * q_scale
    fused = attention(x, k, v, 1, None, weight, q_scale)
    torch.testing.assert_close(fused.double(), _sdpa(q, k, v, 1), rtol=1e-5, atol=1e-5)
    out_scale = torch.tensor(0.5 / FP8_MAX)
    float8 = attention(x, k, v, 1, out_scale, weight, q_scale)
    assert float8.dtype == FP8
    assert torch.equal(float8, to_fp8(fused, out_scale))


def test_the_op_fake_kernel_and_schema_agree_with_the_op():
    qkv = _qkv(2, 16, 64, seed=3)
    q, k, v = qkv.chunk(3, dim=-1)
    torch.library.opcheck(attention, (q, k, v, 2), test_utils=("test_faketensor", "test_schema"))
    kv = torch.randn(77, 64)
    scale = torch.tensor(0.01)
    torch.library.opcheck(attention, (q, kv, kv, 2, scale), test_utils=("test_faketensor",))
    x = to_fp8(torch.randn(2, 16, 128), 0.01)
    weight = to_fp8(torch.randn(64, 128), 0.01)
    torch.library.opcheck(attention, (x, kv, kv, 2, scale, weight, 1e-4), test_utils=("test_faketensor",))


def test_the_probe_names_what_is_missing_off_cuda():
    assert "CUDA only" in probe(torch.device("cpu"))


# --- on a GPU: the Triton kernel ------------------------------------------------------------------


def _cuda() -> bool:
    return torch.cuda.is_available()


needs_gpu = pytest.mark.gpu(pytest.mark.skipif(not _cuda(), reason="needs CUDA"))


@needs_gpu
@pytest.mark.parametrize(
    ("batch", "queries", "keys", "heads"),
    [(1, 256, 256, 20), (1, 1024, 1024, 10), (1, 256, 77, 20), (1, 1024, 77, 10), (2, 256, 256, 20), (2, 100, 77, 4)],
)
@pytest.mark.parametrize("pdl", [False, True])
def test_the_kernel_computes_the_torch_arithmetic(batch, queries, keys, heads, pdl):
    if pdl and torch.cuda.get_device_capability() < (9, 0):
        pytest.skip("programmatic dependent launch needs Hopper or newer")
    gen = torch.Generator(device="cuda").manual_seed(queries + keys)
    width = heads * 64
    half = {"device": "cuda", "dtype": torch.float16, "generator": gen}
    q, _, _ = torch.randn(batch, queries, 3 * width, **half).chunk(3, dim=-1)
    shared = keys == 77
    k, v = (torch.randn(1 if shared else batch, keys, width, **half) for _ in range(2))
    got = attention(q, k, v, heads, pdl=pdl)
    expected = reference_attention(q.float(), k.float(), v.float(), heads)
    assert got.dtype == torch.float16 and got.shape == (batch, queries, width)
    torch.testing.assert_close(got.float(), expected, rtol=0, atol=2e-3)


@needs_gpu
def test_the_kernel_projects_the_query_and_writes_float8_like_the_torch_arithmetic():
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("needs float8 tensor cores")
    gen = torch.Generator(device="cuda").manual_seed(5)
    x = to_fp8(torch.randn(1, 256, 1280, device="cuda", generator=gen), 4.0 / FP8_MAX)
    weight = to_fp8(torch.randn(1280, 1280, device="cuda", generator=gen) * 0.02, 0.1 / FP8_MAX)
    k, v = (torch.randn(77, 1280, device="cuda", dtype=torch.float16, generator=gen) for _ in range(2))
    q_scale = (4.0 / FP8_MAX) * (0.1 / FP8_MAX)
    expected = reference_attention(x, k.float(), v.float(), 20, None, weight, q_scale).float()
    fused = attention(x, k, v, 20, None, weight, q_scale)
    assert float((fused.float() - expected).abs().max()) < 5e-3
    out_scale = torch.tensor(float(v.abs().max()) / FP8_MAX, device="cuda")
    float8 = attention(x, k, v, 20, out_scale, weight, q_scale)
    assert float8.dtype == FP8
    # Within half an e4m3 step (relative 2^-4) of the exact output, plus the fp16 kernel's own error.
    assert bool(((float8.float() * out_scale - expected).abs() <= expected.abs() * 2.0**-4 + 5e-3).all())


@needs_gpu
def test_the_kernel_replays_in_a_cuda_graph_and_sees_in_place_updates():
    gen = torch.Generator(device="cuda").manual_seed(6)
    q, k, v = (torch.randn(1, 256, 1280, device="cuda", dtype=torch.float16, generator=gen) for _ in range(3))
    launch(q, k, v, 20)  # autotune before capture
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream), torch.cuda.graph(graph):
        out = launch(q, k, v, 20, pdl=torch.cuda.get_device_capability() >= (9, 0))
    for seed in (7, 8):
        for t in (q, k, v):
            t.copy_(torch.randn(t.shape, device="cuda", dtype=t.dtype, generator=gen.manual_seed(seed)))
        graph.replay()
        torch.cuda.synchronize()
        expected = F.scaled_dot_product_attention(
            *(t.view(1, 256, 20, 64).transpose(1, 2).float() for t in (q, k, v))
        ).transpose(1, 2).reshape(1, 256, 1280)
        torch.testing.assert_close(out.float(), expected, rtol=0, atol=2e-3)
    assert probe(torch.device("cuda")) is None


def test_the_kernel_takes_the_head_sizes_the_tensor_cores_take():
    assert all(supports(d) for d in (16, 32, 64, 128))  # SDXL's is 64
    assert not any(supports(d) for d in (8, 48, 80, 256))  # these attentions keep PyTorch's SDPA on CUDA
