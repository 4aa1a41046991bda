"""Where the images come from, and how they are split and batched: no network here.

- `data`: `load_splits(config.data)`, the one call: Fashion-MNIST as the composite, STL-10,
  the synthetic shapes or a folder, as `Splits` of uint8 arrays; a demo folder to try.
- `splits`: `Splits`, what every source gives, and a balanced draw of labelled examples.
- `composite`, `synthetic`: images drawn in code.
- `folder`, `folder_splits`: a folder of one's own image files, decoded once into a
  memory-mapped cache, and its held-out test share.
- `decode`: one image file's bytes to an upright (size, size, 3) RGB square.
- `batching`: the per-step streams `fit` reads (500 unlabelled + 25 labelled a step).

May import: the settings (`simclr_lab.config`), `runs.cache` (atomic writes, the cache
folder), NumPy, Pillow and TensorFlow's image decoders; never the recipe's network modules.
"""
