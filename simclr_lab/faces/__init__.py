"""What faces the user: the only modules that may import IPython or ipywidgets.

- `cli`: the `simclr-lab` command; `arguments`: its options, defaults and examples.
- `widgets`: the explorers and the settings lab of the lessons; `widget_output`: what
  they draw into, and the picture their saved output keeps (ipywidgets 7 and 8).
- `dashboard`: live plots of a run as it trains.

May import: everything in the package.
"""
