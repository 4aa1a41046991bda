"""What faces the user: the only modules that may import IPython or ipywidgets.

- `cli`: the `simclr-lab` command; `arguments`: its options, defaults and examples.
- `widgets`: the explorers and the settings lab of the lessons.
- `dashboard`: live plots of a run as it trains.

May import: everything in the package.
"""
