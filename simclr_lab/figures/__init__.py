"""The figures, drawn with Matplotlib from numbers the recipe and the studies measured.

- `plots`: training curves, images, embedding maps, retrieval and neighbours.
- `study_plots`: the label sweep, what pretraining gains, the knobs' study and the
  pretraining curve.

May import: the recipe's measures (`evaluate`); never `runs` (a figure trains nothing).
"""
