"""Headless studies that train through `runs` and write files: no screen.

- `compare`: the reference's comparison (baseline, pretraining, finetuning), with figures.
- `sweep`: accuracy against the number of labels, frozen and finetuned.
- `study`: the knobs' study (temperature, crop, colour, greyscale) and the pretraining curve.
- `bench`: the pretraining step's throughput.
- `own_images`: a folder of one's own images: its gallery, map and exported encoder.

May import: everything below it (the recipe, `sources`, `runs`, `figures`); never
IPython or ipywidgets.
"""
