"""Image registration on torch: the engine's one public registration API.

Everything a caller needs is imported from this package; its modules are
private. Two levels, one built on the other:

* **Building blocks on (data, affine) tensors**, the level the stages use,
  because each stage chooses its own start, mask and settings:
  :func:`moments_init` (centre-of-mass and principal-axes start),
  :func:`register_linear` (rigid or affine, with :class:`LinearSettings`),
  :func:`register_syn` (symmetric diffeomorphic, with :class:`SynSettings`) and
  :func:`register_rigid_batched` (every volume of a series at once: head
  motion, with :class:`MotionSettings`).
* :func:`register` on :class:`~neurolearn_cli.engine.image.Image` objects:
  ``antsRegistrationSyNQuick.sh``'s recipe (moments, then linear, then SyN)
  composed of the same blocks, for the ``neurolearn register`` command and
  the benchmarks.

Transforms follow ITK/ANTs pull-back semantics throughout: a map from fixed
(reference) points to moving points.
"""

from neurolearn_cli.engine.registration.api import RegistrationResult, foreground_mask, register
from neurolearn_cli.engine.registration.batched import MotionSettings, register_rigid_batched
from neurolearn_cli.engine.registration.init import moments_init
from neurolearn_cli.engine.registration.linear import LinearSettings, register_linear
from neurolearn_cli.engine.registration.syn import SynSettings, register_syn

__all__ = [
    "LinearSettings",
    "MotionSettings",
    "RegistrationResult",
    "SynSettings",
    "foreground_mask",
    "moments_init",
    "register",
    "register_linear",
    "register_rigid_batched",
    "register_syn",
]
