// Flower orbs drawn with WebGL2 fragment shaders: one quad per block, the flower computed per
// pixel (two petal rings, a pulsing core, stamens, halo). Bloom, tremble, flutter and pulse come
// in as uniforms every animation frame.

import { hexToRgb } from "../palette.js";

const EXTENT = 2.0; // quad half-size in orb radii (room for the halo)

const VERTEX_SRC = `#version 300 es
in vec2 a_corner;
uniform vec2 u_center_px;
uniform float u_radius_px;
uniform vec2 u_canvas_px;
out vec2 v_p;
void main() {
  v_p = a_corner * ${EXTENT.toFixed(1)};
  vec2 px = u_center_px + v_p * u_radius_px;
  vec2 clip = px / u_canvas_px * 2.0 - 1.0;
  gl_Position = vec4(clip.x, -clip.y, 0.0, 1.0);
}`;

const FRAGMENT_SRC = `#version 300 es
precision highp float;
in vec2 v_p;
out vec4 o_color;
uniform float u_time;
uniform float u_bloom;     // 0 closed bud .. 1 open flower
uniform float u_energy;    // energy_smooth of the linked stem, 0..1
uniform float u_flutter;   // transient flutter, fast attack slow decay, 0..1
uniform float u_strength;  // |steering strength| / stage range, 0..1
uniform float u_petals;
uniform float u_seed;
uniform float u_selected;
uniform float u_hover;
uniform vec3 u_color;

const float TAU = 6.2831853;

// Column-major: rotates a vector by +a.
mat2 rot(float a) { float c = cos(a), s = sin(a); return mat2(c, s, -s, c); }

// Coverage (0..1) and petal-frame coordinates of one ring of teardrop petals.
// Returns vec4(coverage, along-petal 0..1, across-petal -1..1, petal index).
vec4 petalRing(vec2 p, float n, float len, float width, float spin, float tremble, float flutter) {
  float sector = TAU / n;
  float a = atan(p.y, p.x) - spin;
  float idx = floor(a / sector + 0.5);
  float jitter = tremble * sin(u_time * 7.0 + idx * 2.39 + u_seed)
               + flutter * sin(u_time * 31.0 + idx * 4.1 + u_seed * 3.0);
  vec2 q = rot(-(idx * sector + spin + jitter * 0.12)) * p;
  float l = len * (1.0 + 0.55 * jitter * 0.12 + 0.04 * sin(idx * 1.7 + u_seed));
  float t = q.x / l;
  float half_w = width * l * pow(max(sin(3.14159 * clamp(t, 0.0, 1.0)), 0.0), 0.75)
               * (1.0 - 0.25 * t);
  float d = abs(q.y) - half_w;
  float aa = fwidth(d) + 0.004;
  float inside = (1.0 - smoothstep(-aa, aa, d)) * step(0.0, t) * (1.0 - smoothstep(0.97, 1.0, t));
  return vec4(inside, clamp(t, 0.0, 1.0), q.y / max(half_w, 1e-3), idx);
}

void main() {
  vec2 p = v_p;
  float r = length(p);
  float breathe = 1.0 + 0.035 * sin(u_time * 1.3 + u_seed);
  float bloom = u_bloom;
  float tremble = 0.25 + 1.6 * u_energy;
  float flutter = 1.8 * u_flutter;
  float spin = u_seed + u_time * 0.04;

  vec3 deep = u_color * 0.22 + vec3(0.02, 0.01, 0.05);
  vec3 tip = mix(u_color, vec3(1.0), 0.08);
  vec3 col = vec3(0.0);
  float alpha = 0.0;

  // Outer petals: long when blooming, short and folded when a bud.
  float outerLen = mix(0.52, 1.0, bloom) * breathe;
  float outerW = mix(0.34, 0.33, bloom);
  vec4 o = petalRing(p, u_petals, outerLen, outerW, spin, tremble, flutter);
  if (o.x > 0.0) {
    float shade = mix(0.35, 1.0, pow(o.y, 0.7));
    vec3 c = mix(deep, tip, shade);
    c += u_color * 0.35 * exp(-abs(o.z) * 6.0) * (0.4 + o.y);      // midrib
    c *= 0.78 + 0.22 * (1.0 - abs(o.z));                            // cupped edges
    c += 0.05 * sin(o.z * 18.0) * o.y;                               // veins
    col = c; alpha = o.x * mix(0.92, 0.98, bloom);
  }

  // Inner ring, offset half a petal, lighter.
  float innerLen = mix(0.46, 0.66, bloom) * breathe;
  vec4 i = petalRing(p, u_petals, innerLen, 0.42, spin + 3.14159 / u_petals, tremble * 0.7, flutter * 0.8);
  if (i.x > 0.0) {
    vec3 c = mix(u_color * 0.55, mix(u_color, vec3(1.0), 0.35), pow(i.y, 0.8));
    c *= 0.8 + 0.2 * (1.0 - abs(i.z));
    col = mix(col, c, i.x); alpha = max(alpha, i.x);
  }

  // Bud: when closed, a glossy teardrop (tip up) wraps the folded petals.
  float closed = 1.0 - bloom;
  if (closed > 0.01) {
    vec2 b = p / breathe;
    float tipY = -0.66, bellyY = 0.1, bellyR = 0.4;
    float hw = b.y > bellyY
      ? bellyR * sqrt(max(0.0, 1.0 - pow((b.y - bellyY) / bellyR, 2.0)))
      : bellyR * pow(clamp((b.y - tipY) / (bellyY - tipY), 0.0, 1.0), 0.75);
    float d = abs(b.x) - hw;
    float aa = fwidth(d) + 0.004;
    float bud = closed * (1.0 - smoothstep(-aa, aa, d)) * step(tipY, b.y) * step(b.y, bellyY + bellyR);
    if (bud > 0.0) {
      float u = b.x / max(hw, 1e-3);                       // -1..1 across the bud
      float seam = smoothstep(0.06, 0.0, abs(fract(u * 1.5 + 0.5 + 0.05 * sin(u_time + u_seed)) - 0.5));
      vec3 c = mix(deep * 1.6, u_color * 0.85, 0.5 + 0.5 * (1.0 - abs(u)));
      c *= 0.75 + 0.35 * smoothstep(0.5, -0.6, b.y);       // lit from above
      c = mix(c, deep, seam * 0.55);
      c += vec3(0.4) * pow(max(0.0, 1.0 - length(b - vec2(-0.13, -0.12)) / 0.2), 2.0) * 0.7; // gloss
      c += u_color * 0.25 * u_energy;
      col = mix(col, c, bud); alpha = max(alpha, bud);
    }
  }

  // Glass orb: a faint sphere with a rim light around the flower.
  float sphere = 1.0 - smoothstep(1.0, 1.02, r);
  float rim = smoothstep(0.78, 1.0, r) * sphere;
  vec3 glass = u_color * (0.05 + 0.35 * rim) + vec3(0.5) * pow(max(0.0, 1.0 - length(p - vec2(-0.42, -0.5)) / 0.35), 3.0) * 0.25;
  float glassA = sphere * (0.14 + 0.3 * rim) * (1.0 - alpha);
  col = col * alpha + glass * glassA;                      // premultiplied from here on
  alpha = alpha + glassA;

  // Core: pulses with energy, stamens flicker with flutter.
  float pulse = 0.5 + 0.5 * sin(u_time * 4.0 + u_seed);
  float coreR = (0.13 + 0.05 * u_energy + 0.015 * pulse) * mix(0.7, 1.0, bloom);
  float core = 1.0 - smoothstep(coreR - 0.015, coreR + 0.015, r);
  vec3 coreCol = mix(u_color, vec3(1.0, 0.98, 0.92), 0.55 + 0.35 * u_energy);
  core *= smoothstep(0.25, 0.7, bloom);                   // hidden inside a closed bud
  col = mix(col, coreCol * (1.1 + 0.6 * u_energy), core);
  alpha = max(alpha, core);
  float stamenRing = abs(r - coreR * 1.75);
  float stamenA = atan(p.y, p.x) * u_petals * 2.0 + u_time * 0.6;
  float stamen = bloom * smoothstep(0.03, 0.0, stamenRing) * smoothstep(0.2, 0.9, sin(stamenA));
  col += stamen * mix(u_color, vec3(1.0), 0.6) * (0.5 + u_flutter + 0.5 * u_energy);
  alpha = max(alpha, stamen * 0.9);

  // Halo: additive, grows with energy and strength, flashes with flutter.
  float glowAmt = (0.12 + 0.5 * u_energy + 0.35 * u_flutter + 0.25 * u_strength) * mix(0.45, 1.0, bloom);
  float halo = exp(-max(r - 0.45, 0.0) * 4.2) * glowAmt * (1.0 - 0.6 * min(alpha, 1.0));
  vec3 glow = u_color * halo;

  // Selection ring: a thin rotating dashed circle.
  float ringR = 1.16;
  float ring = smoothstep(0.014, 0.0, abs(r - ringR)) * step(0.0, sin(atan(p.y, p.x) * 24.0 - u_time * 2.0));
  float sel = u_selected * ring * 0.85 + u_hover * smoothstep(0.012, 0.0, abs(r - ringR)) * 0.35;

  vec3 premul = col + glow + vec3(sel) * mix(u_color, vec3(1.0), 0.5);
  float a = clamp(alpha + halo * 0.35 + sel, 0.0, 1.0);
  o_color = vec4(premul, a);
}`;

function compile(gl, type, src) {
  const shader = gl.createShader(type);
  gl.shaderSource(shader, src);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
    throw new Error(`orb shader: ${gl.getShaderInfoLog(shader)}`);
  }
  return shader;
}

/** WebGL2 renderer of the flower orbs on one canvas; throws if WebGL2 is unavailable. */
export class OrbRenderer {
  constructor(canvas) {
    this.canvas = canvas;
    const gl = canvas.getContext("webgl2", { premultipliedAlpha: true, antialias: true, alpha: true });
    if (!gl) throw new Error("WebGL2 is not available in this browser");
    this.gl = gl;
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX_SRC));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT_SRC));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
      throw new Error(`orb program: ${gl.getProgramInfoLog(program)}`);
    }
    this.program = program;
    this.uniforms = {};
    const n = gl.getProgramParameter(program, gl.ACTIVE_UNIFORMS);
    for (let k = 0; k < n; k++) {
      const info = gl.getActiveUniform(program, k);
      this.uniforms[info.name] = gl.getUniformLocation(program, info.name);
    }
    const vao = gl.createVertexArray();
    gl.bindVertexArray(vao);
    const buffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const loc = gl.getAttribLocation(program, "a_corner");
    gl.enableVertexAttribArray(loc);
    gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
    this.vao = vao;
  }

  /**
   * Draw all orbs. `orbs`: [{x, y, radius (CSS px), color (hex), bloom, energy, flutter,
   * strength, petals, seed, selected, hover}], `dpr`: device pixel ratio of the canvas.
   */
  draw(orbs, timeS, dpr) {
    const { gl, uniforms: u } = this;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(0, 0, 0, 0);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.useProgram(this.program);
    gl.bindVertexArray(this.vao);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
    gl.uniform2f(u.u_canvas_px, this.canvas.width, this.canvas.height);
    gl.uniform1f(u.u_time, timeS);
    for (const orb of orbs) {
      gl.uniform2f(u.u_center_px, orb.x * dpr, orb.y * dpr);
      gl.uniform1f(u.u_radius_px, orb.radius * dpr);
      gl.uniform3fv(u.u_color, hexToRgb(orb.color));
      gl.uniform1f(u.u_bloom, orb.bloom);
      gl.uniform1f(u.u_energy, orb.energy);
      gl.uniform1f(u.u_flutter, orb.flutter);
      gl.uniform1f(u.u_strength, orb.strength);
      gl.uniform1f(u.u_petals, orb.petals);
      gl.uniform1f(u.u_seed, orb.seed);
      gl.uniform1f(u.u_selected, orb.selected ? 1 : 0);
      gl.uniform1f(u.u_hover, orb.hover ? 1 : 0);
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    }
  }
}
