"""Molecular dynamics through ASE: well-tempered metadynamics with PLUMED (``metad.py``) and
its command ``ffpt metad`` (``cli.py``). LAMMPS MD lives in :mod:`ffpt.lammps`; analysis of
trajectories (RDF, MSD, FES, stability) in :mod:`ffpt.analysis`."""
