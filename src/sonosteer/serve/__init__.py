"""Live performance server: wires analysis, bridge and engine; streams frames to the browser."""
