"""What every widget of the lessons is built on: figures drawn into an output area that
stays live in JupyterLab, and a saved output that also holds a picture of the last state,
which GitHub, Colab and the course's website show where no widget can run.
"""

from __future__ import annotations

import base64
import io

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython import get_ipython


def figure_output(figure) -> dict:
    """The figure as one notebook output: formatted as `display` would in this kernel (so an
    inline backend's settings such as retina apply), else as a PNG."""
    shell = get_ipython()
    data, metadata = shell.display_formatter.format(figure) if shell is not None else ({}, {})
    if not any(mime.startswith("image/") for mime in data):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        data, metadata = {"image/png": buffer.getvalue(), "text/plain": repr(figure)}, {}
    data = {  # JSON strings: bytes in a widget's state would travel as binary buffers
        mime: base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else value
        for mime, value in data.items()
    }
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def show(output: widgets.Output, figure) -> None:
    """Replace what `output` shows with `figure` by setting its `outputs`: one state update
    from the kernel, which the front end renders as it renders captured output.

    Not `with output: display(figure)`: that routes the cell's own display message through
    the Output widget, and a headless notebook client (nbclient: nbconvert, nbval) that
    mirrors the widget then writes the new state back to the kernel on the shell channel
    while it is still awaiting the cell's reply. That write can swallow the reply's wake-up,
    most often on one core, and the client then waits out its whole timeout before it reads
    the reply.
    """
    output.outputs = (figure_output(figure),)
    plt.close(figure)


def running_a_cell() -> bool:
    """True while the kernel executes a cell; False while it handles a widget event (a
    click), and outside a kernel."""
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None or not hasattr(kernel, "get_parent"):
        return False
    return kernel.get_parent().get("header", {}).get("msg_type") == "execute_request"


class LiveOutput(widgets.Output):
    """An Output widget that, cleared from a running cell, empties its state rather than
    sending a clear message through itself, which would be captured output (see `_show`)."""

    def clear_output(self, *args, **kwargs):
        if running_a_cell():
            self.outputs = ()
        else:
            super().clear_output(*args, **kwargs)


IPYWIDGETS_7 = widgets.__version__.startswith("7.")  # Colab shipped 7.7 for years


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class StaticPicture:
    """Widgets whose saved output also holds a picture of their last state (`static_data`):
    JupyterLab shows the live widget, viewers without widget state (GitHub, nbviewer, a
    notebook opened before it runs) the picture."""

    def _repr_mimebundle_(self, **kwargs):
        if IPYWIDGETS_7:  # ipywidgets 7 has no bundle of its own: the same one, made here
            bundle = {"text/plain": repr(self)[:110]}
            if self._view_name is not None:
                bundle[WIDGET_VIEW] = {"version_major": 2, "version_minor": 0}
                bundle[WIDGET_VIEW]["model_id"] = self._model_id
        else:
            bundle = super()._repr_mimebundle_(**kwargs)
        bundle.update(self.static_data())
        return bundle

    if IPYWIDGETS_7:

        def _ipython_display_(self, **kwargs):
            """How ipywidgets 7 displays a widget (8 asks `_repr_mimebundle_`): with the
            picture beside the live view here too."""
            from IPython.display import display

            display(self._repr_mimebundle_(), raw=True)
            if self._view_name is not None:
                self._handle_displayed(**kwargs)

    def static_data(self) -> dict:
        """{mime type: data} of the last figure drawn in `self.output`."""
        shown = self.output.outputs[-1]["data"] if self.output.outputs else {}
        return {mime: data for mime, data in shown.items() if mime.startswith("image/")}
