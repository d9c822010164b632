"""Engine: FrameControls -> uint8 RGB frame. The only layer that touches the GPU."""
