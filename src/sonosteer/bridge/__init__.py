"""Runtime bridge: analysis bundle + performer settings + clock -> FrameControls (numpy only, never torch)."""
