// The four steered SDXL-Turbo blocks, in the server's order (sonosteer.blocks.BLOCKS).

export const BLOCKS = [
  { name: "down.2.1", role: "composition, mood, scenes" },
  { name: "mid.0", role: "abstract spatial structure" },
  { name: "up.0.0", role: "local details (faces, objects)" },
  { name: "up.0.1", role: "style, textures, palettes" },
];

export const BLOCK_NAMES = BLOCKS.map((b) => b.name);

export const MASK_SIZE = 16;
