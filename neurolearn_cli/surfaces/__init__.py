"""Cortical surfaces from smri's tissue maps: white and pial meshes, thickness, curvature (the surfaces stage)."""
