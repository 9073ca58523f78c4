"""Figures render to identical bytes twice: no timestamp, fixed SVG ids."""

from lowspike.report.figures import new_figure, render, safe_name


def _figure():
    fig, axes = new_figure(1, 2, width=4.0, height=2.0)
    axes[0].plot([1e-4, 1e-3], [3.0, 1.0], marker="o", label="L1")
    axes[0].set_xscale("log")
    axes[0].legend()
    axes[1].imshow([[0.0, 1.0], [2.0, 3.0]])
    return fig


def test_two_renders_are_byte_identical():
    first = render(_figure(), "fig", "caption", ["png", "svg"], dpi=40)
    second = render(_figure(), "fig", "caption", ["png", "svg"], dpi=40)
    assert first.files == second.files
    assert first.files["png"].startswith(b"\x89PNG\r\n\x1a\n")
    svg = first.files["svg"].decode()
    assert "<dc:date>" not in svg and "Matplotlib v" not in svg and "<svg" in svg


def test_only_requested_formats_and_safe_names():
    assert set(render(_figure(), "x", "c", ["svg"], dpi=40).files) == {"svg"}
    assert safe_name("Regularization fig2 spoken-commands/MLP") == "regularization_fig2_spoken-commands_mlp"
