"""Topology-preserving growth of a binary object: a ball grown inside a mask stays a ball.

The white-matter mask of a hemisphere has handles (voxels bridging across a
sulcus, noise) that would give its surface a genus above 0. Instead of
correcting the surface afterwards, the object is grown from a ball by adding
only *simple points* (voxels whose addition changes no topology: no new
component, cavity or tunnel), most confident voxels first. What remains
outside is exactly the set of voxels that would have closed a handle, cut
where the evidence is weakest. The object is 6-connected and its background
26-connected, which is the pairing that marching cubes above the 0.5 level
meshes as a closed genus-0 surface.

A voxel ``p`` joins the object when it is simple for the background ``Y``
(26-connected, the union of its closed unit cubes): removing it from ``Y``
keeps the Euler characteristic (``χ`` of the cube of ``p`` intersected with its
neighbours' cubes is 1) and leaves ``Y`` within the 26-neighbourhood one
component (Lee, Kashyap & Chu 1994). Voxels of one parity class of the grid
are never 26-adjacent, so each class is tested and added in parallel.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

_OFFSETS = torch.tensor(list(itertools.product((-1, 0, 1), repeat=3)))  # (27, 3), centre at 13
_CENTRE = 13
_PARITIES = list(itertools.product((0, 1), repeat=3))


def _position(offset: Sequence[int]) -> int:
    return (offset[0] + 1) * 9 + (offset[1] + 1) * 3 + (offset[2] + 1)


def _cells() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For the centre cube's 8 corners, 12 edges and 6 faces: the other neighbourhood voxels that share each.

    Padded with the centre's index (never part of ``Y`` in a test), as (cells, 7) index tables.
    """
    corners, edges, faces = [], [], []
    for corner in itertools.product((-1, 1), repeat=3):
        shared = [_position(o) for o in itertools.product(*[(0, c) for c in corner]) if any(o)]
        corners.append(shared)
    for axis in range(3):
        others = [a for a in range(3) if a != axis]
        for signs in itertools.product((-1, 1), repeat=2):
            shared = []
            for o2 in itertools.product((0, signs[0]), (0, signs[1])):
                offset = [0, 0, 0]
                offset[others[0]], offset[others[1]] = o2
                if any(offset):
                    shared.append(_position(offset))
            edges.append(shared + [_CENTRE] * (7 - len(shared)))
    for axis in range(3):
        for sign in (-1, 1):
            offset = [0, 0, 0]
            offset[axis] = sign
            faces.append([_position(offset)] + [_CENTRE] * 6)
    return torch.tensor(corners), torch.tensor(edges), torch.tensor(faces)


_CORNERS, _EDGES, _FACES = _cells()


def _neighbour_table() -> torch.Tensor:
    """(27, 26): for each neighbourhood position, its 26-adjacent positions (the centre excluded), padded with 27."""
    table = torch.full((27, 26), 27, dtype=torch.long)
    for i in range(27):
        if i == _CENTRE:
            continue
        near = [j for j in range(27) if j not in (i, _CENTRE)
                and int((_OFFSETS[i] - _OFFSETS[j]).abs().max()) == 1]
        table[i, :len(near)] = torch.tensor(near)
    return table


_NEIGHBOURS = _neighbour_table()


def euler_invariant(background: torch.Tensor) -> torch.Tensor:
    """Whether removing the centre from the background keeps its Euler characteristic, per (B, 27) neighbourhood."""
    y = background.clone()
    y[:, _CENTRE] = False

    def covered(table: torch.Tensor) -> torch.Tensor:
        return y[:, table.to(y.device)].any(dim=-1).sum(dim=-1)

    return covered(_CORNERS) - covered(_EDGES) + covered(_FACES) == 1


def single_component(background: torch.Tensor) -> torch.Tensor:
    """Whether the background minus the centre forms exactly one 26-connected component, per (B, 27) neighbourhood."""
    device = background.device
    member = background.clone()
    member[:, _CENTRE] = False
    big = 27
    index = torch.arange(27, device=device, dtype=torch.int16).expand_as(member)
    labels = torch.where(member, index, torch.full_like(index, big))
    neighbours = _NEIGHBOURS.to(device)
    while True:
        padded = torch.cat([labels, torch.full_like(labels[:, :1], big)], dim=1)
        updated = torch.minimum(labels, padded[:, neighbours].min(dim=-1).values)
        updated = torch.where(member, updated, labels)
        if torch.equal(updated, labels):
            break
        labels = updated
    roots = (member & (labels == index)).sum(dim=1)
    return roots == 1


def simple_for_growth(neighbourhoods: torch.Tensor) -> torch.Tensor:
    """Whether adding the centre to the object (6-connected) keeps its topology, per (B, 27) bool neighbourhood."""
    background = ~neighbourhoods
    simple = euler_invariant(background)
    simple[simple.clone()] = single_component(background[simple])
    return simple


_CODE_POSITIONS = [i for i in range(27) if i != _CENTRE]


def _codes(neighbourhoods: torch.Tensor) -> torch.Tensor:
    """A 26-bit integer per (B, 27) neighbourhood, the centre left out."""
    weights = torch.tensor([1 << k for k in range(26)], dtype=torch.long, device=neighbourhoods.device)
    return (neighbourhoods[:, _CODE_POSITIONS].long() * weights).sum(dim=1)


def _decode(codes: torch.Tensor) -> torch.Tensor:
    bits = (codes[:, None] >> torch.arange(26, device=codes.device)) & 1
    out = torch.zeros(len(codes), 27, dtype=torch.bool, device=codes.device)
    out[:, _CODE_POSITIONS] = bits.bool()
    return out


class _SimpleTable:
    """:func:`simple_for_growth` by neighbourhood code, computed once per configuration met (-1: not yet)."""

    def __init__(self, device: torch.device) -> None:
        self.table = torch.full((1 << 26,), -1, dtype=torch.int8, device=device)

    def __call__(self, neighbourhoods: torch.Tensor) -> torch.Tensor:
        codes = _codes(neighbourhoods)
        known = self.table[codes]
        unknown = torch.unique(codes[known < 0])
        if unknown.numel():
            self.table[unknown] = simple_for_growth(_decode(unknown)).to(torch.int8)
            known = self.table[codes]
        return known == 1


def _face_neighbours(flat: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    return torch.cat([flat + step for stride in strides.tolist() for step in (stride, -stride)])


def grow(seed: torch.Tensor, priority: torch.Tensor, levels: Sequence[float]) -> torch.Tensor:
    """Grow ``seed`` (a 6-connected ball) into ``priority >= level`` for each level in turn, topology kept.

    ``seed`` and ``priority`` are 3D tensors of one shape; the border voxels
    never join. ``levels`` decrease, so confident voxels join first and a
    handle is cut where ``priority`` is lowest. Each sweep tests the voxels
    face-adjacent to the object, one parity class at a time. Returns the grown
    bool mask.
    """
    device = seed.device
    grown = seed.clone().bool().contiguous()
    strides = torch.tensor([grown.shape[1] * grown.shape[2], grown.shape[2], 1], device=device)
    offsets = (_OFFSETS.to(device) * strides).sum(dim=1)
    coords = [torch.arange(n, device=device) % 2 for n in grown.shape]
    parity = (coords[0][:, None, None] * 4 + coords[1][None, :, None] * 2 + coords[2][None, None, :]).flatten()
    inner = torch.zeros_like(grown)
    inner[1:-1, 1:-1, 1:-1] = True
    simple = _SimpleTable(device)
    flat_grown = grown.view(-1)
    for level in levels:
        allowed = ((priority >= level) & inner).flatten()
        frontier = torch.unique(_face_neighbours(torch.nonzero(flat_grown).squeeze(1), strides))
        while True:
            frontier = frontier[allowed[frontier] & ~flat_grown[frontier]]
            if frontier.numel() == 0:
                break
            added = []
            for klass in range(len(_PARITIES)):
                candidates = frontier[(parity[frontier] == klass) & ~flat_grown[frontier]]
                if candidates.numel() == 0:
                    continue
                joining = candidates[simple(flat_grown[candidates[:, None] + offsets[None, :]])]
                flat_grown[joining] = True
                added.append(joining)
            fresh = torch.cat(added) if added else frontier[:0]
            if fresh.numel() == 0:
                break
            frontier = torch.unique(torch.cat([frontier, _face_neighbours(fresh, strides)]))
    return grown


def depth_mm(mask: torch.Tensor, spacing: Sequence[float]) -> torch.Tensor:
    """Each voxel's distance (mm) to the nearest voxel outside ``mask`` (0 outside), on ``mask``'s device."""
    from scipy import ndimage

    host = mask.detach().cpu().numpy().astype(bool)
    depth = ndimage.distance_transform_edt(host, sampling=spacing).astype("float32")
    return torch.from_numpy(depth).to(mask.device)


def seed_ball(mask: torch.Tensor, depth: torch.Tensor, spacing: Sequence[float]) -> torch.Tensor:
    """A digital ball deep inside ``mask``: centred on its farthest voxel from the background (by ``depth``,
    :func:`depth_mm`), radius half that depth."""
    centre = torch.tensor(divmod_index(int(depth.argmax()), tuple(mask.shape)), device=mask.device,
                          dtype=torch.float32)
    radius = max(float(depth.max()) / 2.0, min(spacing))
    axes = [torch.arange(n, device=mask.device, dtype=torch.float32) for n in mask.shape]
    grid = torch.meshgrid(*axes, indexing="ij")
    squared = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing, strict=True))
    return (squared <= radius**2) & mask.bool()


def divmod_index(flat: int, shape: Sequence[int]) -> tuple[int, int, int]:
    """The (i, j, k) index of a flat C-order index into ``shape``."""
    i, rest = divmod(flat, shape[1] * shape[2])
    j, k = divmod(rest, shape[2])
    return i, j, k


