"""The per-frame upload: fields packed into one device tensor that the modules read through views,
and a steady-state `apply` that reaches the device with exactly one copy and no other kernel."""

from __future__ import annotations

import numpy as np
import torch
from engine_fixtures import control_sequence, tiny_settings
from torch.utils._python_dispatch import TorchDispatchMode

from sonosteer.engine.frame_upload import FrameUpload
from sonosteer.engine.steered_engine import SteeredEngine


class _RecordOps(TorchDispatchMode):
    """Every aten op dispatched inside the `with`, by name."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func.overloadpacket.__name__))
        return func(*args, **(kwargs or {}))


def test_fields_pack_in_order_and_views_see_each_upload():
    upload = FrameUpload({"a": (), "mask": (2, 3), "b": ()}, torch.device("cpu"))
    assert upload.packed.shape == (8,)
    mask = upload.view("mask")
    assert mask.untyped_storage().data_ptr() == upload.packed.untyped_storage().data_ptr()
    for frame in range(3):  # more frames than staging buffers
        upload.host("a")[...] = frame
        upload.host("mask")[...] = np.arange(6).reshape(2, 3) * frame
        upload.host("b")[...] = -frame
        assert float(upload.view("a")) == (frame - 1 if frame else 0.0), "nothing reaches the device before upload()"
        upload.upload()
        expected = np.concatenate([[frame], np.arange(6) * frame, [-frame]]).astype(np.float32)
        assert np.array_equal(upload.packed.numpy(), expected)
        assert torch.equal(mask, torch.from_numpy(expected[1:7].reshape(2, 3)))


def test_engine_buffers_are_views_of_the_upload(tiny_weights):
    engine = SteeredEngine.from_settings(tiny_settings(tiny_weights, height=64, width=64))
    storage = engine._upload.packed.untyped_storage().data_ptr()
    buffers = [engine.generator.blend, engine.generator.angle]
    buffers += [t for state in engine._blocks for t in (state.wrapper.scale, state.wrapper.activation_map)]
    assert all(b.untyped_storage().data_ptr() == storage for b in buffers)


def test_steady_state_apply_is_one_copy_and_nothing_else(tiny_weights):
    engine = SteeredEngine.from_settings(tiny_settings(tiny_weights, height=64, width=64))
    frames = control_sequence()
    engine.apply(frames[2])  # sets the mask, prompts, seeds and features
    steady = frames[2]
    steady.blocks[0].strength, steady.prompt_blend, steady.noise_angle_rad = 1.25, 0.3, 0.7  # what moves every frame
    with _RecordOps() as recorded:
        engine.apply(steady)
    assert recorded.ops == ["copy_"], recorded.ops
    wrapper = engine._blocks[0].wrapper
    assert float(wrapper.scale) == np.float32(1.25 * engine._blocks[0].mean_activation)
    assert float(engine.generator.blend) == np.float32(0.3) and float(engine.generator.angle) == np.float32(0.7)
