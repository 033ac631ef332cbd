"""LP kernels for the enumerator's many tiny LPs.

:mod:`lrmilp.lp.chebyshev` — Chebyshev-ball LPs (max the radius of a ball inside unit rows): a warm
highspy model whose rows follow a depth-first search, and a dense dual simplex vectorised over many
LPs at once.

:mod:`lrmilp.lp.bvdual` — a numba bounded-variable dual simplex for the margin LP (max t over a box,
rows ``G u + w t <= r``) on an m x m row basis, with warm ``add_row`` re-solves for a depth-first search.
"""
