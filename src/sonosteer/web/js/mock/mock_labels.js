// Feature labels for the mock server: 27 categories and a deterministic pseudo-label per
// feature (about a fifth unlabeled, a few dead), so the picker can be developed without a
// labels file. Not real SAE labels.

export const MOCK_CATEGORIES = [
  "scene", "character", "texture", "mood", "color", "spatial", "style", "object", "animal",
  "nature", "architecture", "lighting", "pattern", "material", "food", "vehicle", "person",
  "face", "clothing", "abstract", "shape", "water", "sky", "plant", "motion", "composition", "artifact",
];

const WORDS = {
  scene: ["city street at night", "forest clearing", "desert dunes", "crowded market", "empty hallway", "mountain lake"],
  character: ["knight in armour", "robot figure", "old wizard", "child playing", "dancer", "astronaut"],
  texture: ["rough stone", "soft fur", "cracked paint", "woven fabric", "brushed metal", "wet sand"],
  mood: ["intense / evil", "calm serenity", "melancholy", "joyful energy", "eerie tension", "dreamy haze"],
  color: ["deep blue", "warm orange", "neon pink", "muted greens", "gold highlights", "monochrome"],
  spatial: ["spatial: center", "spatial: border", "horizontal band", "top-left corner", "vertical split", "bottom third"],
  style: ["oil painting", "pixel art", "watercolour wash", "film grain", "anime shading", "ink sketch"],
  object: ["clock face", "teacup", "lantern", "bicycle", "book stack", "mirror"],
  animal: ["cat", "bird wings", "horse", "fish scales", "wolf", "butterfly"],
  nature: ["waterfall", "storm clouds", "autumn leaves", "rocky cliff", "meadow", "snowfall"],
  architecture: ["gothic arches", "glass towers", "wooden cabin", "temple columns", "bridge", "staircase"],
  lighting: ["rim light", "golden hour", "harsh flash", "candle glow", "backlit haze", "neon reflections"],
  pattern: ["stripes", "polka dots", "checkerboard", "spirals", "honeycomb", "paisley"],
  material: ["glass", "marble", "rust", "velvet", "chrome", "paper"],
  food: ["fruit bowl", "bread", "sushi", "coffee", "cake layers", "spices"],
  vehicle: ["vintage car", "train", "sailboat", "motorcycle", "spaceship", "bus"],
  person: ["crowd", "portrait pose", "hands", "silhouette", "runner", "musician"],
  face: ["smiling face", "eyes close-up", "profile", "freckles", "beard", "makeup"],
  clothing: ["red dress", "leather jacket", "hat", "kimono", "sneakers", "scarf"],
  abstract: ["swirling shapes", "fractal detail", "glitch blocks", "flowing lines", "blobs", "shards"],
  shape: ["circles", "triangles", "rounded forms", "sharp angles", "grid", "waves"],
  water: ["ocean waves", "rain drops", "reflections", "underwater light", "river", "mist"],
  sky: ["starry night", "sunset gradient", "overcast", "aurora", "clear blue", "moon"],
  plant: ["roses", "ferns", "cactus", "ivy", "tree bark", "blossoms"],
  motion: ["motion blur", "explosion", "splash", "swirl", "falling", "speed lines"],
  composition: ["close-up", "wide shot", "symmetry", "rule of thirds", "low angle", "overhead view"],
  artifact: ["jpeg blocks", "chromatic aberration", "scan lines", "vignette", "lens flare", "noise"],
};

function rand(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** All features of a block: [{id, label, category, confidence, confidence_level, dead}]. */
export function mockFeatures(blockIndex, n = 5120) {
  const r = rand(1000 + blockIndex);
  const out = [];
  for (let id = 0; id < n; id++) {
    const dead = r() < 0.01;
    const unlabeled = r() < 0.2;
    if (unlabeled || dead) {
      r(); r(); r();
      out.push({ id, label: null, category: null, confidence: null, confidence_level: "unlabeled", dead });
      continue;
    }
    const category = MOCK_CATEGORIES[Math.floor(r() * MOCK_CATEGORIES.length)];
    const words = WORDS[category];
    const label = words[Math.floor(r() * words.length)];
    const confidence = Math.round((0.25 + 0.75 * r()) * 100) / 100;
    const level = confidence >= 0.7 ? "high" : confidence >= 0.4 ? "medium" : "low";
    out.push({ id, label, category, confidence, confidence_level: level, dead: false });
  }
  return out;
}
