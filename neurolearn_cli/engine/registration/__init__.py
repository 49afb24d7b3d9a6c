"""Image registration on torch: rigid, affine, symmetric diffeomorphic (SyN-like) and batched rigid.

Use :func:`neurolearn_cli.engine.registration.api.register` for pairs and
:func:`neurolearn_cli.engine.registration.api.register_series` for head motion.
"""
