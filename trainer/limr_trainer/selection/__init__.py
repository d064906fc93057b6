"""Sample selection from reward trajectories: LIM (the paper's), linear progress, random.

`lim` is the scoring (pure numpy), `readers` stream records of each format into it, `core` is the
one Selection used by `limr select` and by the pipeline, `plots` draws its figures.
"""
