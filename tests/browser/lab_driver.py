"""Driving a notebook in JupyterLab: open, run all, wait, read outputs."""

import time


def open_notebook(page, lab, name):
    base, token, _ = lab
    page.goto(f"{base}/lab/tree/{name}?token={token}&reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_function(
        "() => document.querySelector('#jp-main-statusbar')?.textContent.includes('Idle')",
        timeout=120_000,
    )


def run_all(page, timeout_s=300):
    page.click("li[role='menuitem']:has-text('Run')")
    page.click("li[role='menuitem']:has-text('Run All Cells')")
    wait_until_done(page, timeout_s)


def prompts(page):
    return page.eval_on_selector_all(
        ".jp-CodeCell .jp-InputArea-prompt", "nodes => nodes.map(n => n.textContent.trim())"
    )


def wait_until_done(page, timeout_s=300):
    """Until every code cell shows an execution count (none is queued or running)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        shown = prompts(page)
        if shown and all(p[1:-2].isdigit() for p in shown):
            return
        time.sleep(1)
    raise TimeoutError(f"cells still running after {timeout_s} s: {prompts(page)}")


def error_outputs(page):
    return page.eval_on_selector_all(
        ".jp-OutputArea-output",
        "nodes => nodes.map(n => n.textContent).filter(t => t.includes('Traceback'))",
    )


def first_output_image(page, container):
    """The src of the first image inside `container` (a selector), or None."""
    return page.evaluate(
        "(sel) => { const i = document.querySelector(sel + ' img'); return i ? i.src : null; }",
        container,
    )
