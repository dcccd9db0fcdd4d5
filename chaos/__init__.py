"""The chaos run (``make chaos``, ``python -m chaos``): random, overlapping faults under steady
traffic on a private stack, then one check of the raw tables against every answer given.

``schedule`` plans the faults from a seed, ``stack`` runs the private services, ``faults``
injects and heals, ``traffic`` sends and records, ``checker`` compares, ``table`` renders.
"""
