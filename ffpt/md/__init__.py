"""Molecular dynamics: metadynamics through ASE + PLUMED (metad), free-energy surfaces (fes),
LAMMPS samplers and analysis."""
