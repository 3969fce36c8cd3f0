"""Analysis of trained models and their MD; kept light: import the modules directly.

- ``scan``, ``scan_report``: rigid PES scans and the hole finder (``ffpt scan``, ``cli.py``);
- ``stability``, ``stability_report``: survival of MD runs (``ffpt stability``);
  ``water_stability``: the demo's liquid-water run check;
- ``rdf``: radial distribution functions; ``msd``: diffusion (``ffpt analyze-msd``);
- ``fes``: free-energy surfaces from PLUMED HILLS (``ffpt fes``).
"""
