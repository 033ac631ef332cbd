"""Compiled LP kernels for the enumerator's many tiny LPs.

:mod:`lrmilp.lp.bvdual` — a numba bounded-variable dual simplex for the margin LP (max t over a box,
rows ``G u + w t <= r``) on an m x m row basis, with warm ``add_row`` re-solves for a depth-first search.
"""
