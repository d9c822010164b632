"""Runtime bridge: analysis bundle + performer settings + clock -> FrameControls (numpy only, never torch).

Entry points: `planner.FramePlanner` (plan(t) -> FrameControls), `settings` (Scene, apply_update,
settings_schema), `clock.AudioClock` (PLL-corrected media time), `slerp` (the engine's reference
formula). Kept empty of imports so `sonosteer` commands start fast. See docs/bridge.md.
"""
