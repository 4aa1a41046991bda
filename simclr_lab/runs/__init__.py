"""Runs: settings in, a trained model out, once.

- `presets`: the named presets, and the one that suits this machine.
- `devices`: the accelerator Keras sees, and whether it computes bfloat16 natively.
- `distribute`: data-parallel training over several devices and processes (JAX).
- `cache`: run folders keyed by settings and data, with checksums and atomic writes.
- `shipped`: the runs that ship inside the package, found like cache entries.
- `callbacks`: what every phase runs beside `fit` (NaN stop, history, resume, reseeding).
- `phases`: one phase loaded, resumed or trained, and stored.
- `train`: the phases of the recipe: pretraining, the baseline and finetuning.

May import: the recipe, the settings and `sources`; never a screen (IPython, ipywidgets)
or a figure.
"""
