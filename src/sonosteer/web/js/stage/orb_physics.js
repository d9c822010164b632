// Matter.js world of the orbs: floating bodies with inertia that bounce off the stage walls,
// the image frame, the heart and each other; dragged and thrown with the mouse. A weak spring
// holds each orb near where it last came to rest, so a layout the performer makes stays.

const Matter = window.Matter;
const { Engine, Bodies, Body, Composite, Mouse, MouseConstraint, Events, Vector } = Matter;

const WALL = 400;
const REST_SPEED = 0.08;      // px per step below which a thrown orb has come to rest
const HOME_STIFFNESS = 2.2e-6; // force per px of displacement per unit mass

export class OrbPhysics {
  /**
   * element: the DOM element that receives mouse input (stage overlay, CSS px coordinates).
   * onPick(id): called when an orb is pressed (select its block).
   */
  constructor(element, { onPick } = {}) {
    this.engine = Engine.create({ gravity: { x: 0, y: 0, scale: 0 } });
    this.world = this.engine.world;
    this.bodies = new Map();     // id -> body
    this.homes = new Map();      // id -> {x, y}
    this.settling = new Set();   // ids thrown and not yet at rest
    this.statics = [];
    this.size = { w: 0, h: 0 };
    this.mouse = Mouse.create(element);
    element.removeEventListener("wheel", this.mouse.mousewheel);
    this.mouseConstraint = MouseConstraint.create(this.engine, {
      mouse: this.mouse,
      constraint: { stiffness: 0.18, damping: 0.12, render: { visible: false } },
    });
    Composite.add(this.world, this.mouseConstraint);
    Events.on(this.mouseConstraint, "startdrag", (e) => {
      if (e.body && e.body.orbId) {
        this.dragging = e.body.orbId;
        onPick && onPick(e.body.orbId);
      }
    });
    Events.on(this.mouseConstraint, "enddrag", (e) => {
      if (e.body && e.body.orbId) this.settling.add(e.body.orbId);
      this.dragging = null;
    });
    // A release outside the stage still ends the drag.
    window.addEventListener("mouseup", (e) => this.mouse.mouseup(e));
    this.dragging = null;
  }

  /** Rebuild walls and obstacles for a new stage size; orbs keep their relative positions. */
  layout(w, h, obstacles) {
    const old = this.size;
    if (old.w > 0 && old.h > 0 && (old.w !== w || old.h !== h)) {
      for (const [id, body] of this.bodies) {
        const sx = w / old.w, sy = h / old.h;
        Body.setPosition(body, { x: body.position.x * sx, y: body.position.y * sy });
        const home = this.homes.get(id);
        this.homes.set(id, { x: home.x * sx, y: home.y * sy });
      }
    }
    this.size = { w, h };
    Composite.remove(this.world, this.statics);
    const opts = { isStatic: true, restitution: 1, friction: 0 };
    this.statics = [
      Bodies.rectangle(w / 2, -WALL / 2, w + 2 * WALL, WALL, opts),
      Bodies.rectangle(w / 2, h + WALL / 2, w + 2 * WALL, WALL, opts),
      Bodies.rectangle(-WALL / 2, h / 2, WALL, h + 2 * WALL, opts),
      Bodies.rectangle(w + WALL / 2, h / 2, WALL, h + 2 * WALL, opts),
    ];
    for (const o of obstacles) {
      if (o.kind === "rect") {
        this.statics.push(Bodies.rectangle(o.x + o.w / 2, o.y + o.h / 2, o.w, o.h, { ...opts, chamfer: { radius: 10 } }));
      } else {
        this.statics.push(Bodies.circle(o.x, o.y, o.r, opts));
      }
    }
    Composite.add(this.world, this.statics);
  }

  /** Add an orb (once) at x, y with radius r. */
  ensureOrb(id, x, y, r) {
    if (this.bodies.has(id)) return;
    const body = Bodies.circle(x, y, r, {
      restitution: 0.82,
      friction: 0.001,
      frictionAir: 0.028,
      density: 0.0016,
    });
    body.orbId = id;
    this.bodies.set(id, body);
    this.homes.set(id, { x, y });
    Composite.add(this.world, body);
  }

  /** A small kick, e.g. on a transient: the orb jumps and springs back. */
  kick(id, strength) {
    const body = this.bodies.get(id);
    if (!body || this.dragging === id) return;
    const a = Math.random() * Math.PI * 2;
    Body.setVelocity(body, Vector.add(body.velocity, { x: Math.cos(a) * strength, y: Math.sin(a) * strength }));
  }

  /** Advance the world by dtMs (clamped so a background tab does not explode the simulation). */
  step(dtMs) {
    const dt = Math.min(Math.max(dtMs, 1), 33);
    for (const [id, body] of this.bodies) {
      if (this.dragging === id) continue;
      if (this.settling.has(id)) {
        if (Vector.magnitude(body.velocity) < REST_SPEED) {
          this.settling.delete(id);
          this.homes.set(id, { x: body.position.x, y: body.position.y });
        }
        continue;
      }
      const home = this.homes.get(id);
      Body.applyForce(body, body.position, {
        x: (home.x - body.position.x) * HOME_STIFFNESS * body.mass * dt,
        y: (home.y - body.position.y) * HOME_STIFFNESS * body.mass * dt,
      });
    }
    // Matter.js is stable at steps up to one 60 Hz frame: a slow frame is split into substeps.
    const n = Math.ceil(dt / (1000 / 60));
    for (let i = 0; i < n; i++) Engine.update(this.engine, dt / n);
  }

  position(id) {
    const b = this.bodies.get(id);
    return b ? { x: b.position.x, y: b.position.y } : null;
  }

  /** The orb under a point (CSS px), or null. */
  hit(x, y) {
    for (const [id, b] of this.bodies) {
      if (Math.hypot(b.position.x - x, b.position.y - y) <= b.circleRadius) return id;
    }
    return null;
  }
}
